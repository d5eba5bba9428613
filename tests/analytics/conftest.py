"""Helpers to run ingestion in-process, chunk by chunk, as the workers would."""
from pathlib import Path

import orjson
import pytest

from analytics import ingest
from analytics.models import IngestBatch, IngestChunk


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


@pytest.fixture(autouse=True)
def _fresh_prices():
    ingest.pricebook_reset()
    yield
    ingest.pricebook_reset()


@pytest.fixture(autouse=True)
def _no_task_queueing(monkeypatch):
    """In-process runs apply chunks directly; stop on_commit hooks from queueing real tasks."""
    from analytics import tasks

    for name in ("ingest_batch_split", "ingest_chunk", "rollup_rankings_refresh", "usage_prewarm",
                 "usage_refresh_later"):
        monkeypatch.setattr(getattr(tasks, name), "delay", lambda *a, **k: None)
        monkeypatch.setattr(getattr(tasks, name), "apply_async", lambda *a, **k: None)
