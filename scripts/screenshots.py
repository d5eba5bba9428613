#!/usr/bin/env python
"""Take the README's screenshots from a running Tokengrid (make demo) with Debian's Chromium.

    .venv/bin/python scripts/screenshots.py [--base http://127.0.0.1:8000]

Public pages first, then the demo login's account pages (overview, activity, credits).
"""
import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PUBLIC = {"rankings.png": "/rankings/?window=month", "model.png": "/models/google/gemini-2.5-flash/"}
ACCOUNT = {"account-overview.png": "/account/",
           "account-activity.png": "/account/activity/?metric=tokens&group_by=model&granularity=day&period=30d",
           "credits.png": "/account/credits/"}


def _shoot(page, base: str, pages: dict[str, str]) -> None:
    for name, path in pages.items():
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        if page.locator(".chart").count():
            page.wait_for_function("() => [...document.querySelectorAll('.chart')]"
                                   ".every(chart => chart.dataset.drawn === 'true')", timeout=15_000)
        page.screenshot(path=str(OUT / name))
        print(OUT / name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="demo")
    parser.add_argument("--password", default="tokengrid-demo")
    options = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                          "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        _shoot(page, options.base, PUBLIC)
        page.goto(options.base + "/accounts/login/")
        page.get_by_label("Username").fill(options.username)
        page.get_by_label("Password").fill(options.password)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        _shoot(page, options.base, ACCOUNT)
        browser.close()


if __name__ == "__main__":
    main()
