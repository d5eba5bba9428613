"""Refunds hold no lock across the gateway call: claim (committed), call with the claim as idempotency
key, settle once from the answer or the webhook; a refusal releases the claim and moves nothing."""
import threading
import time
from decimal import Decimal

import orjson
import pytest
import stripe
from django.db import connection, transaction
from django.test import Client

from billing import purchases
from billing.gateways import GatewayError
from billing.ledger import ledger_debit_usage
from billing.models import LedgerEntry, Payment, Refund
from billing.purchases import (
    PurchaseError,
    credits_purchase_start,
    credits_refund,
    refund_claim,
    refund_settle,
)
from core.money import usd_to_units
from tests.billing.factories import AccountFactory

from .conftest import buy, checkout_event, run_threads, stripe_signature, text_of

URL = "/billing/stripe/webhook/"


class FakeGateway:
    """The demo gateway's refunds, answering after `delay` seconds, or refusing with `refuse`."""

    name = "demo"

    def __init__(self, delay: float = 0, refuse: str = ""):
        self.delay, self.refuse, self.calls = delay, refuse, []
        self.started = threading.Event()

    def refund(self, *, payment: Payment, amount_units: int, claim_id: int) -> str:
        self.calls.append((payment.pk, amount_units, claim_id))
        self.started.set()
        time.sleep(self.delay)
        if self.refuse:
            raise GatewayError(self.refuse)
        return f"demo_re_{claim_id}"  # the same claim is the same refund, as Stripe's idempotency key gives


@pytest.fixture
def gateway(monkeypatch):
    def install(**kwargs) -> FakeGateway:
        fake = FakeGateway(**kwargs)
        monkeypatch.setattr(purchases, "gateway_get", lambda name=None: fake)
        return fake
    return install


def _books(account) -> tuple[int, list]:
    account.refresh_from_db()
    return account.balance_units, list(LedgerEntry.objects.filter(account=account).order_by("id").values_list("id", "amount_units"))


@pytest.mark.django_db(transaction=True)
def test_a_gateway_stalled_10_s_never_holds_up_a_usage_debit_of_the_account(gateway):
    account = AccountFactory(external_id="acct_stall")
    payment = buy(account, "50")
    buy(account, "30")
    stalled = gateway(delay=10)
    refunds = []

    def refund() -> None:
        try:
            refunds.append(credits_refund(account=account, payment_id=payment.pk))
        finally:
            connection.close()  # the thread's own connection

    worker = threading.Thread(target=refund)
    worker.start()
    assert stalled.started.wait(5)  # the gateway holds the request from here for 10 s
    started = time.monotonic()
    with transaction.atomic():  # as an ingest chunk debits: inside its transaction, the account row locked
        debited = ledger_debit_usage(spend_by_account={account.pk: usd_to_units("5")},
                                     idempotency_prefix="ingest:batch:1:chunk:1")
    elapsed = time.monotonic() - started
    assert debited == [account.pk]
    assert elapsed < 1, f"the debit waited {elapsed:.2f} s on the gateway"
    worker.join(30)
    assert refunds[0].status == "succeeded"
    balance, entries = _books(account)
    assert balance == usd_to_units("25")  # 80 bought, 50 paid back, 5 used
    assert [amount for _, amount in entries] == [usd_to_units("50"), usd_to_units("30"), -usd_to_units("5"),
                                                -usd_to_units("50")]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refund_requests_claim_once(gateway):
    account = AccountFactory(external_id="acct_twice")
    payment = buy(account, "40")
    fake = gateway(delay=0.5)
    results = run_threads(6, lambda i: credits_refund(account=account, payment_id=payment.pk))
    done = [r for r in results if isinstance(r, Refund)]
    refused = [str(r) for r in results if isinstance(r, PurchaseError)]
    assert len(done) == 1, results
    assert len(refused) == 5
    assert set(refused) <= {"A refund of this purchase is already under way.",
                            "Nothing of this purchase can be refunded."}
    assert len(fake.calls) == 1
    assert Refund.objects.count() == 1
    balance, entries = _books(account)
    assert (balance, len(entries)) == (0, 2)
    payment.refresh_from_db()
    assert payment.refunded_units == usd_to_units("40")


@pytest.mark.django_db
def test_claims_in_flight_hold_the_balance_so_two_purchases_never_pay_back_the_same_credits(acct_a):
    first, second = buy(acct_a, "10"), buy(acct_a, "10")
    ledger_debit_usage(spend_by_account={acct_a.pk: usd_to_units("15")}, idempotency_prefix="t")
    claim = refund_claim(account=acct_a, payment_id=first.pk)
    assert claim.amount_units == usd_to_units("5")  # the whole balance, claimed, not yet paid back
    with pytest.raises(PurchaseError, match="already under way"):
        refund_claim(account=acct_a, payment_id=first.pk)
    with pytest.raises(PurchaseError, match="Nothing"):
        refund_claim(account=acct_a, payment_id=second.pk)  # the 5 left are the first claim's
    assert _books(acct_a)[0] == usd_to_units("5")  # a claim moves nothing


@pytest.mark.django_db
def test_a_refund_answered_twice_posts_once(acct_a, gateway):
    payment = buy(acct_a, "20")
    fake = gateway()
    refund = credits_refund(account=acct_a, payment_id=payment.pk)
    after = _books(acct_a)
    # The gateway's answer replayed (the same claim sent again: the same refund id), then by hand.
    assert purchases.refund_send(refund_id=refund.pk).status == "succeeded"
    assert refund_settle(refund_id=refund.pk, external_id=f"demo_re_{refund.pk}") is None
    assert len(fake.calls) == 2
    assert _books(acct_a) == after
    assert after[0] == 0
    entry = LedgerEntry.objects.get(kind="refund")
    assert (entry.amount_units, entry.idempotency_key) == (-usd_to_units("20"), f"refund:demo:demo_re_{refund.pk}")
    payment.refresh_from_db()
    assert payment.refunded_units == usd_to_units("20")


def _refund_event(refund_id: str, claim_id: int, amount_cents: int, *, kind: str = "refund.created",
                  status: str = "succeeded", event_id: str = "evt_re_1") -> bytes:
    return orjson.dumps({
        "id": event_id, "object": "event", "type": kind, "api_version": "2024-10-28.acacia",
        "created": int(time.time()),
        "data": {"object": {"id": refund_id, "object": "refund", "amount": amount_cents, "currency": "usd",
                            "payment_intent": "pi_9", "status": status, "metadata": {"refund": str(claim_id)}}}})


def _deliver(payload: bytes) -> bytes:
    return Client().post(URL, payload, content_type="application/json",
                         HTTP_STRIPE_SIGNATURE=stripe_signature(payload)).content


@pytest.fixture
def stripe_paid(settings, monkeypatch, acct_a):
    """A $10 Stripe purchase, paid (its webhook credited it); Stripe's Session look-up answers offline."""
    settings.BILLING_GATEWAY, settings.STRIPE_SECRET_KEY = "", "sk_test_offline"
    monkeypatch.setattr(stripe.checkout.Session, "create", lambda **kw: {"id": "cs_test_r", "url": "https://x"})
    monkeypatch.setattr(stripe.checkout.Session, "retrieve", lambda sid, **kw: {"id": sid, "payment_intent": "pi_9"})
    payment, _ = credits_purchase_start(account=acct_a, amount=Decimal("10"))
    assert _deliver(checkout_event(payment.external_id, 1080)) == b"credited"
    return payment


@pytest.mark.django_db
def test_a_lost_answer_keeps_the_claim_and_the_webhook_settles_it_once(client, owner, acct_a, stripe_paid,
                                                                      monkeypatch):
    sent = []

    def lost(**params):
        sent.append(params)
        raise stripe.APIConnectionError("timed out")

    monkeypatch.setattr(stripe.Refund, "create", lost)
    client.force_login(owner)
    page = text_of(client.post("/account/credits/refund/", {"payment": stripe_paid.pk}, follow=True))
    assert "Refund of $10.00 requested" in page
    refund = Refund.objects.get()
    assert (refund.status, refund.amount_units) == ("requested", usd_to_units("10"))
    assert sent[0]["idempotency_key"] == f"tokengrid-refund-{refund.pk}"
    assert _books(acct_a)[0] == usd_to_units("10")  # nothing posted before Stripe says so
    assert "refund of $10.00 requested" in page
    assert "Refund $10.00" not in page  # no second claim offered while this one is in flight

    payload = _refund_event("re_lost", refund.pk, 1000)
    assert _deliver(payload) == b"refunded"
    assert _deliver(_refund_event("re_lost", refund.pk, 1000, kind="refund.updated", event_id="evt_re_2")) \
        == b"already refunded"
    assert _deliver(payload) == b"already refunded"
    refund.refresh_from_db()
    assert (refund.status, refund.external_id) == ("succeeded", "re_lost")
    assert _books(acct_a)[0] == 0
    assert LedgerEntry.objects.get(kind="refund").idempotency_key == "refund:stripe:re_lost"


@pytest.mark.django_db
def test_the_webhook_after_the_direct_answer_posts_nothing(acct_a, stripe_paid, monkeypatch):
    monkeypatch.setattr(stripe.Refund, "create", lambda **kw: {"id": "re_direct", "status": "succeeded"})
    refund = credits_refund(account=acct_a, payment_id=stripe_paid.pk)
    assert refund.status == "succeeded"
    after = _books(acct_a)
    assert _deliver(_refund_event("re_direct", refund.pk, 1000)) == b"already refunded"
    assert _deliver(_refund_event("re_direct", refund.pk, 999, event_id="evt_x")) == b"amount does not match"
    assert _deliver(_refund_event("re_other", 10**9, 1000, event_id="evt_y")) == b"unknown refund"
    assert _books(acct_a) == after
    assert LedgerEntry.objects.filter(kind="refund").count() == 1


@pytest.mark.django_db
def test_a_refund_stripe_fails_releases_the_claim(acct_a, stripe_paid, monkeypatch):
    monkeypatch.setattr(stripe.Refund, "create", lambda **kw: {"id": "re_failed", "status": "failed"})
    before = _books(acct_a)
    with pytest.raises(PurchaseError, match="the refund is failed"):
        credits_refund(account=acct_a, payment_id=stripe_paid.pk)
    assert Refund.objects.get().status == "failed"
    assert _books(acct_a) == before


@pytest.mark.django_db
def test_a_refusal_leaves_balance_and_ledger_untouched_and_the_page_says_why(client, owner, acct_a, gateway):
    payment = buy(acct_a, "30")
    before = _books(acct_a)
    gateway(refuse="the charge is disputed")
    client.force_login(owner)
    page = text_of(client.post("/account/credits/refund/", {"payment": payment.pk}, follow=True))
    assert "The refund failed: the charge is disputed" in page
    assert _books(acct_a) == before
    refund = Refund.objects.get()
    assert (refund.status, refund.failure) == ("failed", "the charge is disputed")
    payment.refresh_from_db()
    assert payment.refunded_units == 0
    assert "Refund $30.00" in page  # the claim is released: it can be asked again
    gateway()
    assert credits_refund(account=acct_a, payment_id=payment.pk).status == "succeeded"
    assert _books(acct_a)[0] == 0


@pytest.mark.django_db
def test_no_gateway_is_called_inside_a_transaction(acct_a, gateway):
    payment = buy(acct_a, "10")
    fake = gateway()
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        credits_refund(account=acct_a, payment_id=payment.pk)
    assert fake.calls == []
