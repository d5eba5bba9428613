"""Leaderboard traffic with hand-computed totals, shared by the ranking tests and the browser tests."""
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from marketplace.models import Model
from tests.analytics.conftest import record, run_batch, write_jsonl


def hours_before(now: datetime, hours_ago: float) -> str:
    """An openrouter `created_at` this many hours before `now`."""
    return (now - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def leaderboard_traffic(directory: Path) -> datetime:
    """Ingest two listed models and one unlisted, in the last day and the day before; return `now`."""
    current = timezone.now()
    now = current.replace(minute=30, second=0, microsecond=0)
    # App One's request runs today (an hour ago, or at midnight in the first hour): apps roll up by
    # day, so their `day` window is today so far.
    midnight = current.replace(hour=0, minute=0, second=0, microsecond=0)
    app_hours_ago = min(1, (now - midnight).total_seconds() / 3600)
    rows = [
        # last 24 h: alpha 1000 + 500 tokens ($0.30), beta 300 tokens ($0.60), hidden 5000 tokens
        record(id="a1", model="lab/alpha", created_at=hours_before(now, app_hours_ago), tokens_prompt=800,
               tokens_completion=200, total_cost=0.2, origin="https://app.example", app_name="App One"),
        record(id="a2", model="lab/alpha", created_at=hours_before(now, 5), tokens_prompt=400,
               tokens_completion=100, total_cost=0.1),
        record(id="b1", model="lab/beta", provider_name="Other", created_at=hours_before(now, 2), tokens_prompt=200,
               tokens_completion=100, total_cost=0.6),
        record(id="h1", model="lab/hidden", created_at=hours_before(now, 3), tokens_prompt=4000,
               tokens_completion=1000, total_cost=9.0),
        # the preceding 24 h: alpha 1000 tokens, beta 600 tokens
        record(id="a0", model="lab/alpha", created_at=hours_before(now, 30), tokens_prompt=900,
               tokens_completion=100, total_cost=0.05),
        record(id="b0", model="lab/beta", provider_name="Other", created_at=hours_before(now, 40), tokens_prompt=500,
               tokens_completion=100, total_cost=0.05),
    ]
    batch = run_batch(write_jsonl(directory / "leaderboard.jsonl", rows))
    # Every row in, or say why (a stale "now" once emptied them: analytics.ingest.formats.fields._latest).
    assert (batch.accepted, batch.duplicates, batch.rejected) == (len(rows), 0, 0), (now, batch.accepted, batch.duplicates,
                                                                                      batch.rejected, batch.error)
    Model.objects.filter(slug__in=["lab/alpha", "lab/beta"]).update(listed=True)
    return now


@pytest.fixture
def traffic(tmp_path) -> datetime:
    """The leaderboard traffic; the fixture's value is the `now` its hours count back from."""
    return leaderboard_traffic(tmp_path)
