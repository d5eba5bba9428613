"""Ingestion through real Celery worker processes and the real broker (Redis on PostgreSQL runs)."""
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db.models import Sum

from analytics.models import EndpointHour, Generation, IngestBatch
from billing.models import Account, LedgerEntry
from core.money import usd_to_units
from tests.analytics.conftest import write_jsonl

from .conftest import totals_assert_truth, traffic

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
                    reason="needs a broker that hands a SIGKILLed worker's message out again (Redis, as in CI):"
                           " the filesystem broker deletes a message when a worker takes it")
def test_a_worker_killed_mid_file_and_restarted_leaves_exact_totals(tmp_path, workers, settings):
    """SIGKILL a worker in the middle of a batch; the broker hands its chunk out again; nothing is lost or doubled."""
    import os
    import signal

    from .conftest import wait_for

    settings.INGEST_CHUNK_LINES = 2_000  # 8 chunks; the kill after 2 lands while others wait
    records = traffic(range(16_000))
    path = write_jsonl(tmp_path / "big.jsonl", records)
    fast_redelivery = {"CELERY_VISIBILITY_TIMEOUT": "3", "CELERY_UNACKED_RESTORE_INTERVAL": "1"}
    victim = workers.start(concurrency=1, extra_env=fast_redelivery)

    call_command("ingest", str(path))  # queued, no wait
    batch = IngestBatch.objects.get()
    wait_for(lambda: IngestBatch.objects.get().chunks_done >= 2, timeout=120, message="no chunk done",
             workers=workers)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    batch.refresh_from_db()
    assert batch.chunks_done < batch.chunks_total  # killed in the middle

    workers.start(concurrency=2, extra_env=fast_redelivery)
    wait_for(lambda: IngestBatch.objects.get().status == IngestBatch.Status.DONE, timeout=240,
             message="the batch did not finish after the restart", workers=workers)

    batch.refresh_from_db()
    assert (batch.accepted, batch.duplicates, batch.rejected) == (16_000, 0, 0)
    totals_assert_truth(path)
