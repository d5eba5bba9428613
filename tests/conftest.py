"""Fixtures shared by every test package, and the one instant the tests take for now.

NOW is today at 12:00 UTC unless TOKENGRID_TEST_NOW gives another instant (ISO 8601, e.g.
`TOKENGRID_TEST_NOW=2027-03-01T00:10:00Z`), so the suite can be run as if at 23:59 or on a month's
first day. Every test outside tests/browser and tests/integration (whose Chromium and worker
subprocesses do not share the fake clock) runs with the clock set to NOW and ticking.

The whole session reads genai-prices from the pinned snapshot (PINNED_SNAPSHOT), never from the
installed release's data: catalog_sync and genai-prices' own calc_price alike.
"""
import os
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
import time_machine
from django.db import connection


def _now() -> datetime:
    raw = os.environ.get("TOKENGRID_TEST_NOW", "").strip()
    if raw:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
    return datetime.combine(datetime.now(tz=UTC).date(), time(12), tzinfo=UTC)


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


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config, items):
    """Skip tests marked `postgres` when the suite runs on SQLite."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _empty_cache():
    """Every test starts with an empty cache (rankings and whole pages are cached)."""
    from django.core.cache import cache

    cache.clear()
