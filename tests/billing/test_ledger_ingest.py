"""Usage debits from ingestion: once per chunk and account, however often the chunk is retried."""
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum

from analytics import ingest
from analytics.models import IngestChunk
from billing.models import Account, LedgerEntry
from core.money import usd_to_units
from tests.analytics.conftest import record, run_batch, write_jsonl
from tests.billing.factories import member_of

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


def test_a_chunk_of_a_thousand_accounts_alerts_exactly_the_five_that_crossed(
        tmp_path, after_debit_calls, django_capture_on_commit_callbacks, mailoutbox):
    """End to end: one chunk debits 1,000 accounts; the one billing task it queues emails exactly the
    five whose balance fell under their alert threshold, once, in a constant number of queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.alerts import billing_after_debit
    from billing.ledger import ledger_post
    from billing.models import Membership

    ingest.pricebook_reset()
    moment = datetime.now(tz=UTC) - timedelta(minutes=1)
    Account.objects.bulk_create([Account(external_id=f"acct_{i:04d}") for i in range(1000)])
    crossing = {f"acct_{i:04d}" for i in (3, 141, 500, 777, 999)}
    for account in Account.objects.filter(external_id__startswith="acct_"):
        ledger_post(account_id=account.pk, kind=LedgerEntry.Kind.ADJUSTMENT, amount_units=usd_to_units("2"),
                    idempotency_key=f"seed:{account.pk}", actor="test", memo="seed")
        # Everyone has a $1 alert; the five crossing spend $1.50 of their $2, the rest $0.50.
        Account.objects.filter(pk=account.pk).update(low_balance_threshold_units=usd_to_units("1"))
        if account.external_id in crossing:
            member_of(account, Membership.Role.OWNER, account.external_id, password=None)
    records = [record(id=f"g{i}", created_at=iso(moment), account=f"acct_{i:04d}",
                      total_cost=1.5 if f"acct_{i:04d}" in crossing else 0.5) for i in range(1000)]
    batch = ingest.batch_queue(path=write_jsonl(tmp_path / "thousand.jsonl", records), source="thousand")
    ingest.batch_split(batch_id=batch.pk)
    with django_capture_on_commit_callbacks(execute=True):
        ingest.chunk_ingest(batch_id=batch.pk, index=0)
    assert len(after_debit_calls) == 1  # one task for the chunk
    assert len(after_debit_calls[0]) == 1000

    for _ in range(2):  # delivered twice: the second sends nothing
        with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as queries:
            billing_after_debit(account_ids=after_debit_calls[0])
        assert len(queries) < 20
    assert sorted(m.to[0] for m in mailoutbox) == sorted(f"{e}@example.com" for e in crossing)
    assert all(m.subject.startswith("Low credit balance on acct_") for m in mailoutbox)
    assert Account.objects.get(external_id="acct_0141").balance_units == usd_to_units("0.5")
