"""Promo codes: once per account, limited, expiring (what is left of them, never more than the balance)."""
from datetime import timedelta

import pytest
from django.utils import timezone

from billing.ledger import ledger_debit_usage
from billing.models import PromoCode, PromoRedemption
from billing.promos import PromoError, grants_expire, promo_redeem
from core.money import usd_to_units
from tests.billing.factories import PromoCodeFactory

from .conftest import buy, text_of

pytestmark = pytest.mark.django_db


def test_a_member_redeems_a_code_once(client, member, acct_a):
    PromoCodeFactory(code="launch25", amount_units=usd_to_units("25"), credit_expiry_days=30)
    client.force_login(member)
    client.post("/account/credits/promo/", {"code": " Launch25 "})
    page = text_of(client.get("/account/credits/"))
    assert "Code redeemed: $25.00 of credits, usable until" in page
    assert "Balance $25.00" in page
    client.post("/account/credits/promo/", {"code": "LAUNCH25"})
    assert "This account already redeemed this code." in text_of(client.get("/account/credits/"))
    acct_a.refresh_from_db()
    assert acct_a.balance_units == usd_to_units("25")
    entry = acct_a.ledger.get()
    assert (entry.kind, entry.actor, entry.reference) == ("grant", "mike", "LAUNCH25")


def test_limited_inactive_and_late_codes_are_refused(acct_a, acct_b):
    PromoCodeFactory(code="ONE", amount_units=usd_to_units("5"), max_redemptions=1)
    PromoCodeFactory(code="OFF", amount_units=usd_to_units("5"), active=False)
    PromoCodeFactory(code="LATE", amount_units=usd_to_units("5"),
                             redeemable_until=timezone.now() - timedelta(minutes=1))
    promo_redeem(account=acct_a, code="one")
    with pytest.raises(PromoError, match="fully redeemed"):
        promo_redeem(account=acct_b, code="one")
    for code in ("OFF", "LATE", "NOPE"):
        with pytest.raises(PromoError, match="not valid"):
            promo_redeem(account=acct_b, code=code)
    assert PromoCode.objects.get(code="ONE").redemptions == 1
    acct_b.refresh_from_db()
    assert acct_b.balance_units == 0


def test_granted_credits_expire_what_is_left_once(acct_a):
    PromoCodeFactory(code="TRIAL", amount_units=usd_to_units("10"), credit_expiry_days=7)
    buy(acct_a, "20")
    promo_redeem(account=acct_a, code="TRIAL")
    ledger_debit_usage(spend_by_account={acct_a.pk: usd_to_units("3.5")}, idempotency_prefix="t")
    assert grants_expire() == 0  # not due yet
    later = timezone.now() + timedelta(days=8)
    assert grants_expire(now=later) == 1
    assert grants_expire(now=later) == 0
    acct_a.refresh_from_db()
    # Promo credits are spent first: 10 - 3.5 = 6.5 expire; the purchased 20 stay.
    assert acct_a.balance_units == usd_to_units("20")
    assert acct_a.ledger.get(kind="expiry").amount_units == -usd_to_units("6.5")
    assert PromoRedemption.objects.get().expired_units == usd_to_units("6.5")


def test_expiry_never_takes_more_than_the_balance(acct_a):
    PromoCodeFactory(code="TRIAL", amount_units=usd_to_units("10"), credit_expiry_days=1)
    promo_redeem(account=acct_a, code="TRIAL")
    ledger_debit_usage(spend_by_account={acct_a.pk: usd_to_units("12")}, idempotency_prefix="t")
    assert grants_expire(now=timezone.now() + timedelta(days=2)) == 0
    acct_a.refresh_from_db()
    assert acct_a.balance_units == -usd_to_units("2")




def test_due_grants_expire_after_the_next_usage_debit(acct_a):
    from billing.alerts import billing_after_debit

    PromoCodeFactory(code="SHORT", amount_units=usd_to_units("10"), credit_expiry_days=1)
    promo_redeem(account=acct_a, code="SHORT")
    PromoRedemption.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    ledger_debit_usage(spend_by_account={acct_a.pk: usd_to_units("4")}, idempotency_prefix="t")
    billing_after_debit(account_ids=[acct_a.pk])
    acct_a.refresh_from_db()
    assert acct_a.balance_units == 0
    assert acct_a.ledger.get(kind="expiry").amount_units == -usd_to_units("6")
