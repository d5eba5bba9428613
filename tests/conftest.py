"""Fixtures shared by every test package, and the one instant the tests take for now.

NOW is a fixed instant, FIXED_NOW, unless TOKENGRID_TEST_NOW gives another (ISO 8601, e.g.
`TOKENGRID_TEST_NOW=2027-03-01T00:10:00Z`, CI's clock-edge run), so the suite answers the same on
any day it runs and can be run as if at 23:59 or on a month's first day. Every test outside
tests/browser and tests/integration (whose Chromium and worker subprocesses do not share the fake
clock) runs with the clock set to NOW and ticking; nothing else in a test may assume NOW is near the
real date (PostgreSQL's own now(), the migrations' partitions and the test database's creation
follow the real clock).

The whole session reads genai-prices from the pinned snapshot (PINNED_SNAPSHOT), never from the
installed release's data: catalog_sync and genai-prices' own calc_price alike.

The database is PostgreSQL: the operator's when DATABASE_URL is set, else the embedded cluster in
var/postgres/ (config/embedded_db), started by the session's first connection.
"""
import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import time_machine

# A Wednesday at noon in the middle of a month, clear of every day, week, month and DST edge of the
# zones the tests use; after every date of the tests' own fixed data (the LiteLLM fixtures' 2026-12-03,
# the time-zone tests' Dec 1) and every price change of the pinned genai-prices snapshot but its 2027
# ones. Run at 2026-11-18, 19 days before the real date of that run, only the tests whose fixed data
# lies after it failed: nothing else leans on the real date.
FIXED_NOW = datetime(2026, 12, 16, 12, tzinfo=UTC)


def _now() -> datetime:
    raw = os.environ.get("TOKENGRID_TEST_NOW", "").strip()
    if raw:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
    return FIXED_NOW


NOW = _now()
TODAY = NOW.date()
REAL_CLOCK_DIRS = ("browser", "integration")
PINNED_SNAPSHOT = Path(__file__).parent / "marketplace" / "data" / "genai_prices_snapshot.json"


@pytest.fixture(scope="session", autouse=True)
def _pinned_genai_prices():
    """genai-prices answers from the pinned snapshot for the whole session (its custom-snapshot hook)."""
    from genai_prices import data_snapshot

    from marketplace.genai_catalog import snapshot_load

    data_snapshot.set_custom_snapshot(snapshot_load(path=PINNED_SNAPSHOT))
    yield
    data_snapshot.set_custom_snapshot(None)


@pytest.fixture(autouse=True)
def _frozen_now(request):
    """The clock starts at NOW and ticks (so timeouts still pass), except in the real-clock packages."""
    if request.path.parent.name in REAL_CLOCK_DIRS:
        yield
        return
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def clock():
    """The clock stopped at NOW: no day, week or month flips while a test reads its interval;
    `clock.shift(seconds)` moves it."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def database_url(name: str | None = None) -> str:
    """The test database (or another of its server's, `name`) as a DATABASE_URL for a subprocess."""
    from django.db import connection

    db = connection.settings_dict
    host = quote(db.get("HOST") or "127.0.0.1", safe="")  # the embedded cluster's socket folder, quoted
    port = f":{db['PORT']}" if db.get("PORT") else ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db.get('USER') or 'postgres'}{password}@{host}{port}/{name or db['NAME']}"


def _embedded_session() -> bool:
    """The suite runs on the embedded PostgreSQL, and this is the session's main process (not an xdist worker)."""
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"] == "config.embedded_db" and "PYTEST_XDIST_WORKER" not in os.environ


def pytest_configure(config):
    """The main process starts the embedded PostgreSQL (or finds it running) before any worker connects."""
    if _embedded_session():
        from config import embedded_db

        embedded_db.ensure()


def pytest_unconfigure(config):
    """The main process stops the embedded PostgreSQL if it started it (a running demo's is left alone)."""
    if _embedded_session():
        from config import embedded_db

        embedded_db.stop_if_started_here()


@pytest.fixture(autouse=True)
def _empty_cache():
    """Every test starts with an empty cache (rankings and whole pages are cached)."""
    from django.core.cache import cache

    cache.clear()
