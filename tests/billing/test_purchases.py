"""Purchases: the fee, refunds of unused credits within the window, and auto top-up (one charge per
crossing under the threshold, never two at once; failures emailed)."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from billing.alerts import billing_after_debit
from billing.ledger import ledger_debit_usage
from billing.models import Payment
from billing.purchases import (
    PurchaseError,
    auto_topup_run,
    auto_topup_settings_save,
    credits_quote,
    credits_refund,
    fee_for,
)
from billing.selectors import refundable_units
from core.money import usd_to_units
from tests.billing.factories import AccountFactory

from .conftest import buy, run_threads, with_demo_card


def _rule(account, threshold="5", amount="20", cap="200"):
    auto_topup_settings_save(account=account, enabled=True, threshold=Decimal(threshold), amount=Decimal(amount),
                             monthly_cap=Decimal(cap))
    account.refresh_from_db()


def _debit(account, usd: str, key: str):
    ledger_debit_usage(spend_by_account={account.pk: usd_to_units(usd)}, idempotency_prefix=key)


@pytest.mark.django_db
def test_a_crossing_charges_one_top_up(acct_a, owner, clock):
    buy(acct_a, "10")
    with_demo_card(acct_a)
    _rule(acct_a)
    _debit(acct_a, "6", "d1")  # the chunk's fan-out queues the check (test_ingest_debits)

    for _ in range(3):  # the task delivered three times: one top-up
        billing_after_debit(account_ids=[acct_a.pk])
    topups = Payment.objects.filter(kind="auto_topup")
    assert [(p.status, p.amount_units, p.fee_units) for p in topups.all()] == [
        ("succeeded", usd_to_units("20"), usd_to_units("1.10"))]
    acct_a.refresh_from_db()
    assert acct_a.balance_units == usd_to_units("24")

    _debit(acct_a, "3", "d2")  # 21: above the threshold, nothing to do
    billing_after_debit(account_ids=[acct_a.pk])
    assert topups.count() == 1
    clock.shift(3600)  # past the minimum interval between two automatic charges (60 minutes)
    _debit(acct_a, "17", "d3")  # 4: a new crossing, a new top-up
    billing_after_debit(account_ids=[acct_a.pk])
    assert topups.count() == 2


@pytest.mark.django_db
def test_a_top_up_that_leaves_the_balance_low_does_not_repeat(acct_a):
    with_demo_card(acct_a)
    _rule(acct_a, threshold="50", amount="10")
    _debit(acct_a, "100", "d1")  # -100
    billing_after_debit(account_ids=[acct_a.pk])
    _debit(acct_a, "1", "d2")  # still the same crossing
    billing_after_debit(account_ids=[acct_a.pk])
    assert Payment.objects.filter(kind="auto_topup").count() == 1
    buy(acct_a, "200")  # back above: armed again
    acct_a.refresh_from_db()
    assert acct_a.auto_topup_armed


@pytest.mark.django_db(transaction=True)
def test_concurrent_checks_after_one_crossing_charge_once():
    account = AccountFactory(external_id="acct_race")
    buy(account, "10")
    with_demo_card(account)
    _rule(account)
    _debit(account, "8", "d1")
    results = run_threads(10, lambda i: auto_topup_run(account_id=account.pk))
    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(r is not None for r in results) == 1
    assert Payment.objects.filter(kind="auto_topup").count() == 1
    account.refresh_from_db()
    assert account.balance_units == usd_to_units("22")


@pytest.mark.django_db
def test_a_declined_charge_is_recorded_alerted_and_stops_auto_top_up(acct_a, owner,
                                                                     django_capture_on_commit_callbacks):
    buy(acct_a, "10")
    with_demo_card(acct_a, token="decline_pm")
    _rule(acct_a)
    _debit(acct_a, "6", "d1")
    with django_capture_on_commit_callbacks(execute=True):
        payment = auto_topup_run(account_id=acct_a.pk)
    assert (payment.status, payment.failure) == ("failed", "the card was declined (demo)")
    # A decline is final: failed and turned off at once, both on every channel (e-mail here).
    # $20 + 5.5% fee = $21.10 charged.
    assert [(m.subject, m.to) for m in mail.outbox] == [
        ("Auto top-up failed on Alpha Labs", ["olivia@example.com"]),
        ("Auto top-up turned off on Alpha Labs", ["olivia@example.com"])]
    assert "could not charge $21.10 for $20.00 of credits: the card was declined (demo)." in mail.outbox[0].body
    acct_a.refresh_from_db()
    assert not acct_a.auto_topup_enabled
    assert acct_a.balance_units == usd_to_units("4")


@pytest.mark.django_db
def test_auto_top_up_needs_a_saved_method(client, owner, acct_a):
    with pytest.raises(PurchaseError, match="payment method"):
        _rule(acct_a)
    client.force_login(owner)
    client.post("/account/credits/demo-card/")
    client.post("/account/credits/auto-topup/", {"enabled": "on", "threshold": "5", "amount": "20",
                                                 "monthly_cap": "100"})
    acct_a.refresh_from_db()
    assert (acct_a.auto_topup_enabled, acct_a.auto_topup_threshold_units) == (True, usd_to_units("5"))
    assert "adds $20.00 under $5.00, at most $100.00 a month" in client.get("/account/credits/").content.decode()


@pytest.mark.django_db
def test_a_rule_outside_new_purchase_limits_charges_nothing(acct_a, settings):
    with_demo_card(acct_a)
    _rule(acct_a, threshold="5", amount="20")
    settings.BILLING_PURCHASE_MIN_USD = "50"
    _debit(acct_a, "1", "d1")
    assert auto_topup_run(account_id=acct_a.pk) is None
    acct_a.refresh_from_db()
    assert acct_a.auto_topup_armed  # not claimed: the next debit after a fix still tops up


@pytest.mark.parametrize(("amount", "fee"), [
    ("5", "0.80"),          # 5.5% = 0.275: the minimum applies
    ("14.55", "0.80"),      # 0.80025 rounds to 0.80
    ("15", "0.83"),         # 0.825 rounds half up to 0.83
    ("20", "1.10"),
    ("100", "5.50"),
    ("1234.56", "67.90"),   # 67.9008
    ("10000", "550.00"),
])
def test_fee_by_hand(amount, fee):
    assert fee_for(Decimal(amount)) == Decimal(fee)
    quote = credits_quote(amount=Decimal(amount))
    assert quote.amount_units == usd_to_units(amount)
    assert quote.fee_units == usd_to_units(fee)
    assert quote.total_units == usd_to_units(Decimal(amount) + Decimal(fee))


def test_fee_follows_the_settings(settings):
    settings.BILLING_FEE_PERCENT, settings.BILLING_FEE_MIN_USD = "3", "0.30"
    assert fee_for(Decimal("5")) == Decimal("0.30")
    assert fee_for(Decimal("50")) == Decimal("1.50")


@pytest.mark.parametrize("amount", ["4.99", "10000.01", "10.001", "0", "-5"])
def test_amounts_outside_the_limits_or_not_in_cents_are_refused(amount):
    with pytest.raises(PurchaseError):
        credits_quote(amount=Decimal(amount))


@pytest.mark.django_db
def test_refund_never_exceeds_the_purchase_or_the_balance(acct_a):
    first, second = buy(acct_a, "10"), buy(acct_a, "30")
    credits_refund(account=acct_a, payment_id=first.pk)
    first.refresh_from_db()
    assert first.refunded_units == usd_to_units("10")  # not the whole balance of 40
    ledger_debit_usage(spend_by_account={acct_a.pk: usd_to_units("25")}, idempotency_prefix="t")
    acct_a.refresh_from_db()
    assert refundable_units(payment=second, balance_units=acct_a.balance_units) == usd_to_units("5")
    ledger_debit_usage(spend_by_account={acct_a.pk: usd_to_units("6")}, idempotency_prefix="t2")
    acct_a.refresh_from_db()
    assert refundable_units(payment=second, balance_units=acct_a.balance_units) == 0


@pytest.mark.django_db
def test_refunds_close_after_the_window(acct_a, settings):
    payment = buy(acct_a, "10")
    Payment.objects.filter(pk=payment.pk).update(completed_at=timezone.now() - timedelta(days=31))
    payment.refresh_from_db()
    assert refundable_units(payment=payment, balance_units=usd_to_units("10")) == 0
    settings.BILLING_REFUND_WINDOW_DAYS = 60
    assert refundable_units(payment=payment, balance_units=usd_to_units("10")) == usd_to_units("10")
