#!/usr/bin/env python
"""Take the README's screenshots from a running Tokengrid (make demo) with Debian's Chromium.

    .venv/bin/python scripts/screenshots.py [--base http://127.0.0.1:8000]

Public pages first, then the demo login's account pages (overview, activity, credits), each in the
light and the dark scheme (`NAME.png` and `NAME-dark.png`), at 1280 px, and the rankings at a phone's 390 px.
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
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for name, path in pages.items():
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            if page.locator(".chart").count():
                page.wait_for_function("() => [...document.querySelectorAll('.chart')]"
                                       ".every(chart => chart.dataset.drawn === 'true')", timeout=15_000)
            out = OUT / (name if scheme == "light" else name.replace(".png", "-dark.png"))
            page.screenshot(path=str(out))
            print(out)


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
        phone = browser.new_page(viewport={"width": 390, "height": 844})
        _shoot(phone, options.base, {"rankings-phone.png": "/rankings/"})
        page = browser.new_page(viewport={"width": 1280, "height": 900})
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
