"""Stripe Checkout through the gateway interface, and its webhook, offline with events we sign."""
from decimal import Decimal

import pytest
import stripe
from django.test import Client

from billing.ledger import ledger_debit_usage
from billing.models import LedgerEntry, Payment, PaymentMethod
from billing.purchases import auto_topup_run, auto_topup_settings_save, credits_purchase_start, credits_refund
from core.money import usd_to_units

from .conftest import checkout_event, run_threads, stripe_signature

URL = "/billing/stripe/webhook/"


@pytest.fixture
def stripe_checkout(settings, monkeypatch):
    """Stripe configured; Session.create answers as Stripe would, recording the parameters."""
    settings.BILLING_GATEWAY, settings.STRIPE_SECRET_KEY = "", "sk_test_offline"
    calls = []

    def create(**params):
        calls.append(params)
        return {"id": f"cs_test_{len(calls)}", "url": f"https://checkout.stripe.test/pay/cs_test_{len(calls)}"}

    monkeypatch.setattr(stripe.checkout.Session, "create", create)
    return calls


def _post(client, payload: bytes, signature: str):
    return client.post(URL, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature)


@pytest.mark.django_db
def test_buying_with_stripe_redirects_to_checkout_and_the_webhook_credits(client, owner, acct_a, stripe_checkout):
    client.force_login(owner)
    response = client.post("/account/credits/buy/", {"amount": "20", "save_method": "on"})
    assert response.status_code == 302
    assert response["Location"] == "https://checkout.stripe.test/pay/cs_test_1"
    params = stripe_checkout[0]
    assert params["line_items"][0]["price_data"]["unit_amount"] == 2110  # $20 + $1.10 fee, in cents
    assert params["api_key"] == "sk_test_offline"
    assert params["payment_intent_data"] == {"setup_future_usage": "off_session"}
    payment = Payment.objects.get()
    assert (payment.status, payment.external_id, payment.gateway) == ("pending", "cs_test_1", "stripe")
    acct_a.refresh_from_db()
    assert acct_a.balance_units == 0  # nothing before Stripe says it was paid

    methods_before = PaymentMethod.objects.count()
    payload = checkout_event("cs_test_1", 2110)
    answer = _post(client, payload, stripe_signature(payload))
    assert (answer.status_code, answer.content) == (200, b"credited")
    answer = _post(client, payload, stripe_signature(payload))
    assert answer.content == b"already credited"
    acct_a.refresh_from_db()
    assert acct_a.balance_units == usd_to_units("20")
    assert acct_a.ledger.get().idempotency_key == "payment:stripe:cs_test_1"
    assert PaymentMethod.objects.count() == methods_before  # no card details offline: nothing saved


@pytest.mark.django_db
def test_a_bad_signature_or_secret_credits_nothing(client, acct_a, stripe_checkout):
    payment, _ = credits_purchase_start(account=acct_a, amount=Decimal("10"))
    payload = checkout_event(payment.external_id, 1080)
    assert _post(client, payload, stripe_signature(payload, secret="whsec_wrong")).status_code == 400
    assert _post(client, payload, "").status_code == 400
    assert _post(client, payload, stripe_signature(payload, timestamp=1_600_000_000)).status_code == 400  # replay
    tampered = payload.replace(b"1080", b"9999")
    assert _post(client, tampered, stripe_signature(payload)).status_code == 400
    assert client.get(URL).status_code == 405
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db
def test_a_paid_amount_that_differs_is_not_credited(client, acct_a, stripe_checkout):
    payment, _ = credits_purchase_start(account=acct_a, amount=Decimal("10"))
    payload = checkout_event(payment.external_id, 100)
    assert _post(client, payload, stripe_signature(payload)).status_code == 200
    payment.refresh_from_db()
    assert payment.status == "failed"
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db
def test_unpaid_expired_and_unknown_sessions(client, acct_a, stripe_checkout):
    payment, _ = credits_purchase_start(account=acct_a, amount=Decimal("10"))
    unpaid = checkout_event(payment.external_id, 1080, paid=False)
    assert _post(client, unpaid, stripe_signature(unpaid)).content == b"not paid yet"
    unknown = checkout_event("cs_someone_else", 1080)
    assert _post(client, unknown, stripe_signature(unknown)).content == b"unknown payment"
    other = checkout_event(payment.external_id, 1080, kind="customer.created")
    assert _post(client, other, stripe_signature(other)).content == b"ignored"
    expired = checkout_event(payment.external_id, 1080, kind="checkout.session.expired")
    assert _post(client, expired, stripe_signature(expired)).content == b"failed"
    payment.refresh_from_db()
    assert payment.status == "failed"
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_same_webhook_delivered_ten_times_at_once_credits_once(acct_a, stripe_checkout):
    payment, _ = credits_purchase_start(account=acct_a, amount=Decimal("40"))
    # Stripe retries with new timestamps; also a second event id for the same payment.
    payloads = [checkout_event(payment.external_id, 4220, event_id=f"evt_{i % 2}") for i in range(10)]

    def deliver(i: int) -> int:
        response = Client().post(URL, payloads[i], content_type="application/json",
                                 HTTP_STRIPE_SIGNATURE=stripe_signature(payloads[i]))
        return response.status_code

    assert run_threads(10, deliver) == [200] * 10
    acct_a.refresh_from_db()
    assert acct_a.balance_units == usd_to_units("40")
    assert LedgerEntry.objects.filter(account=acct_a).count() == 1
    payment.refresh_from_db()
    assert payment.status == "succeeded"


@pytest.mark.django_db
def test_stripe_auto_top_up_charges_the_saved_card_off_session(acct_a, owner, stripe_checkout, monkeypatch):
    intents = []

    def create(**params):
        intents.append(params)
        return {"id": "pi_test_topup", "status": "succeeded"}

    monkeypatch.setattr(stripe.PaymentIntent, "create", create)
    PaymentMethod.objects.create(account=acct_a, gateway="stripe", customer_ref="cus_1", token="pm_1",
                                 label="Visa •••• 4242")
    auto_topup_settings_save(account=acct_a, enabled=True, threshold=Decimal("5"), amount=Decimal("50"),
                             monthly_cap=Decimal("200"))
    ledger_debit_usage(spend_by_account={acct_a.pk: usd_to_units("1")}, idempotency_prefix="d1")
    payment = auto_topup_run(account_id=acct_a.pk)
    assert (payment.status, payment.external_id) == ("succeeded", "pi_test_topup")
    assert intents[0]["amount"] == 5275  # $50 + 5.5%
    assert (intents[0]["customer"], intents[0]["payment_method"], intents[0]["off_session"]) == ("cus_1", "pm_1", True)
    assert intents[0]["idempotency_key"] == f"tokengrid-topup-{payment.pk}"
    acct_a.refresh_from_db()
    assert acct_a.balance_units == usd_to_units("49")


@pytest.mark.django_db
def test_stripe_refund_pays_back_whole_cents_of_the_payment_intent(acct_a, stripe_checkout, monkeypatch):
    refunds = []
    monkeypatch.setattr(stripe.checkout.Session, "retrieve", lambda sid, **kw: {"id": sid, "payment_intent": "pi_9"})
    monkeypatch.setattr(stripe.Refund, "create", lambda **kw: refunds.append(kw) or {"id": "re_1"})
    payment, _ = credits_purchase_start(account=acct_a, amount=Decimal("10"))
    payload = checkout_event(payment.external_id, 1080)
    Client().post(URL, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=stripe_signature(payload))
    refund = credits_refund(account=acct_a, payment_id=payment.pk)
    assert (refunds[0]["payment_intent"], refunds[0]["amount"]) == ("pi_9", 1000)  # the $0.80 fee is kept
    assert refunds[0]["idempotency_key"] == f"tokengrid-refund-{refund.pk}"  # the claim: asked twice, one refund
    assert refunds[0]["metadata"]["refund"] == str(refund.pk)  # how its webhook finds the claim
    assert (refund.status, refund.external_id) == ("succeeded", "re_1")
    assert LedgerEntry.objects.get(kind="refund").idempotency_key == "refund:stripe:re_1"


@pytest.mark.django_db
def test_a_checkout_that_saves_the_card_keeps_it_for_auto_top_up(client, acct_a, stripe_checkout, monkeypatch):
    def retrieve(intent_id, **params):
        assert (intent_id, params["expand"]) == ("pi_test_1", ["payment_method"])
        return {"id": intent_id, "payment_method": {"id": "pm_card", "card": {"brand": "visa", "last4": "4242"}}}

    monkeypatch.setattr(stripe.PaymentIntent, "retrieve", retrieve)
    payment, _ = credits_purchase_start(account=acct_a, amount=Decimal("10"), save_method=True)
    payload = checkout_event(payment.external_id, 1080).replace(b'"customer":null', b'"customer":"cus_9"')
    assert _post(client, payload, stripe_signature(payload)).content == b"credited"
    method = PaymentMethod.objects.get(account=acct_a)
    assert (method.gateway, method.customer_ref, method.token, method.label) == (
        "stripe", "cus_9", "pm_card", "Visa •••• 4242")
