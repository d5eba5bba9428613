"""A reprice racing real workers that ingest the same range (PostgreSQL, a real Celery worker and broker)."""
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum

from analytics.models import Generation, IngestBatch, Reprice
from analytics.repricing.services import reprice_apply, reprice_plan
from billing.ledger import ledger_verify
from billing.models import Account, LedgerEntry
from marketplace.models import EndpointPrice
from marketplace.price_history import endpoint_price_set
from tests.analytics.conftest import record, write_jsonl
from tests.analytics.test_repricing import rollups_assert_equal_generations
from tests.marketplace.factories import EndpointFactory, ModelFactory, ProviderFactory

from .conftest import wait_for

pytestmark = [pytest.mark.slow]

DAY0 = datetime.now(tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
ENDPOINT = {"model": "lab/model-r", "provider_name": "Provider R"}


def _records(ids: range) -> list[dict]:
    """Catalog-priced requests of one endpoint over 5 days and 7 accounts; every 10th the gateway's, every 11th BYOK."""
    return [record(id=f"gen-{i}", account=f"acct_{i % 7}", created_at=(DAY0 + timedelta(minutes=17 * i % 7200))
                   .isoformat().replace("+00:00", "Z"), tokens_prompt=1 + i % 1013, tokens_completion=1 + i % 331,
                   native_tokens_reasoning=i % 5, native_tokens_cached=i % 17, is_byok=i % 11 == 3,
                   total_cost=0.0001 if i % 10 == 0 else ..., api_key=f"k{i % 3}", **ENDPOINT)
            for i in ids]


def books_assert_true() -> None:
    """Each balance is the sum of its entries, and minus the account's (non-BYOK) generation costs."""
    assert ledger_verify().problems == []
    call_command("ledger_verify")
    spend: Counter = Counter()
    for account_id, cost, byok in Generation.objects.values_list("account_id", "cost_units", "is_byok"):
        spend[account_id] += 0 if byok else cost
    for account in Account.objects.all():
        assert account.balance_units == (LedgerEntry.objects.filter(account=account).aggregate(
            s=Sum("amount_units"))["s"] or 0) == -spend[account.pk], account.external_id


def test_a_reprice_racing_ingestion_of_its_range_leaves_rollups_and_balances_exact(tmp_path, workers, settings):
    settings.INGEST_CHUNK_LINES = 500
    model = ModelFactory(slug="lab/model-r")
    endpoint = EndpointFactory(model=model, provider=ProviderFactory(name="Provider R"),
                               prompt_price=Decimal("0.000001"), completion_price=Decimal("0.000002"))
    EndpointPrice.objects.create(endpoint=endpoint, valid_from=datetime(2000, 1, 1, tzinfo=UTC),
                                 prompt_price=Decimal("0.000001"), completion_price=Decimal("0.000002"))
    first = write_jsonl(tmp_path / "first.jsonl", _records(range(0, 4000)))
    second = write_jsonl(tmp_path / "second.jsonl", _records(range(4000, 12000)))
    workers.start(concurrency=2)
    call_command("ingest", str(first), "--wait", "--timeout", "240")
    rollups_assert_equal_generations()
    books_assert_true()

    price = endpoint_price_set(model_id=model.pk, provider_id=endpoint.provider_id, valid_from=DAY0,
                               prompt=Decimal("0.000003"), completion=Decimal("0.000007"),
                               cache_read=Decimal("0.0000005"), reasoning=Decimal("0.000011"))
    call_command("ingest", str(second))  # queued: the workers ingest the same range while the reprice applies
    racing = IngestBatch.objects.order_by("pk").last()
    wait_for(lambda: IngestBatch.objects.get(pk=racing.pk).chunks_done >= 2, timeout=120,
             message="the second batch did not start", workers=workers)
    plan = reprice_plan(model_id=model.pk, provider_id=endpoint.provider_id, price_id=price.pk, start=DAY0,
                        created_by="staff")
    chunks_before = IngestBatch.objects.get(pk=racing.pk).chunks_done
    result = reprice_apply(reprice_id=plan.reprice_id, actor="staff", batch_rows=300)
    chunks_after = IngestBatch.objects.get(pk=racing.pk).chunks_done
    wait_for(lambda: IngestBatch.objects.filter(status=IngestBatch.Status.DONE).count() == 2, timeout=240,
             message="the second batch did not finish", workers=workers)

    assert result.applied_now
    assert result.batches >= 10  # many short transactions, interleaved with the chunks
    assert result.requests > 3600  # the first file's catalog rows, and the second's committed before it read
    assert chunks_before < chunks_after  # chunks of the same range committed while it applied
    assert Generation.objects.count() == 12000
    assert Reprice.objects.get().status == Reprice.Status.APPLIED
    rollups_assert_equal_generations()
    books_assert_true()
    # Gateway rows kept their cost; every catalog row the reprice changed carries the new price.
    assert set(Generation.objects.filter(cost_source=Generation.CostSource.GATEWAY).values_list(
        "cost_units", flat=True)) == {1_000_000}
    assert Generation.objects.filter(price_id=price.pk).count() >= result.requests
