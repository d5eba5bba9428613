#!/usr/bin/env python
"""Walk every page of a running Tokengrid (make demo) in Debian's Chromium, as a newcomer would, and
say what is wrong: page overflow, clipped tables, axe-core's serious and critical findings.

    .venv/bin/python scripts/page_probe.py [--base http://127.0.0.1:8000] [--widths 390,1280]
        [--dark] [--shots DIR]

Detail pages (a model, a provider, an app, an author, a generation, a statement) are found by
following the first link of their kind. Exit 1 when anything was found.
"""
import argparse
import re
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.browser.probe import (  # noqa: E402
    ACCOUNT,
    FOLLOW_ACCOUNT,
    FOLLOW_PUBLIC,
    PUBLIC,
    charts_drawn,
    detail_paths,
    probe,
)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--widths", default="390,1280")
    parser.add_argument("--dark", action="store_true")
    parser.add_argument("--shots", type=Path)
    parser.add_argument("--username", default="demo")
    parser.add_argument("--password", default="tokengrid-demo")
    parser.add_argument("--only", help="a regular expression the paths must match")
    options = parser.parse_args()
    total = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        context = browser.new_context(color_scheme="dark" if options.dark else "light")
        page = context.new_page()
        paths = PUBLIC + detail_paths(page, options.base, FOLLOW_PUBLIC)
        page.goto(options.base + "/accounts/login/")
        page.get_by_label("Username").fill(options.username)
        page.get_by_label("Password").fill(options.password)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        paths += ACCOUNT + detail_paths(page, options.base, FOLLOW_ACCOUNT)
        if options.only:
            paths = [p for p in paths if re.search(options.only, p)]
        for width in map(int, options.widths.split(",")):
            page.set_viewport_size({"width": width, "height": 900})
            for path in paths:
                page.goto(options.base + path)
                charts_drawn(page)
                found = probe(page, path)
                total += len(found.problems)
                print(f"{width:>5} {path}: {'ok' if not found.problems else ''}")
                for problem in found.problems:
                    print(f"        {problem}")
                if options.shots:
                    options.shots.mkdir(parents=True, exist_ok=True)
                    name = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home"
                    page.screenshot(path=str(options.shots / f"{name}-{width}{'-dark' if options.dark else ''}.png"),
                                    full_page=True)
        browser.close()
    print(f"{total} finding(s)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
