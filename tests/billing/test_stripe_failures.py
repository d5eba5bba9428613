"""Stripe's failure paths through the real `stripe` library, against a local stand-in for Stripe's API
that answers with Stripe's own error bodies (tests/billing/stripe_stub.py): each leads to its state."""
from decimal import Decimal

import orjson
import pytest
import stripe
from django.core import mail

from billing.ledger import ledger_debit_usage
from billing.models import AlertEvent, AutoTopupChange, LedgerEntry, Payment, PaymentMethod, Refund
from billing.purchases import auto_topup_run, auto_topup_settings_save, payment_complete, refund_send
from billing.topup_selectors import auto_topup_outlook
from core.money import usd_to_units

from .conftest import checkout_event, stripe_signature, text_of
from .stripe_stub import (
    AMOUNT_TOO_LARGE,
    AUTHENTICATION_REQUIRED,
    CARD_DECLINED,
    CHARGE_ALREADY_REFUNDED,
    DROP,
    DROP_AFTER,
    INVALID_API_KEY,
    RATE_LIMIT,
    stripe_stub_start,
)

INTENTS, SESSIONS, REFUNDS = "/v1/payment_intents", "/v1/checkout/sessions", "/v1/refunds"
WEBHOOK = "/billing/stripe/webhook/"


@pytest.fixture
def stub(settings):
    """Stripe's API at a local address, the real library talking to it with a test key and no retries."""
    stub, server = stripe_stub_start()
    settings.BILLING_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_tokengrid"  # noqa: S105  (a test key)
    settings.STRIPE_API_BASE = stub.url
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    base = stripe.api_base
    yield stub
    stripe.api_base = base
    server.shutdown()
    server.server_close()


def intent(payment: Payment, status: str = "succeeded", pi: str = "pi_3Stub0100") -> tuple[int, dict]:
    return 200, {"id": pi, "object": "payment_intent", "amount": payment_cents(payment),
                 "amount_received": payment_cents(payment) if status == "succeeded" else 0, "currency": "usd",
                 "status": status, "metadata": {"payment": str(payment.pk), "account": str(payment.account_id)}}


def payment_cents(payment: Payment) -> int:
    return payment.total_units // usd_to_units("0.01")


@pytest.fixture
def topup(acct_a, owner):
    """Alpha with a saved Stripe card, auto top-up of $25 under $5 (cap $200), and a balance of -$1."""
    PaymentMethod.objects.create(account=acct_a, gateway="stripe", customer_ref="cus_Stub", token="pm_Stub",
                                 label="Visa •••• 4242")
    auto_topup_settings_save(account=acct_a, enabled=True, threshold=Decimal("5"), amount=Decimal("25"),
                             monthly_cap=Decimal("200"), user=owner)
    ledger_debit_usage(spend_by_account={acct_a.pk: usd_to_units("1")}, idempotency_prefix="d1")
    return acct_a


def _script_intent(stub, *answers):
    stub.script("POST", INTENTS, *answers)


def _events(account) -> list[str]:
    return list(AlertEvent.objects.filter(account=account).order_by("pk").values_list("event", flat=True))


@pytest.mark.django_db
def test_a_declined_off_session_top_up_turns_auto_top_up_off_and_alerts(topup, stub,
                                                                        django_capture_on_commit_callbacks):
    _script_intent(stub, CARD_DECLINED)
    with django_capture_on_commit_callbacks(execute=True):
        payment = auto_topup_run(account_id=topup.pk)
    sent = stub.carried_out(INTENTS)[0]
    assert (sent.params["amount"], sent.params["off_session"], sent.params["confirm"]) == ("2638", "true", "true")
    assert sent.idempotency_key == f"tokengrid-topup-{payment.pk}"
    assert (payment.status, payment.failure) == ("failed", "Your card was declined.")
    topup.refresh_from_db()
    assert (topup.auto_topup_enabled, topup.balance_units) == (False, -usd_to_units("1"))
    assert _events(topup) == ["topup.failed", "topup.disabled"]
    assert AutoTopupChange.objects.filter(account=topup).latest("pk").reason == \
        "the card was refused: Your card was declined"
    assert [m.subject for m in mail.outbox] == ["Auto top-up failed on Alpha Labs",
                                                "Auto top-up turned off on Alpha Labs"]
    assert "could not charge $26.38 for $25.00 of credits: Your card was declined." in mail.outbox[0].body
    assert not LedgerEntry.objects.filter(kind="purchase").exists()


@pytest.mark.django_db
def test_authentication_required_turns_it_off_and_says_to_confirm_the_card(topup, stub):
    _script_intent(stub, AUTHENTICATION_REQUIRED)
    payment = auto_topup_run(account_id=topup.pk)
    assert payment.status == "failed"
    assert payment.failure == ("the card needs its holder to confirm the payment (3-D Secure): buy credits once "
                               "on the Credits page to confirm it")
    topup.refresh_from_db()
    assert not topup.auto_topup_enabled
    assert _events(topup) == ["topup.failed", "topup.disabled"]


@pytest.mark.django_db
def test_a_rate_limit_counts_towards_the_failures_and_is_tried_again(topup, stub, clock):
    _script_intent(stub, RATE_LIMIT)
    payment = auto_topup_run(account_id=topup.pk)
    assert (payment.status, payment.failure) == ("failed", "Stripe is busy (rate limited); try again shortly")
    topup.refresh_from_db()
    assert (topup.auto_topup_enabled, topup.auto_topup_failures, topup.auto_topup_armed) == (True, 1, True)
    assert _events(topup) == ["topup.failed"]
    assert auto_topup_run(account_id=topup.pk) is None  # within the interval: not asked again
    assert len(stub.seen) == 1
    clock.shift(3600)
    _script_intent(stub, (200, {"id": "pi_3Stub0101", "object": "payment_intent", "amount": 2638,
                                "amount_received": 2638, "currency": "usd", "status": "succeeded",
                                "metadata": {}}))
    payment = auto_topup_run(account_id=topup.pk)
    assert list(Payment.objects.filter(kind="auto_topup").order_by("pk").values_list("status", flat=True)) == [
        "failed", "succeeded"]
    assert (payment.status, payment.external_id) == ("succeeded", "pi_3Stub0101")
    topup.refresh_from_db()
    assert (topup.balance_units, topup.auto_topup_failures) == (usd_to_units("24"), 0)
    assert _events(topup) == ["topup.failed", "topup.charged"]


@pytest.mark.django_db
def test_no_answer_keeps_the_charge_in_flight_until_its_webhook_settles_it_once(client, topup, stub, clock):
    _script_intent(stub, DROP)
    payment = auto_topup_run(account_id=topup.pk)
    assert (payment.status, payment.failure) == ("pending", "no answer yet: Stripe did not answer")
    topup.refresh_from_db()
    assert (topup.auto_topup_enabled, topup.auto_topup_failures) == (True, 0)  # nothing is known to have failed
    assert auto_topup_outlook(account=topup).refusal == "a top-up is already in flight"
    clock.shift(59 * 60)
    assert auto_topup_run(account_id=topup.pk) is None  # in flight, and not sent again within the interval
    assert len(stub.seen) == 1
    body = orjson.dumps({"id": "evt_pi", "object": "event", "type": "payment_intent.succeeded",
                         "data": {"object": intent(payment)[1]}})
    for _ in range(2):  # delivered twice: credited once
        client.post(WEBHOOK, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=stripe_signature(body))
    payment.refresh_from_db()
    assert (payment.status, payment.external_id) == ("succeeded", "pi_3Stub0100")
    assert list(LedgerEntry.objects.filter(kind="purchase").values_list("amount_units", flat=True)) == [
        usd_to_units("25")]
    assert _events(topup) == ["topup.charged"]


@pytest.mark.django_db
def test_an_unanswered_charge_is_sent_again_with_its_key_after_the_interval(topup, stub, clock):
    _script_intent(stub, DROP)
    payment = auto_topup_run(account_id=topup.pk)
    clock.shift(3600)
    _script_intent(stub, intent(payment, pi="pi_3Stub0103"))
    again = auto_topup_run(account_id=topup.pk)  # the next debit's run: the same payment, the same key
    assert again.pk == payment.pk
    assert [s.idempotency_key for s in stub.seen] == [f"tokengrid-topup-{payment.pk}"] * 2
    assert (again.status, again.external_id) == ("succeeded", "pi_3Stub0103")
    assert Payment.objects.filter(kind="auto_topup").count() == 1
    topup.refresh_from_db()
    assert topup.balance_units == usd_to_units("24")
    clock.shift(3600)
    assert auto_topup_run(account_id=topup.pk) is None  # $24: above the threshold, nothing in flight
    assert len(stub.seen) == 2


@pytest.mark.django_db
def test_a_lost_answer_retried_with_the_same_key_is_replayed_and_charged_once(topup, stub, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 1  # the library asks again, with the same Idempotency-Key
    _script_intent(stub, (DROP_AFTER, (200, {
        "id": "pi_3Stub0102", "object": "payment_intent", "amount": 2638, "amount_received": 2638,
        "currency": "usd", "status": "succeeded", "metadata": {}})))
    payment = auto_topup_run(account_id=topup.pk)
    keys = [(s.idempotency_key, s.replayed) for s in stub.seen]
    assert keys == [(f"tokengrid-topup-{payment.pk}", False), (f"tokengrid-topup-{payment.pk}", True)]
    assert len(stub.carried_out(INTENTS)) == 1  # one charge at Stripe
    assert (payment.status, payment.external_id) == ("succeeded", "pi_3Stub0102")
    topup.refresh_from_db()
    assert topup.balance_units == usd_to_units("24")


@pytest.mark.django_db
def test_a_checkout_that_cannot_start_says_so_and_credits_nothing(client, owner, acct_a, stub):
    stub.script("POST", SESSIONS, INVALID_API_KEY)
    client.force_login(owner)
    page = text_of(client.post("/account/credits/buy/", {"amount": "25"}, follow=True))
    assert ("The payment could not be started: the payment provider refused our credentials; "
            "please try again later") in page
    assert "sk_test" not in page
    assert list(Payment.objects.values_list("status", "failure")) == [
        ("failed", "the payment provider refused our credentials; please try again later")]
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["checkout.session.expired", "checkout.session.async_payment_failed"])
def test_an_expired_or_failed_checkout_credits_nothing(client, owner, acct_a, stub, kind):
    stub.script("POST", SESSIONS, (200, {"id": "cs_test_Stub1", "object": "checkout.session",
                                         "url": "https://checkout.stripe.com/c/pay/cs_test_Stub1"}))
    client.force_login(owner)
    response = client.post("/account/credits/buy/", {"amount": "25"})
    assert response.url == "https://checkout.stripe.com/c/pay/cs_test_Stub1"
    body = checkout_event("cs_test_Stub1", 2638, kind=kind, paid=False)
    assert client.post(WEBHOOK, body, content_type="application/json",
                       HTTP_STRIPE_SIGNATURE=stripe_signature(body)).content == b"failed"
    # A late "completed" for the same session after it failed credits nothing either: it was never paid.
    late = checkout_event("cs_test_Stub1", 2638, kind="checkout.session.completed", paid=False, event_id="evt_2")
    client.post(WEBHOOK, late, content_type="application/json", HTTP_STRIPE_SIGNATURE=stripe_signature(late))
    assert list(Payment.objects.values_list("status", "failure")) == [
        ("failed", kind.rsplit(".", 1)[-1].replace("_", " "))]
    acct_a.refresh_from_db()
    assert acct_a.balance_units == 0
    assert not LedgerEntry.objects.exists()


def _stripe_purchase(acct_a) -> Payment:
    """A $10 Stripe purchase, paid and credited (its PaymentIntent's id, as a top-up has)."""
    payment = Payment.objects.create(account=acct_a, gateway="stripe", external_id="pi_3StubPaid",
                                     amount_units=usd_to_units("10"), fee_units=usd_to_units("0.80"))
    payment_complete(payment_id=payment.pk)
    return payment


@pytest.mark.django_db
@pytest.mark.parametrize(("refusal", "reason"), [
    (CHARGE_ALREADY_REFUNDED, "Charge ch_3Stub0003 has already been refunded."),
    (AMOUNT_TOO_LARGE, "Refund amount ($1,000.00) is greater than unrefunded amount on charge ($10.00)")])
def test_a_refund_stripe_refuses_leaves_the_ledger_untouched_and_the_page_says_why(client, owner, acct_a, stub,
                                                                                   refusal, reason):
    payment = _stripe_purchase(acct_a)
    entries = list(LedgerEntry.objects.values_list("pk", "amount_units"))
    stub.script("POST", REFUNDS, refusal)
    client.force_login(owner)
    page = text_of(client.post("/account/credits/refund/", {"payment": payment.pk}, follow=True))
    assert f"The refund failed: {reason}" in page
    sent = stub.carried_out(REFUNDS)[0]
    assert (sent.params["payment_intent"], sent.params["amount"]) == ("pi_3StubPaid", "1000")
    assert list(LedgerEntry.objects.values_list("pk", "amount_units")) == entries
    acct_a.refresh_from_db()
    assert acct_a.balance_units == usd_to_units("10")
    assert list(Refund.objects.values_list("status", "failure")) == [("failed", reason)]


@pytest.mark.django_db
def test_a_refund_asked_twice_is_replayed_by_stripe_and_posted_once(acct_a, stub):
    payment = _stripe_purchase(acct_a)
    claim = Refund.objects.create(account=acct_a, payment=payment, gateway="stripe", amount_units=usd_to_units("4"))
    stub.script("POST", REFUNDS, (200, {"id": "re_3Stub1", "object": "refund", "amount": 400,
                                        "status": "succeeded", "metadata": {"refund": str(claim.pk)}}))
    for _ in range(2):
        refund_send(refund_id=claim.pk)
    assert [(s.idempotency_key, s.replayed) for s in stub.seen] == [
        (f"tokengrid-refund-{claim.pk}", False), (f"tokengrid-refund-{claim.pk}", True)]
    assert list(LedgerEntry.objects.filter(kind="refund").values_list("amount_units", flat=True)) == [
        -usd_to_units("4")]
    acct_a.refresh_from_db()
    assert acct_a.balance_units == usd_to_units("6")
