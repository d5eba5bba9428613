"""Usage debits of a chunk are set-based: they equal the one-entry-at-a-time rule, cost a constant
number of statements whatever the number of accounts, post once, and serialize with every other
writer of a balance."""
import contextlib
import random

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.ledger import ledger_debit_usage, ledger_post
from billing.models import Account, LedgerEntry, Payment
from billing.promos import PromoError, promo_redeem
from billing.purchases import PurchaseError, credits_refund
from core.money import usd_to_units
from tests.billing.factories import PromoCodeFactory

from .conftest import buy, run_threads

USD = usd_to_units("1")


def _accounts(count: int, prefix: str) -> list[Account]:
    Account.objects.bulk_create([Account(external_id=f"{prefix}{i:05d}") for i in range(count)])
    return list(Account.objects.filter(external_id__startswith=prefix).order_by("pk"))


def _one_at_a_time(*, spend_by_account: dict[int, int], idempotency_prefix: str) -> list[int]:
    """The rule the set-based debit must equal: each account's entry through ledger_post, in id order."""
    posted = []
    for account_id in sorted(spend_by_account):
        if spend_by_account[account_id] and ledger_post(
                account_id=account_id, kind=LedgerEntry.Kind.USAGE, amount_units=-spend_by_account[account_id],
                idempotency_key=f"{idempotency_prefix}:account:{account_id}", reference=idempotency_prefix,
                actor="ingest", memo="usage"):
            posted.append(account_id)
    return posted


def _books(accounts: list[Account]) -> list[tuple]:
    """Every account's state and entries, by position (the two twins have different ids)."""
    position = {a.pk: i for i, a in enumerate(accounts)}
    state = [(position[pk], balance, low, topup) for pk, balance, low, topup in
             Account.objects.filter(pk__in=position).order_by("pk").values_list(
                 "pk", "balance_units", "low_balance_armed", "auto_topup_armed")]
    entries = [(position[account_id], kind, amount, after, key.rsplit(":account:", 1)[0] if kind == "usage" else "",
                reference, actor, memo)
               for account_id, kind, amount, after, key, reference, actor, memo in
               LedgerEntry.objects.filter(account_id__in=position).order_by("account_id", "id").values_list(
                   "account_id", "kind", "amount_units", "balance_after_units", "idempotency_key", "reference",
                   "actor", "memo")]
    return state + entries


chunk_strategy = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 3 * USD)), min_size=0, max_size=8).map(dict)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(balances=st.lists(st.integers(-2 * USD, 5 * USD), min_size=6, max_size=6),
       thresholds=st.lists(st.one_of(st.none(), st.integers(0, 4 * USD)), min_size=6, max_size=6),
       disarmed=st.lists(st.booleans(), min_size=6, max_size=6),
       chunks=st.lists(st.tuples(chunk_strategy, st.integers(0, 4)), min_size=1, max_size=6))
@pytest.mark.django_db
def test_set_based_debits_equal_the_one_entry_at_a_time_rule(balances, thresholds, disarmed, chunks):
    with transaction.atomic():  # each example rolls back: the next one starts from empty books
        twins = []
        for twin in ("set", "one"):
            accounts = _accounts(6, f"{twin}_")
            for account, balance, threshold, off in zip(accounts, balances, thresholds, disarmed, strict=True):
                if balance:
                    ledger_post(account_id=account.pk, kind=LedgerEntry.Kind.ADJUSTMENT, amount_units=balance,
                                idempotency_key=f"{twin}:open:{account.pk}", actor="test", memo="opening balance")
                # Disarmed after the opening post (which re-arms): an alert already sent for this crossing.
                Account.objects.filter(pk=account.pk).update(
                    low_balance_threshold_units=threshold, low_balance_armed=not off,
                    auto_topup_threshold_units=threshold or 0, auto_topup_armed=not off)
            twins.append(accounts)
        for number, (chunk, retry_of) in enumerate(chunks):
            # A retried chunk repeats an earlier chunk's prefix and spend: it must post nothing.
            prefix, spend = (f"ingest:batch:1:chunk:{retry_of}", chunks[retry_of][0]) if retry_of < number else (
                f"ingest:batch:1:chunk:{number}", chunk)
            posted = [ledger_debit_usage(spend_by_account={twins[0][i].pk: s for i, s in spend.items()},
                                         idempotency_prefix=prefix),
                      _one_at_a_time(spend_by_account={twins[1][i].pk: s for i, s in spend.items()},
                                     idempotency_prefix=prefix)]
            position = [{a.pk: i for i, a in enumerate(accounts)} for accounts in twins]
            assert [position[0][pk] for pk in posted[0]] == [position[1][pk] for pk in posted[1]]
        assert _books(twins[0]) == _books(twins[1])
        for account in twins[0]:
            account.refresh_from_db()
            entries = account.ledger.order_by("id")
            assert account.balance_units == (entries.aggregate(s=Sum("amount_units"))["s"] or 0)
            running = 0
            for amount, after in entries.values_list("amount_units", "balance_after_units"):
                running += amount
                assert after == running
        call_command("ledger_verify", stdout=open("/dev/null", "w"))  # noqa: SIM115
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_a_chunk_costs_the_same_statements_for_ten_accounts_as_for_a_thousand():
    small, large = _accounts(10, "s_"), _accounts(1000, "l_")
    counts = []
    for accounts, prefix in ((small, "c1"), (large, "c2")):
        with CaptureQueriesContext(connection) as queries:
            posted = ledger_debit_usage(spend_by_account={a.pk: 7 * (n + 1) for n, a in enumerate(accounts)},
                                        idempotency_prefix=prefix)
        assert posted == [a.pk for a in accounts]
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert counts[1] <= 6  # savepoint, lock, entries + balances, release
    last = Account.objects.get(pk=large[-1].pk)
    assert last.balance_units == -7000
    assert LedgerEntry.objects.get(account=last).balance_after_units == -7000


@pytest.mark.django_db
def test_a_retried_chunk_posts_nothing_and_zero_spend_posts_no_entry(acct_a, acct_b):
    buy(acct_a, "10")
    spend = {acct_a.pk: usd_to_units("1.5"), acct_b.pk: 0}
    assert ledger_debit_usage(spend_by_account=spend, idempotency_prefix="ingest:batch:7:chunk:0") == [acct_a.pk]
    assert ledger_debit_usage(spend_by_account=spend, idempotency_prefix="ingest:batch:7:chunk:0") == []
    acct_a.refresh_from_db()
    acct_b.refresh_from_db()
    assert (acct_a.balance_units, acct_b.balance_units) == (usd_to_units("8.5"), 0)
    usage = LedgerEntry.objects.get(kind="usage")
    assert (usage.account_id, usage.amount_units, usage.balance_after_units, usage.idempotency_key,
            usage.reference, usage.actor) == (acct_a.pk, -usd_to_units("1.5"), usd_to_units("8.5"),
                                              f"ingest:batch:7:chunk:0:account:{acct_a.pk}",
                                              "ingest:batch:7:chunk:0", "ingest")
    assert usage.created is not None


@pytest.mark.django_db
def test_spend_must_be_integer_units(acct_a):
    with pytest.raises(TypeError, match="int units"):
        ledger_debit_usage(spend_by_account={acct_a.pk: 1.5}, idempotency_prefix="float")
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_chunks_racing_purchases_refunds_and_promo_grants_keep_every_balance_exact():
    """Twelve threads: chunks debiting 30 accounts each against purchases, refunds and promo grants
    on the same accounts (the row locks serialize them; ids ascend in lock order per account)."""
    accounts = _accounts(40, "race_")
    seed = {a.pk: buy(a, "50").pk for a in accounts[:8]}
    promos = [PromoCodeFactory(code=f"RACE{i}", amount_units=usd_to_units("2")) for i in range(3)]

    def work(i: int) -> dict:
        rng = random.Random(i)
        moved = {"debited": 0, "credited": 0, "refunded": 0, "chunks": 0}
        for step in range(5):
            kind = (i + step) % 4
            if kind in (0, 1):
                spend = {a.pk: rng.randrange(1, 10**10) for a in rng.sample(accounts, 30)}
                if ledger_debit_usage(spend_by_account=spend, idempotency_prefix=f"ingest:batch:{i}:chunk:{step}"):
                    moved["debited"] += sum(spend.values())
                    moved["chunks"] += 1
            elif kind == 2:
                account = accounts[rng.randrange(8)]
                if rng.random() < 0.5:
                    buy(account, "7.25")
                    moved["credited"] += usd_to_units("7.25")
                else:
                    with contextlib.suppress(PurchaseError):  # nothing left to pay back
                        moved["refunded"] += credits_refund(account=account, payment_id=seed[account.pk]).amount_units
            else:
                try:
                    promo_redeem(account=accounts[rng.randrange(40)], code=promos[rng.randrange(3)].code)
                    moved["credited"] += usd_to_units("2")
                except PromoError:
                    pass
        return moved

    results = run_threads(12, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert LedgerEntry.objects.filter(kind="usage").count() == 30 * sum(r["chunks"] for r in results)
    for account in Account.objects.filter(pk__in=[a.pk for a in accounts]):
        running = 0
        for amount, after in account.ledger.order_by("id").values_list("amount_units", "balance_after_units"):
            running += amount
            assert after == running  # no writer read a balance another had not finished moving
        assert account.balance_units == running
    total = Account.objects.filter(pk__in=[a.pk for a in accounts]).aggregate(s=Sum("balance_units"))["s"]
    assert total == 8 * usd_to_units("50") + sum(r["credited"] - r["debited"] - r["refunded"] for r in results)
    assert LedgerEntry.objects.filter(kind="purchase").count() == Payment.objects.filter(status="succeeded").count()
    call_command("ledger_verify", stdout=open("/dev/null", "w"))  # noqa: SIM115
