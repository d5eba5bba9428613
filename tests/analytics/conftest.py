"""Helpers to run ingestion in-process, chunk by chunk, as the workers would, and fixture traffic."""
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import orjson
import pytest

from analytics import ingest
from analytics.models import IngestBatch, IngestChunk
from billing.models import Account
from tests.conftest import TODAY


def write_jsonl(path: Path, records: list[dict | str]) -> Path:
    """Write records (dicts, or raw strings for broken lines) one per line."""
    with path.open("wb") as handle:
        for record in records:
            handle.write(record.encode() if isinstance(record, str) else orjson.dumps(record))
            handle.write(b"\n")
    return path


def run_batch(path: Path, fmt: str = "auto", source: str | None = None) -> IngestBatch:
    """Queue, split and apply every chunk of a file in this process; return the finished batch."""
    batch = ingest.batch_queue(path=path, source=source or path.name, fmt=fmt)
    ingest.batch_split(batch_id=batch.pk)
    for index in IngestChunk.objects.filter(batch_id=batch.pk).values_list("index", flat=True):
        ingest.chunk_ingest(batch_id=batch.pk, index=index)
    batch.refresh_from_db()
    return batch


def record(**fields) -> dict:
    """A valid openrouter generation with sensible defaults, overridden by `fields`."""
    base = {
        "id": "gen-1", "created_at": "2026-02-24T21:19:33.705Z", "model": "meta-llama/llama-4-scout",
        "provider_name": "DeepInfra", "account": "acct_a", "api_key": "key_1",
        "tokens_prompt": 100, "tokens_completion": 50, "native_tokens_reasoning": 0, "native_tokens_cached": 0,
        "total_cost": 0.001, "is_byok": False, "latency": 400, "generation_time": 1000,
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


D1, D2, D40 = (TODAY - timedelta(days=n) for n in (1, 2, 40))


def at(day, hour, minute=0) -> str:
    """An ISO UTC timestamp on `day`."""
    return datetime.combine(day, time(hour, minute), tzinfo=UTC).isoformat().replace("+00:00", "Z")


def account_traffic(directory: Path, *, today: date = TODAY) -> dict:
    """Account A: four requests in the last 30 days and one 40 days ago; account B: one; and the days.

    The days are D1, D2 and D40 before `today`: TODAY, the frozen clock's, except for the browser
    tests, whose live server runs on the real clock and passes the real date.
    """
    d1, d2, d40 = (today - timedelta(days=n) for n in (1, 2, 40))
    alpha = {"model": "lab/alpha", "provider_name": "ProvOne", "api_key": "k1"}
    beta = {"model": "lab/beta", "provider_name": "ProvTwo", "api_key": "k2"}
    records = [
        record(id="r1", created_at=at(d2, 10), origin="https://a.example/", app_name="@evil app", tokens_prompt=1000,
               tokens_completion=500, native_tokens_reasoning=100, native_tokens_cached=200, total_cost=0.015,
               finish_reason='=HYPERLINK("http://x")', account="acct_a", **alpha),
        # 23:30 at UTC-5 is 04:30 UTC the next day: it belongs to d1.
        record(id="r2", created_at=f"{d2.isoformat()}T23:30:00-05:00", tokens_prompt=2000, tokens_completion=1000,
               total_cost=0.03, latency=600, account="acct_a", **beta),
        record(id="r3", created_at=at(d1, 12), origin="https://a.example/", tokens_prompt=3000, tokens_completion=0,
               total_cost=0, status=500, latency=None, account="acct_a", **alpha),
        record(id="r4", created_at=at(d40, 8), tokens_prompt=500, tokens_completion=500, total_cost=0.01,
               account="acct_a", **alpha),
        record(id="r5", created_at=at(d1, 13), tokens_prompt=100, tokens_completion=100, total_cost=0.002,
               is_byok=True, account="acct_a", **beta),
        record(id="b1", created_at=at(d1, 9), tokens_prompt=9999, tokens_completion=1, total_cost=9.99,
               account="acct_b", model="lab/alpha", provider_name="ProvOne", api_key="kb"),
    ]
    batch = run_batch(write_jsonl(directory / "account-traffic.jsonl", records))
    assert batch.accepted == 6
    return {"a": Account.objects.get(external_id="acct_a"), "b": Account.objects.get(external_id="acct_b"),
            "d1": d1, "d2": d2, "d40": d40}


@pytest.fixture(autouse=True)
def _fresh_prices():
    ingest.pricebook_reset()
    yield
    ingest.pricebook_reset()


@pytest.fixture(autouse=True)
def _no_task_queueing(monkeypatch):
    """In-process runs apply chunks directly; stop on_commit hooks from queueing real tasks."""
    from analytics.ingest.tasks import ingest_batch_split, ingest_chunk
    from analytics.rankings.tasks import rollup_rankings_refresh
    from analytics.usage.tasks import usage_prewarm, usage_refresh_later

    for task in (ingest_batch_split, ingest_chunk, rollup_rankings_refresh, usage_prewarm, usage_refresh_later):
        monkeypatch.setattr(task, "delay", lambda *a, **k: None)
        monkeypatch.setattr(task, "apply_async", lambda *a, **k: None)
