"""demo_setup gives the demo account credits to show, and running it twice changes nothing."""
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from analytics import ingest
from billing.models import Budget, LedgerEntry, Payment, PromoCode
from tests.analytics.conftest import record, run_batch, write_jsonl

from .conftest import iso

pytestmark = pytest.mark.django_db


def test_demo_setup_is_idempotent(tmp_path, capsys):
    ingest.pricebook_reset()
    moment = datetime.now(tz=UTC) - timedelta(minutes=1)
    run_batch(write_jsonl(tmp_path / "demo.jsonl", [
        record(id=f"d{i}", created_at=iso(moment), total_cost=1.25, account="acct_busy", api_key=f"key_{i % 3}")
        for i in range(12)]))
    call_command("demo_setup")
    first = capsys.readouterr().out
    assert "promo code to redeem on /account/credits/: DEMO-10" in first
    call_command("demo_setup")
    assert Payment.objects.filter(status="succeeded").count() == 1
    assert LedgerEntry.objects.filter(kind="grant").count() == 1
    assert PromoCode.objects.filter(code="DEMO-10").exists()
    limited = Budget.objects.filter(scope="key", mode="hard").order_by("period")
    assert [b.period for b in limited] == ["day", "month"]
    call_command("ledger_verify")
    # Usage so far was $15; the purchase covers it with $100 to spare, the grant adds $25.
    assert "credits: balance $125.00" in capsys.readouterr().out
