"""Real-browser fixtures: Playwright drives Debian's Chromium against pytest-django's live server.

Playwright cannot download its own browser here, so the tests use /usr/bin/chromium and are skipped
when it is missing (`.ci/run` installs it).
"""
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from marketplace.models import Endpoint, Model, Provider
from tests.analytics.conftest import _fresh_prices, _no_task_queueing  # noqa: F401  (autouse: ingest in-process)
from tests.analytics.rankings.conftest import leaderboard_traffic

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
DESKTOP = {"width": 1280, "height": 900}


def pytest_collection_modifyitems(config, items):
    """Skip the browser tests, with the reason, when Debian's chromium is not installed (never in CI)."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":  # .ci/run installs it: a missing browser is a broken run, not a skip
        raise pytest.UsageError(f"CI=true but Debian's chromium is not at {CHROMIUM}: the browser tests cannot run")
    skip = pytest.mark.skip(reason=f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="package")
def browser_context(tmp_path_factory):
    """One headless Chromium for the browser tests, with a profile on disk.

    An on-disk profile keeps V8's code cache, so plotly.js (4.6 MB) compiles on the first two page
    loads and loads in a tenth of the time after; a fresh (incognito) context recompiles it every time.
    Package scope stops Playwright's event loop when the browser tests are done, before other packages.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    with pytest.MonkeyPatch.context() as env, sync_api.sync_playwright() as playwright:
        # Playwright's sync API keeps an event loop running in this thread, so Django's async-unsafe
        # check would refuse the ORM calls of fixtures and transactional teardown; nothing here is async.
        env.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu"], viewport=DESKTOP)
        yield context
        context.close()


@dataclass
class Tab:
    """A page on the live server, with every URL it requested and every dialog it raised."""

    page: "Page"
    origin: str
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def open(self, path: str) -> None:
        response = self.page.goto(self.origin + path)
        assert response is not None, path
        assert response.status == 200, path

    def foreign_requests(self) -> list[str]:
        """Requests that left the live server (data: and blob: URLs stay in the page)."""
        return [url for url in self.requests
                if urlsplit(url).scheme in ("http", "https", "ws", "wss") and not url.startswith(self.origin + "/")]


@pytest.fixture
def new_tab(browser_context, live_server) -> Iterator[Callable[..., Tab]]:
    """Open fresh pages (of `width` px) on the live server; close them after the test.

    Every tab fails the test at teardown if it requested anything from another host.
    """
    tabs = []

    def open_tab(width: int = DESKTOP["width"]) -> Tab:
        tab = Tab(page=browser_context.new_page(), origin=live_server.url)
        tab.page.set_viewport_size({**DESKTOP, "width": width})
        tab.page.on("request", lambda request: tab.requests.append(request.url))

        def dismiss(dialog) -> None:
            tab.dialogs.append(dialog.message)
            dialog.dismiss()

        tab.page.on("dialog", dismiss)
        tabs.append(tab)
        return tab

    yield open_tab
    for tab in tabs:
        tab.page.close()
    browser_context.clear_cookies()
    assert [url for tab in tabs for url in tab.foreign_requests()] == []


@pytest.fixture
def tab(new_tab) -> Tab:
    """A desktop-sized page."""
    return new_tab()


@pytest.fixture
def public_site(transactional_db, tmp_path) -> datetime:
    """The leaderboard traffic, with alpha priced at two providers; returns the traffic's `now`.

    alpha at DeepInfra: $0.10 in / $0.40 out per 1M tokens; at Other: $0.25 in / $2 out.
    """
    now = leaderboard_traffic(tmp_path)
    alpha = Model.objects.get(slug="lab/alpha")
    for provider, prompt, completion in (("DeepInfra", "0.0000001", "0.0000004"), ("Other", "0.00000025", "0.000002")):
        Endpoint.objects.create(model=alpha, provider=Provider.objects.get(name=provider),
                                prompt_price=Decimal(prompt), completion_price=Decimal(completion))
    return now


def rows_of(page: "Page", table: str) -> list[list[str]]:
    """The visible text of each body row of a table, cell by cell, whitespace collapsed."""
    cells = page.locator(f"{table} tbody tr").evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.innerText))")
    return [[re.sub(r"\s+", " ", cell).strip() for cell in row] for row in cells]


def charts_drawn(page: "Page") -> list[str]:
    """Wait until plotly has drawn every `.chart` on the page; return their ids."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('.chart')].every(chart => chart.dataset.drawn === 'true')")
    drawn = page.locator(".chart.js-plotly-plot").evaluate_all(
        "charts => charts.filter(chart => chart.querySelector('svg.main-svg')).map(chart => chart.id)")
    assert drawn == page.locator(".chart").evaluate_all("charts => charts.map(chart => chart.id)")
    return drawn


PASSWORD = "Alice-pass-2718"  # noqa: S105  (a test user's)


@pytest.fixture
def account_site(transactional_db, tmp_path):
    """Account A's fixture traffic (tests/analytics/conftest.py) and its owner, alice.

    Its days ("d1", "d2") are before the real date: the live server and Chromium run on the real
    clock, which moves away from the suite's fixed NOW."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from billing.models import Membership
    from tests.analytics.conftest import account_traffic

    accounts = account_traffic(tmp_path, today=timezone.now().date())
    user = get_user_model().objects.create_user("alice", "alice@example.com", PASSWORD)
    Membership.objects.create(user=user, account=accounts["a"], role=Membership.Role.OWNER)
    return accounts


def sign_in(tab: Tab, *, next_path: str) -> None:
    """Open an account page anonymously, sign in as alice on the form it sends to, land back on it."""
    tab.open(next_path)
    assert tab.page.url == f"{tab.origin}/accounts/login/?next={next_path}"
    tab.page.get_by_label("Username").fill("alice")
    tab.page.get_by_label("Password").fill(PASSWORD)
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Sign in").click()
    assert tab.page.url == f"{tab.origin}{next_path}"
