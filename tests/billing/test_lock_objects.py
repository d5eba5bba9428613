"""Every lock of billing: accounts in primary-key order, then the payment, promo code or redemption;
twenty threads buying, debiting and refunding at once keep every balance equal to its entries."""
import random
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from billing.ledger import ledger_debit_usage
from billing.lock_objects import accounts_lock, accounts_lock_ids, payment_lock, promo_redemption_lock
from billing.models import LedgerEntry, Payment
from billing.promos import promo_redeem
from billing.purchases import PurchaseError, credits_refund, payment_complete
from core.money import usd_to_units
from tests.billing.factories import AccountFactory, PaymentFactory, PromoCodeFactory

from .conftest import buy, run_threads


@pytest.mark.django_db(transaction=True)
def test_twenty_threads_buying_debiting_and_refunding_keep_the_books_exact():
    accounts = [AccountFactory(external_id=f"acct_{i}") for i in range(3)]
    seed_payments = {a.pk: [buy(a, "100").pk] for a in accounts}

    def work(i: int) -> dict:
        rng = random.Random(i)
        done = {"bought": 0, "debited": 0, "refunded": 0, "refused": 0}
        for step in range(6):
            account = accounts[rng.randrange(3)]
            action = (i + step) % 3
            if action == 0:
                amount = Decimal(rng.randrange(500, 5000)) / 100
                buy(account, str(amount))
                done["bought"] += usd_to_units(amount)
            elif action == 1:
                # A chunk debiting two accounts at once, as ingestion does (row locks in pk order).
                spend = {a.pk: rng.randrange(1, 10**11) for a in rng.sample(accounts, 2)}
                ledger_debit_usage(spend_by_account=spend, idempotency_prefix=f"ingest:batch:{i}:chunk:{step}")
                done["debited"] += sum(spend.values())
            else:
                try:
                    refund = credits_refund(account=account, payment_id=seed_payments[account.pk][0])
                    assert refund.status == "succeeded"
                    done["refunded"] += refund.amount_units
                except PurchaseError:
                    done["refused"] += 1
        return done

    results = run_threads(20, work)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    for account in accounts:
        account.refresh_from_db()
        entries = LedgerEntry.objects.filter(account=account)
        assert account.balance_units == entries.aggregate(s=Sum("amount_units"))["s"]
        assert account.balance_units == entries.order_by("-id").first().balance_after_units
        # Each entry's balance after is the running sum: no update was lost between two writers.
        running = 0
        for amount, after in entries.order_by("id").values_list("amount_units", "balance_after_units"):
            running += amount
            assert after == running
        seed = Payment.objects.get(pk=seed_payments[account.pk][0])
        assert 0 <= seed.refunded_units <= seed.amount_units
        assert -(entries.filter(kind="refund").aggregate(s=Sum("amount_units"))["s"] or 0) == seed.refunded_units
    total = sum(a.balance_units for a in accounts)
    moved = sum(r["bought"] - r["debited"] - r["refunded"] for r in results)
    assert total == 3 * usd_to_units("100") + moved
    call_command("ledger_verify")


@pytest.mark.django_db(transaction=True)
def test_webhooks_and_refunds_on_one_account_at_once_never_deadlock():
    """Completing payments and refunding others lock account then payment, in the same order."""
    account = AccountFactory(external_id="acct_locks")
    paid = [buy(account, "20") for _ in range(5)]
    pending = [PaymentFactory(account=account, gateway="demo", external_id=f"demo_pending_{i}",
                                      amount_units=usd_to_units("10"), fee_units=usd_to_units("0.80"))
               for i in range(5)]

    def work(i: int):
        kind, k = divmod(i, 5)
        if kind == 0:
            return payment_complete(payment_id=pending[k].pk)
        try:  # a refund racing the completion of the same payment, or of a paid one
            return credits_refund(account=account, payment_id=(pending if kind == 1 else paid)[k].pk)
        except PurchaseError:
            return None

    results = run_threads(15, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    account.refresh_from_db()
    entries = LedgerEntry.objects.filter(account=account)
    assert entries.filter(kind="purchase").count() == 10  # every pending payment credited once
    assert entries.filter(kind="refund").count() == 5 + sum(r is not None for r in results[5:10])
    assert account.balance_units == entries.aggregate(s=Sum("amount_units"))["s"]
    assert account.balance_units == usd_to_units("150") - sum(p.refunded_units for p in Payment.objects.all())


@pytest.mark.django_db
def test_accounts_are_locked_in_primary_key_order_whatever_order_they_are_asked_in():
    accounts = [AccountFactory(external_id=f"acct_{i}") for i in range(4)]
    ids = [a.pk for a in reversed(accounts)] + [accounts[0].pk]
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locked = accounts_lock(account_ids=ids)
        accounts_lock_ids(account_ids=ids)
    assert list(locked) == sorted(a.pk for a in accounts)
    sql = [q["sql"] for q in queries.captured_queries if "billing_account" in q["sql"]]
    assert "ORDER BY" in sql[0]
    assert sql[0].endswith("FOR UPDATE")
    assert "ORDER BY id FOR UPDATE" in sql[1]


@pytest.mark.django_db
def test_a_payment_is_locked_with_its_account_and_never_through_another_account(acct_a, acct_b):
    payment = buy(acct_a, "10")
    with transaction.atomic():
        account, locked = payment_lock(payment_id=payment.pk)
        assert (account.pk, locked.pk) == (acct_a.pk, payment.pk)
        assert payment_lock(payment_id=payment.pk, account_id=acct_a.pk)[1].pk == payment.pk
        with pytest.raises(Payment.DoesNotExist):
            payment_lock(payment_id=payment.pk, account_id=acct_b.pk)


@pytest.mark.django_db
def test_a_promo_redemption_is_locked_with_its_account(acct_a):
    PromoCodeFactory(code="LOCK", amount_units=usd_to_units("1"))
    redemption = promo_redeem(account=acct_a, code="lock")
    with transaction.atomic():
        account, locked = promo_redemption_lock(redemption_id=redemption.pk)
    assert (account.pk, locked.pk) == (acct_a.pk, redemption.pk)
