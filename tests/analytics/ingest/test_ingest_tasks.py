"""The ingest tasks retry what a second try can cure (a dropped connection) and fail the batch otherwise."""
import psycopg
import pytest
from celery.exceptions import Retry
from django.db import OperationalError

from analytics import ingest
from analytics.ingest import chunk, tasks
from analytics.models import IngestBatch
from tests.analytics.conftest import record, write_jsonl

pytestmark = pytest.mark.django_db


def _batch(tmp_path) -> IngestBatch:
    batch = ingest.batch_queue(path=write_jsonl(tmp_path / "one.jsonl", [record()]), source="one.jsonl")
    ingest.batch_split(batch_id=batch.pk)
    return batch


@pytest.mark.parametrize("error", [
    # The chunk's COPY runs on psycopg's own cursor: a connection terminated there is psycopg's error.
    psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
    psycopg.errors.DeadlockDetected("deadlock detected"),
    psycopg.InterfaceError("the connection is lost"),
    OperationalError("server closed the connection unexpectedly"),  # through Django's wrapper
])
def test_a_dropped_connection_is_retried_and_leaves_the_batch_running(tmp_path, monkeypatch, error):
    batch = _batch(tmp_path)
    calls = []

    def drop(**kwargs):
        calls.append(kwargs)
        raise error

    monkeypatch.setattr(chunk, "chunk_ingest", drop)
    with pytest.raises(Retry) as retry:  # run eagerly, propagated: the retry is raised, not queued
        tasks.ingest_chunk.apply(args=(batch.pk, 0))

    assert retry.value.exc is error
    assert len(calls) == 1
    batch.refresh_from_db()
    assert (batch.status, batch.error) == (IngestBatch.Status.RUNNING, "")


def test_any_other_error_fails_the_batch_at_once(tmp_path, monkeypatch):
    batch = _batch(tmp_path)
    calls = []

    def broken(**kwargs):
        calls.append(kwargs)
        raise ValueError("a bug")

    monkeypatch.setattr(chunk, "chunk_ingest", broken)
    with pytest.raises(ValueError, match="a bug"):
        tasks.ingest_chunk.apply(args=(batch.pk, 0))

    assert len(calls) == 1
    batch.refresh_from_db()
    assert (batch.status, batch.error) == (IngestBatch.Status.FAILED, "chunk 0: ValueError: a bug")
