"""Fixtures of the billing tests: accounts with members of each role, signed Stripe events, threads."""
import hashlib
import hmac
import re
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from django.db import connection

from billing.models import Account, Membership, Payment
from billing.purchases import credits_purchase_start, demo_method_save
from tests.billing.factories import AccountFactory, member_of

WEBHOOK_SECRET = "whsec_test_tokengrid"  # noqa: S105  (test only)


@pytest.fixture(autouse=True)
def after_debit_calls(monkeypatch):
    """Record what ingestion queues on the billing queue instead of sending it to a broker."""
    from billing import tasks

    calls: list[list[int]] = []
    monkeypatch.setattr(tasks.billing_after_debit, "delay", lambda ids: calls.append(sorted(ids)))
    return calls


@pytest.fixture(autouse=True)
def _billing_settings(settings):
    settings.BILLING_GATEWAY = "demo"
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.BILLING_FEE_PERCENT = "5.5"
    settings.BILLING_FEE_MIN_USD = "0.80"
    settings.BILLING_PURCHASE_MIN_USD = "5"
    settings.BILLING_PURCHASE_MAX_USD = "10000"
    settings.BILLING_REFUND_WINDOW_DAYS = 30


def iso(moment: datetime) -> str:
    """A log timestamp: ISO 8601 in UTC with Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def text_of(response) -> str:
    """What a person reads: the page without tags, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def make_user(name: str, account: Account, role: str):
    return member_of(account, role, name)


@pytest.fixture
def acct_a(db) -> Account:
    return AccountFactory(external_id="acct_a", name="Alpha Labs")


@pytest.fixture
def acct_b(db) -> Account:
    return AccountFactory(external_id="acct_b", name="Beta Corp")


@pytest.fixture
def owner(acct_a):
    return make_user("olivia", acct_a, Membership.Role.OWNER)


@pytest.fixture
def member(acct_a):
    return make_user("mike", acct_a, Membership.Role.MEMBER)


@pytest.fixture
def viewer(acct_a):
    return make_user("vera", acct_a, Membership.Role.VIEWER)


@pytest.fixture
def owner_b(acct_b):
    return make_user("bob", acct_b, Membership.Role.OWNER)


def buy(account: Account, amount: str, *, save_method: bool = False) -> Payment:
    payment, _ = credits_purchase_start(account=account, amount=Decimal(amount), save_method=save_method)
    return payment


def with_demo_card(account: Account, token: str = "demo_pm_saved"):
    method = demo_method_save(account=account)
    if token != method.token:
        method.token = token
        method.save(update_fields=["token"])
    return method


def stripe_signature(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send: HMAC-SHA256 of "t.payload" with the secret."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def checkout_event(session_id: str, amount_cents: int, *, event_id: str = "evt_1",
                   kind: str = "checkout.session.completed", paid: bool = True) -> bytes:
    return orjson.dumps({
        "id": event_id, "object": "event", "type": kind, "api_version": "2024-06-20", "created": int(time.time()),
        "data": {"object": {"id": session_id, "object": "checkout.session", "amount_total": amount_cents,
                            "currency": "usd", "payment_status": "paid" if paid else "unpaid",
                            "customer": None, "payment_intent": "pi_test_1"}}})


def run_threads(count: int, work) -> list:
    """Run `work(i)` in `count` threads started together; each closes its connection; returns results
    (or the exceptions raised)."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as error:  # noqa: BLE001  (reported to the test)
            results[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results
