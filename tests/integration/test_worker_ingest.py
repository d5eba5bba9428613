"""Ingestion through real Celery worker processes and the real broker (Redis or RabbitMQ on PostgreSQL runs)."""
import os
import signal
import time
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db.models import Sum

from analytics.models import EndpointHour, Generation, IngestBatch, IngestChunk
from billing.models import Account, LedgerEntry
from config.celery import app
from core.money import usd_to_units
from tests.analytics.conftest import write_jsonl

from .conftest import totals_assert_truth, traffic, wait_for

pytestmark = [pytest.mark.slow]


def test_a_real_worker_ingests_a_file_queued_by_the_command(tmp_path, workers, capsys):
    path = write_jsonl(tmp_path / "traffic.jsonl", [*traffic(range(300)), "not json", *traffic(range(10))])
    workers.start()

    call_command("ingest", str(path), "--wait", "--timeout", "120")

    out = capsys.readouterr().out
    assert "traffic.jsonl: 300 accepted, 10 duplicates, 1 rejected" in out
    assert "; in the public rankings" in out
    batch = IngestBatch.objects.get()
    assert batch.status == IngestBatch.Status.DONE
    assert batch.ranked_at is not None  # --wait returned after the batch's end moved the rankings
    assert Generation.objects.count() == 300
    assert EndpointHour.objects.aggregate(n=Sum("requests"))["n"] == 300


def test_two_workers_ingesting_overlapping_files_at_once_give_exact_totals(tmp_path, workers, settings):
    settings.INGEST_CHUNK_LINES = 250
    first = write_jsonl(tmp_path / "first.jsonl", traffic(range(0, 3000)))
    second = write_jsonl(tmp_path / "second.jsonl", traffic(range(1500, 4500)))
    workers.start(concurrency=2)
    workers.start(concurrency=1)

    call_command("ingest", str(first), str(second), "--wait", "--timeout", "240")

    batches = list(IngestBatch.objects.order_by("pk"))
    assert [b.status for b in batches] == ["done", "done"]
    assert sum(b.accepted for b in batches) == 4500
    assert sum(b.duplicates for b in batches) == 1500
    assert Generation.objects.count() == 4500
    assert EndpointHour.objects.aggregate(n=Sum("requests"))["n"] == 4500
    truth = sum(usd_to_units(Decimal(repr(r["total_cost"]))) for r in traffic(range(4500)))
    assert EndpointHour.objects.aggregate(s=Sum("spend_units"))["s"] == truth
    assert -sum(Account.objects.values_list("balance_units", flat=True)) == truth
    assert LedgerEntry.objects.aggregate(s=Sum("amount_units"))["s"] == -truth


@pytest.mark.skipif(django_settings.CELERY_BROKER_URL.startswith("filesystem://"),
                    reason="needs a broker that hands a SIGKILLed worker's message out again (Redis or RabbitMQ, as"
                           " in CI): the filesystem broker deletes a message when a worker takes it")
def test_a_worker_killed_mid_chunk_has_its_chunk_redone_by_another_and_totals_stay_exact(tmp_path, workers, settings,
                                                                                          capsys):
    """SIGKILL a worker in the middle of a chunk; the broker hands that chunk to a waiting worker; nothing is
    lost or doubled. Prints how long the chunk waited: on RabbitMQ the broker requeues it when the dead
    worker's connection drops; on Redis after the visibility timeout (3 s here, 5 minutes by default)."""
    settings.INGEST_CHUNK_LINES = 2_000  # 8 chunks; the kill after 2 lands while others wait
    path = write_jsonl(tmp_path / "big.jsonl", traffic(range(16_000)))
    fast_redelivery = {"CELERY_VISIBILITY_TIMEOUT": "3", "CELERY_UNACKED_RESTORE_INTERVAL": "1"}  # Redis only
    # The standby is ready and connected but takes no ingest chunk until the victim is dead: what it then
    # takes first is the redelivered message (a requeued message goes back to the head of its queue).
    workers.start(concurrency=1, extra_env=fast_redelivery, queues="rollups,reports,billing,default")
    victim = workers.start(concurrency=1, extra_env=fast_redelivery, queues="ingest")

    call_command("ingest", str(path))  # queued, no wait
    batch = IngestBatch.objects.get()
    wait_for(lambda: IngestBatch.objects.get().chunks_done >= 2, timeout=120, message="no chunk done",
             workers=workers)
    running = IngestChunk.objects.filter(batch=batch, done=False, attempts__gte=1)
    for _ in range(3):
        wait_for(running.exists, timeout=60, message="no chunk running", workers=workers)
        os.killpg(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait(timeout=10)
        # Concurrency 1 and prefetch 1: the victim held at most the chunk it was running (started, not done).
        if killed := list(running.values_list("index", flat=True)):
            break
        victim = workers.start(concurrency=1, extra_env=fast_redelivery, queues="ingest")  # killed between chunks
    [killed] = killed

    # limit=1: return on the standby's answer (a broadcast otherwise waits out its whole timeout).
    assert app.control.add_consumer("ingest", reply=True, limit=1, timeout=10), "the standby worker did not answer"
    chunk = IngestChunk.objects.filter(batch=batch, index=killed)
    wait_for(lambda: chunk.get().attempts >= 2, timeout=120, message="the killed chunk was never redelivered",
             workers=workers)
    redelivered = time.monotonic() - killed_at
    wait_for(lambda: chunk.get().done, timeout=120, message="the killed chunk was not redone", workers=workers)
    redone = time.monotonic() - killed_at
    with capsys.disabled():
        print(f"\n[{urlsplit(settings.CELERY_BROKER_URL).scheme}] chunk {killed} of a SIGKILLed worker started again"
              f" {redelivered:.2f} s after the kill, done after {redone:.2f} s")

    wait_for(lambda: IngestBatch.objects.get().status == IngestBatch.Status.DONE, timeout=240,
             message="the batch did not finish after the kill", workers=workers)
    batch.refresh_from_db()
    assert (batch.accepted, batch.duplicates, batch.rejected) == (16_000, 0, 0)
    assert chunk.get().attempts == 2
    totals_assert_truth(path)
