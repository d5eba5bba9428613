"""Fresh means fresh: the end of a batch is in the public rankings at once, and `ingest --wait` waits for it."""
import pytest
from django.core.cache import cache

from analytics import ingest
from analytics.models import IngestBatch, IngestChunk
from analytics.rankings.cache import rankings_invalidate
from analytics.rankings.tasks import rollup_rankings_refresh
from marketplace.models import Model
from tests.analytics.conftest import D1, at, record, write_jsonl


@pytest.fixture
def refresh_runs_now(db, monkeypatch):
    """The rankings refresh runs as a worker would run it, at once; its catch-up (41 s later) never does."""
    cache.clear()
    monkeypatch.setattr(rollup_rankings_refresh, "delay", lambda **kwargs: rollup_rankings_refresh.run(**kwargs))


def _listed() -> None:
    """The model seen first in the traffic is listed by staff (which moves the rankings at once)."""
    Model.objects.update(listed=True)
    rankings_invalidate()


def _tokens(client) -> int:
    rows = client.get("/api/v1/rankings/models", {"window": "day", "metric": "tokens"}).json()["results"]
    return sum(int(row["value"]) for row in rows)


def test_the_last_chunk_of_a_batch_moves_the_rankings_inside_the_minute(
        tmp_path, settings, client, refresh_runs_now, django_capture_on_commit_callbacks):
    settings.INGEST_CHUNK_LINES = 10
    path = write_jsonl(tmp_path / "t.jsonl", [
        record(id=f"g{i}", created_at=at(D1, 23, 59 - i % 30), tokens_prompt=100, tokens_completion=50)
        for i in range(30)])
    batch = ingest.batch_queue(path=path, source="t.jsonl", fmt="auto")
    ingest.batch_split(batch_id=batch.pk)
    assert IngestChunk.objects.filter(batch=batch).count() == 3

    with django_capture_on_commit_callbacks(execute=True):
        ingest.chunk_ingest(batch_id=batch.pk, index=0)
    _listed()
    assert _tokens(client) == 10 * 150  # the first chunk moved the version; the page is cached under it

    with django_capture_on_commit_callbacks(execute=True):
        ingest.chunk_ingest(batch_id=batch.pk, index=1)  # inside the window: left to the catch-up run
    assert _tokens(client) == 10 * 150
    with django_capture_on_commit_callbacks(execute=True):
        ingest.chunk_ingest(batch_id=batch.pk, index=2)  # the batch's end: at once

    assert _tokens(client) == 30 * 150
    batch.refresh_from_db()
    assert batch.status == IngestBatch.Status.DONE
    assert batch.in_rankings


def test_a_gateway_bodys_end_follows_the_rate_limit_and_its_catch_up_ranks_it(
        tmp_path, client, clock, refresh_runs_now, monkeypatch, django_capture_on_commit_callbacks):
    """A body POSTed to the ingest API is one chunk of a stream: its end does not force the refresh."""
    catch_ups = []
    monkeypatch.setattr(rollup_rankings_refresh, "apply_async", lambda **kw: catch_ups.append(kw["countdown"]))

    def body(name: str, first: int) -> IngestBatch:
        path = write_jsonl(tmp_path / f"{name}.jsonl", [
            record(id=f"{name}{i}", created_at=at(D1, 23, 50 + i), tokens_prompt=100, tokens_completion=50)
            for i in range(first)])
        batch = ingest.batch_queue(path=path, source=IngestBatch.API_SOURCE, fmt="auto")
        ingest.batch_split(batch_id=batch.pk)
        with django_capture_on_commit_callbacks(execute=True):
            ingest.chunk_ingest(batch_id=batch.pk, index=0)
        batch.refresh_from_db()
        return batch

    first = body("a", 2)  # the version moved long ago: the first body's chunk moves it
    _listed()
    assert (_tokens(client), first.in_rankings) == (2 * 150, True)
    second = body("b", 3)  # a finished batch, inside the window: left to the one catch-up run
    assert second.status == IngestBatch.Status.DONE
    assert (_tokens(client), second.in_rankings, catch_ups) == (2 * 150, False, [41])
    clock.shift(41)
    rollup_rankings_refresh.run()  # the catch-up, its countdown later, ranks it
    second.refresh_from_db()
    assert (_tokens(client), second.in_rankings) == (5 * 150, True)


def test_a_batch_whose_last_chunk_held_only_duplicates_still_reaches_the_rankings(
        tmp_path, settings, client, refresh_runs_now, django_capture_on_commit_callbacks):
    settings.INGEST_CHUNK_LINES = 10
    records = [record(id=f"g{i}", created_at=at(D1, 22), tokens_prompt=100, tokens_completion=50) for i in range(10)]
    path = write_jsonl(tmp_path / "t.jsonl", records + records)  # the second chunk repeats the first
    batch = ingest.batch_queue(path=path, source="t.jsonl", fmt="auto")
    ingest.batch_split(batch_id=batch.pk)
    with django_capture_on_commit_callbacks(execute=True):
        ingest.chunk_ingest(batch_id=batch.pk, index=0)
    _listed()
    assert _tokens(client) == 10 * 150
    with django_capture_on_commit_callbacks(execute=True):
        ingest.chunk_ingest(batch_id=batch.pk, index=1)

    batch.refresh_from_db()
    assert (batch.accepted, batch.duplicates) == (10, 10)
    assert batch.ranked_at is not None  # a refresh ran for the batch's end, inside the first chunk's minute
    assert _tokens(client) == 10 * 150


def test_ingest_wait_returns_when_the_batch_is_in_the_rankings(db, tmp_path, monkeypatch, capsys):
    from django.core.management import CommandError, call_command
    from django.utils import timezone

    path = write_jsonl(tmp_path / "t.jsonl", [record(id="w1", created_at=at(D1, 9))])
    readings = []

    def fake_wait(*, batch_ids, ranked, **kwargs):
        readings.append(ranked)
        [batch] = IngestBatch.objects.filter(pk__in=batch_ids)
        IngestBatch.objects.filter(pk=batch.pk).update(status="done", accepted=1, chunks_done=1)
        return list(IngestBatch.objects.filter(pk__in=batch_ids))

    monkeypatch.setattr("analytics.management.commands.ingest.batch_wait", fake_wait)
    with pytest.raises(CommandError, match="done but not yet in the rankings"):
        call_command("ingest", str(path), "--wait", "--timeout", "1")
    assert readings == [True]

    def ranked_wait(*, batch_ids, ranked, **kwargs):
        IngestBatch.objects.filter(pk__in=batch_ids).update(status="done", accepted=1, ranked_at=timezone.now())
        return list(IngestBatch.objects.filter(pk__in=batch_ids))

    monkeypatch.setattr("analytics.management.commands.ingest.batch_wait", ranked_wait)
    call_command("ingest", str(path), "--wait")
    assert "t.jsonl: 1 accepted, 0 duplicates, 0 rejected (auto, 0 lines); in the public rankings" in (
        capsys.readouterr().out)
