#!/usr/bin/env python
"""Take the README's screenshots from a running Tokengrid (make demo) with Debian's Chromium.

    .venv/bin/python scripts/screenshots.py [--base http://127.0.0.1:8000]
"""
import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PAGES = {"rankings.png": "/rankings/?window=month", "models.png": "/models/",
         "model.png": "/models/google/gemini-2.5-flash/"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    base = parser.parse_args().base
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                          "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        for name, path in PAGES.items():
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            if page.locator(".chart").count():
                page.wait_for_selector(".chart[data-drawn=true]", timeout=15_000)
            page.screenshot(path=str(OUT / name))
            print(OUT / name)
        browser.close()


if __name__ == "__main__":
    main()
