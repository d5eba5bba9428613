"""The credits page and its actions: buying and refunding credits, by role, each action its own POST-only
URL, and the page a person reads."""
import re
from decimal import Decimal

import pytest

from billing.ledger import ledger_debit_usage
from billing.models import Payment
from billing.purchases import PurchaseError, credits_refund
from core.money import usd_to_units

from .conftest import buy, text_of

pytestmark = pytest.mark.django_db


def test_anonymous_users_sign_in_first(client):
    for url in ("/account/credits/", "/account/keys/", "/account/statements/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={url}"


def test_the_fee_is_shown_before_paying_and_the_demo_purchase_credits_at_once(client, owner, acct_a):
    client.force_login(owner)
    page = text_of(client.get("/account/credits/"))
    assert "Balance $0.00" in page
    assert "Fee: 5.5%, at least $0.80" in page

    review = text_of(client.get("/account/credits/?amount=20"))
    assert "Credits $20.00 Fee $1.10 You pay $21.10" in review
    assert "Pay $21.10" in review
    assert not Payment.objects.exists()  # nothing is charged by looking

    response = client.post("/account/credits/buy/", {"amount": "20"})
    assert response.status_code == 302
    page = text_of(client.get("/account/credits/"))
    assert "Added $20.00 of credits (charged $21.10)." in page
    assert "Balance $20.00" in page
    payment = Payment.objects.get()
    assert (payment.status, payment.amount_units, payment.fee_units, payment.created_by) == (
        "succeeded", usd_to_units("20"), usd_to_units("1.10"), owner)
    entry = acct_a.ledger.get()
    assert (entry.kind, entry.amount_units, entry.actor) == ("purchase", usd_to_units("20"), "olivia")
    assert entry.idempotency_key == f"payment:demo:{payment.external_id}"


@pytest.mark.parametrize(("debug", "gateway", "credited"), [
    (False, "", False),  # production without a Stripe key: nothing is given away
    (True, "", True),  # development: the demo gateway by default
    (False, "demo", True),  # production that asked for the demo gateway by name
])
def test_the_demo_gateway_grants_credits_only_in_development_or_when_asked_for(
        client, owner, acct_a, settings, debug, gateway, credited):
    settings.DEBUG, settings.BILLING_GATEWAY, settings.STRIPE_SECRET_KEY = debug, gateway, ""
    client.force_login(owner)
    client.post("/account/credits/buy/", {"amount": "20"})
    page = text_of(client.get("/account/credits/"))
    acct_a.refresh_from_db()
    if credited:
        assert "Added $20.00 of credits (charged $21.10)." in page
        assert acct_a.balance_units == usd_to_units("20")
    else:
        assert ("The payment could not be started: no payment gateway is configured (STRIPE_SECRET_KEY); the demo "
                "gateway, which grants credits for free, runs only with DEBUG on or BILLING_GATEWAY=demo") in page
        assert acct_a.balance_units == 0
        assert not Payment.objects.exists()
        assert not acct_a.ledger.exists()


def test_amounts_outside_the_limits_are_refused_with_a_reason(client, owner):
    client.force_login(owner)
    assert "Buy between $5.00 and $10,000.00 at a time." in text_of(client.get("/account/credits/?amount=2"))
    client.post("/account/credits/buy/", {"amount": "20000"})
    assert not Payment.objects.exists()


def test_an_overdrawn_balance_says_so(client, owner, acct_a):
    buy(acct_a, "5")
    ledger_debit_usage(spend_by_account={acct_a.pk: usd_to_units("7.3333")}, idempotency_prefix="t")
    client.force_login(owner)
    response = client.get("/account/credits/")
    page = text_of(response)
    assert "Balance -$2.33 overdrawn" in page
    assert "usage -$7.33 -$2.33" in page  # the ledger row: amount and balance after, the exact ones on hover
    assert re.search(r'<td>usage</td>\s*<td[^>]*>\s*<span class="exact" title="-\$7\.3333">-\$7\.33</span>\s*</td>\s*'
                     r'<td[^>]*>\s*<span class="exact" title="-\$2\.3333">-\$2\.33</span>', response.content.decode())


def test_viewers_read_members_redeem_owners_buy(client, acct_a, viewer, member):
    for user in (viewer, member):
        client.force_login(user)
        assert client.get("/account/credits/").status_code == 200
        for action in ("buy", "auto-topup", "alert", "demo-card", "refund"):
            assert client.post(f"/account/credits/{action}/", {"amount": "20"}).status_code == 403
    assert not Payment.objects.exists()
    client.force_login(viewer)
    page = text_of(client.get("/account/credits/"))
    assert "Buy credits" not in page
    assert "Redeem" not in page
    assert client.post("/account/credits/promo/", {"code": "X"}).status_code == 403


def test_refund_pays_back_unused_credits_and_keeps_the_fee(client, owner, acct_a):
    payment = buy(acct_a, "50")
    ledger_debit_usage(spend_by_account={acct_a.pk: usd_to_units("12.345")}, idempotency_prefix="t")
    client.force_login(owner)
    page = text_of(client.get("/account/credits/"))
    assert "Refund $37.65" in page  # the balance 37.655 allows 37.65 in whole cents
    client.post("/account/credits/refund/", {"payment": payment.pk})
    acct_a.refresh_from_db()
    payment.refresh_from_db()
    assert acct_a.balance_units == usd_to_units("0.005")
    assert payment.refunded_units == usd_to_units("37.65")
    assert acct_a.ledger.filter(kind="refund").get().amount_units == -usd_to_units("37.65")
    assert "Refunded $37.65; the fee is kept." in text_of(client.get("/account/credits/"))
    with pytest.raises(PurchaseError):  # nothing left to pay back
        credits_refund(account=acct_a, payment_id=payment.pk)






def test_another_accounts_purchase_answers_404(client, owner, acct_b):
    theirs = buy(acct_b, "10")
    client.force_login(owner)
    assert client.post("/account/credits/refund/", {"payment": theirs.pk}).status_code == 404
    assert client.post("/account/credits/refund/", {"payment": "x"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.refunded_units == 0
    assert "$10.00" not in text_of(client.get("/account/credits/"))


def test_purchases_and_ledger_are_paginated(client, owner, acct_a, django_assert_max_num_queries):
    for i in range(30):
        ledger_debit_usage(spend_by_account={acct_a.pk: usd_to_units(Decimal("0.01") * (i + 1))},
                           idempotency_prefix=f"t{i}")
    for _ in range(12):
        buy(acct_a, "5")
    client.force_login(owner)
    with django_assert_max_num_queries(20):
        page = client.get("/account/credits/")
    assert len(page.context["ledger"]) == 25
    assert len(page.context["payments"]) == 10
    assert "page 1 of 2" in text_of(page)
    assert len(client.get("/account/credits/?page=2").context["ledger"]) == 42 - 25


def test_the_page_is_read_only_and_each_action_takes_only_posts(client, owner):
    client.force_login(owner)
    assert client.post("/account/credits/", {"action": "pay", "amount": "20"}).status_code == 405
    for action in ("buy", "refund", "auto-topup", "alert", "promo", "demo-card"):
        assert client.get(f"/account/credits/{action}/").status_code == 405, action
    assert not Payment.objects.exists()
