"""Usage debits from ingestion: once per chunk and account, however often the chunk is retried."""
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum

from analytics import ingest
from analytics.models import IngestChunk
from billing.models import Account, LedgerEntry
from core.money import usd_to_units
from tests.analytics.conftest import record, run_batch, write_jsonl

from .conftest import iso

pytestmark = pytest.mark.django_db


def test_a_retried_chunk_debits_once(tmp_path, after_debit_calls, django_capture_on_commit_callbacks):
    ingest.pricebook_reset()
    moment = datetime.now(tz=UTC) - timedelta(minutes=1)
    records = [record(id=f"r{i}", created_at=iso(moment), total_cost=0.0123456789, account="acct_x")
               for i in range(3)] + [record(id="b1", created_at=iso(moment), total_cost=1.5, account="acct_y"),
                                     record(id="byok", created_at=iso(moment), total_cost=7, is_byok=True,
                                            account="acct_y")]
    path = write_jsonl(tmp_path / "usage.jsonl", records)
    batch = ingest.batch_queue(path=path, source="usage.jsonl", fmt="auto")
    ingest.batch_split(batch_id=batch.pk)
    with django_capture_on_commit_callbacks(execute=True):
        ingest.chunk_ingest(batch_id=batch.pk, index=0)
    x, y = Account.objects.get(external_id="acct_x"), Account.objects.get(external_id="acct_y")
    assert after_debit_calls == [sorted([x.pk, y.pk])]

    # Redelivered: skipped. Done flag lost (a worker died after commit): the rows are duplicates now.
    ingest.chunk_ingest(batch_id=batch.pk, index=0)
    IngestChunk.objects.filter(batch_id=batch.pk, index=0).update(done=False)
    ingest.chunk_ingest(batch_id=batch.pk, index=0)
    # The same file ingested again as a new batch: every row a duplicate.
    run_batch(path)

    x.refresh_from_db()
    y.refresh_from_db()
    assert x.balance_units == -3 * usd_to_units("0.0123456789")
    assert y.balance_units == -usd_to_units("1.5")  # BYOK not debited
    assert LedgerEntry.objects.filter(kind="usage").count() == 2
    entry = x.ledger.get()
    assert entry.idempotency_key == f"ingest:batch:{batch.pk}:chunk:0:account:{x.pk}"
    assert LedgerEntry.objects.aggregate(s=Sum("amount_units"))["s"] == x.balance_units + y.balance_units
