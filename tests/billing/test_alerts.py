"""The checks after a chunk's debits work on sets: among a thousand debited accounts, exactly the
few that crossed a threshold get an email or a top-up, once, in a number of queries that does not
grow with the number of accounts; the low-balance alert emails once per crossing."""
from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.models import AccountDay
from billing.alerts import billing_after_debit, low_balance_check
from billing.ledger import ledger_debit_usage
from billing.models import (
    Account,
    ApiKey,
    Budget,
    BudgetAlertLevel,
    BudgetSpend,
    LedgerEntry,
    Membership,
    Payment,
    PaymentMethod,
    PromoRedemption,
)
from billing.periods import NONE_KEY, PERIOD_OF, period_key
from billing.promos import promo_redeem
from core.money import usd_to_units
from tests.billing.factories import PromoCodeFactory
from tests.marketplace.factories import ModelFactory, ProviderFactory

from .conftest import buy, make_user, run_threads

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # a Wednesday: its week began on Monday 30 November
TODAY, YESTERDAY, MONDAY = NOW.date(), date(2026, 12, 1), date(2026, 11, 30)
INTERVALS = ("daily", "weekly", "monthly", "never")

# Indexes of the accounts that cross something in `world(crossers=True)`, and two that nearly do.
LOW = (101, 202)  # balance $3, alert under $5
TOPUP = (300, 400)  # balance $4, auto top-up of $20 under $10
KEY_80 = 555  # daily limit $10, $8.50 spent today
KEY_100 = 777  # weekly limit $10, $6 on Monday and $6 today
TOLD = 666  # daily key at 90%, its 80% alert already sent today
LAST_MONTH = 888  # monthly key: $9.50 in November (on Monday), $2 in December
NEVER_TOLD = 444  # a limit that never resets, $11 spent in June and $1 today: its 100% alert was sent


def usd(amount: str) -> int:
    return usd_to_units(amount)


@pytest.fixture
def frozen():
    """The clock stands still at NOW: no interval flips at midnight during a test."""
    with time_machine.travel(NOW, tick=False):
        yield


def world(n: int, *, crossers: bool) -> list[Account]:
    """`n` accounts made in bulk, each with $100 (one seed entry, so the books add up), a $5 low-balance
    alert, a key limited to $10 (a hard key budget) with $1 spent today; every tenth has auto top-up at $10 and a card.
    With `crossers`, the accounts of LOW, TOPUP, KEY_80 and KEY_100 cross, those of TOLD,
    LAST_MONTH and NEVER_TOLD nearly do, and all of them have an owner."""
    balances = {i: usd("100") for i in range(n)}
    if crossers:
        balances.update({i: usd("3") for i in LOW} | {i: usd("4") for i in TOPUP})
    accounts = Account.objects.bulk_create([
        Account(external_id=f"bulk_{i:05d}", balance_units=balances[i],
                low_balance_threshold_units=None if crossers and i in TOPUP else usd("5"),
                auto_topup_enabled=i % 10 == 0, auto_topup_threshold_units=usd("10") if i % 10 == 0 else 0,
                auto_topup_amount_units=usd("20") if i % 10 == 0 else 0,
                auto_topup_monthly_cap_units=usd("100") if i % 10 == 0 else 0)
        for i in range(n)])
    LedgerEntry.objects.bulk_create([
        LedgerEntry(account=a, kind=LedgerEntry.Kind.ADJUSTMENT, amount_units=a.balance_units,
                    balance_after_units=a.balance_units, idempotency_key=f"seed:{a.pk}", actor="test", memo="seed")
        for a in accounts])
    PaymentMethod.objects.bulk_create([
        PaymentMethod(account=a, gateway="demo", token="demo_pm_saved", label="Demo card •••• 4242")
        for i, a in enumerate(accounts) if i % 10 == 0])
    keys = ApiKey.objects.bulk_create([ApiKey(account=a, external_id="k") for a in accounts])
    intervals = {i: INTERVALS[i % 4] for i in range(n)}
    spend = {(i, TODAY): usd("1") for i in range(n)}
    if crossers:
        intervals.update({KEY_80: "daily", KEY_100: "weekly", TOLD: "daily", LAST_MONTH: "monthly",
                          NEVER_TOLD: "never"})
        spend.update({(KEY_80, TODAY): usd("8.5"), (KEY_100, MONDAY): usd("6"), (KEY_100, TODAY): usd("6"),
                      (TOLD, TODAY): usd("9"), (LAST_MONTH, MONDAY): usd("9.5"), (LAST_MONTH, YESTERDAY): usd("1"),
                      (NEVER_TOLD, date(2026, 6, 1)): usd("11")})
        for i in (*LOW, *TOPUP, KEY_80, KEY_100, TOLD, LAST_MONTH, NEVER_TOLD):
            make_user(f"owner{i}", accounts[i], Membership.Role.OWNER)
    # Each key limited to $10 (its hard key budget), its spend in the budget's periods.
    budgets = Budget.objects.bulk_create([
        Budget(account=a, scope="key", target="k", api_key=keys[i], amount_units=usd("10"),
               period=PERIOD_OF[intervals[i]], mode="hard", alert_percentages=[80]) for i, a in enumerate(accounts)])
    if crossers:  # told already: TOLD at 80% today, NEVER_TOLD at 80% and 100% (its period never ends)
        BudgetAlertLevel.objects.bulk_create([
            BudgetAlertLevel(budget=budgets[TOLD], period_key=TODAY, level=80, crossings=1),
            *(BudgetAlertLevel(budget=budgets[NEVER_TOLD], period_key=NONE_KEY, level=level, crossings=1)
              for level in (80, 100))])
    in_periods: dict[tuple[int, date], int] = {}
    for (i, day), units in spend.items():
        key = period_key(period=budgets[i].period, moment=datetime.combine(day, time(), tzinfo=UTC), zone=UTC)
        in_periods[(budgets[i].pk, key)] = in_periods.get((budgets[i].pk, key), 0) + units
    BudgetSpend.objects.bulk_create([BudgetSpend(budget_id=budget_id, period_key=key, spent_units=units)
                                     for (budget_id, key), units in sorted(in_periods.items())])
    model = ModelFactory(author__slug="lab", author__name="Lab", route_name="alpha", name="Alpha")
    provider = ProviderFactory(slug="prov", name="Prov")
    AccountDay.objects.bulk_create([
        AccountDay(account=accounts[i], day=day, model=model, provider=provider, api_key_id=keys[i].pk,
                   requests=1, spend_units=units)
        for (i, day), units in sorted(spend.items())])
    return accounts


def sent() -> list[tuple[str, list[str]]]:
    return sorted((message.subject, message.to) for message in mail.outbox)


@pytest.mark.django_db
def test_only_the_accounts_and_keys_that_crossed_are_told_or_topped_up_once(
        frozen, django_capture_on_commit_callbacks):
    accounts = world(1000, crossers=True)
    ids = [a.pk for a in accounts]
    key_80, key_100 = (ApiKey.objects.get(account=accounts[i]) for i in (KEY_80, KEY_100))
    with django_capture_on_commit_callbacks(execute=True):
        billing_after_debit(account_ids=ids)
    assert sent() == sorted([
        ("API key k at 80% of its daily budget", [f"owner{KEY_80}@example.com"]),
        ("API key k at 80% of its weekly budget", [f"owner{KEY_100}@example.com"]),
        ("API key k reached its limit", [f"owner{KEY_100}@example.com"]),
        (f"Low credit balance on bulk_00{LOW[0]}", [f"owner{LOW[0]}@example.com"]),
        (f"Low credit balance on bulk_00{LOW[1]}", [f"owner{LOW[1]}@example.com"]),
        *((f"Auto top-up charged on bulk_00{i}", [f"owner{i}@example.com"]) for i in TOPUP),
    ])
    by_subject = {message.subject: message.body for message in mail.outbox}
    assert "used $8.50 of its $10.00 daily budget (80% reached;" in by_subject["API key k at 80% of its daily budget"]
    assert "used $12.00 of its $10.00 weekly budget (100% reached;" in by_subject["API key k reached its limit"]
    assert "The gateway refuses its requests until the period resets." in by_subject["API key k reached its limit"]
    topped_up = [accounts[i].pk for i in TOPUP]
    payments = Payment.objects.order_by("account_id")
    assert [(p.account_id, p.kind, p.status, p.amount_units) for p in payments] == [
        (pk, "auto_topup", "succeeded", usd("20")) for pk in topped_up]
    purchases = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PURCHASE).order_by("account_id")
    assert [(e.account_id, e.amount_units, e.balance_after_units) for e in purchases] == [
        (pk, usd("20"), usd("24")) for pk in topped_up]
    claimed = BudgetAlertLevel.objects.filter(budget__api_key__in=[key_80, key_100]).order_by("budget_id", "level")
    assert [(c.budget.api_key_id, c.period_key, c.level, c.armed, c.crossings) for c in claimed] == [
        (key_80.pk, TODAY, 80, False, 1), (key_100.pk, MONDAY, 80, False, 1), (key_100.pk, MONDAY, 100, False, 1)]
    assert list(Account.objects.filter(low_balance_armed=False).order_by("pk").values_list("pk", flat=True)) == [
        accounts[i].pk for i in LOW]

    with django_capture_on_commit_callbacks(execute=True):  # the task delivered again: nothing more
        billing_after_debit(account_ids=ids)
        billing_after_debit(account_ids=list(reversed(ids)))
    assert len(mail.outbox) == 7
    assert Payment.objects.count() == 2
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PURCHASE).count() == 2


@pytest.mark.django_db
def test_the_next_interval_tells_a_key_again(frozen, django_capture_on_commit_callbacks):
    accounts = world(20, crossers=False)
    key = ApiKey.objects.get(account=accounts[0])
    budget = Budget.objects.get(api_key=key)
    BudgetAlertLevel.objects.create(budget=budget, period_key=YESTERDAY, level=80, crossings=1)
    Budget.objects.filter(pk=budget.pk).update(period="day")
    BudgetSpend.objects.filter(budget=budget).delete()
    BudgetSpend.objects.create(budget=budget, period_key=TODAY, spent_units=usd("9"))
    make_user("olga", accounts[0], Membership.Role.OWNER)
    with django_capture_on_commit_callbacks(execute=True):
        billing_after_debit(account_ids=[a.pk for a in accounts])  # told yesterday, not today
        billing_after_debit(account_ids=[a.pk for a in accounts])
    assert sent() == [("API key k at 80% of its daily budget", ["olga@example.com"])]


@pytest.mark.django_db
def test_the_number_of_queries_does_not_grow_with_the_accounts(frozen):
    ids = [a.pk for a in world(1000, crossers=False)]
    # A chunk of 50,000 accounts: still one statement each, the ids as one parameter.
    many = ids + list(range(max(ids) + 1, max(ids) + 1 + 49_000))

    def queries(account_ids: list[int]) -> int:
        with CaptureQueriesContext(connection) as captured:
            billing_after_debit(account_ids=account_ids)
        return len(captured)

    # Due promo expiries, the low-balance claim, the auto top-up candidates, the accounts with budgets,
    # the budgets' crossings (claimed in the same statement).
    assert {n: queries(account_ids) for n, account_ids in ((10, ids[:10]), (1000, ids), (50_000, many))} == {
        10: 5, 1000: 5, 50_000: 5}
    assert not mail.outbox
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_a_due_promo_expiry_among_many_accounts_is_posted_once(frozen):
    accounts = world(1000, crossers=False)
    PromoCodeFactory(code="TRIAL", amount_units=usd("10"), credit_expiry_days=7)
    due, later = accounts[321], accounts[654]
    for account in (due, later):
        promo_redeem(account=account, code="TRIAL")
    PromoRedemption.objects.filter(account=due).update(expires_at=NOW - timedelta(minutes=1))
    for _ in range(2):
        billing_after_debit(account_ids=[a.pk for a in accounts])
    expiries = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.EXPIRY)
    assert [(e.account_id, e.amount_units) for e in expiries] == [(due.pk, -usd("10"))]
    assert PromoRedemption.objects.get(account=later).expired_units is None
    due.refresh_from_db()
    assert due.balance_units == usd("100")


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_after_one_chunk_send_and_charge_once(frozen):
    ids = [a.pk for a in world(1000, crossers=True)]
    results = run_threads(6, lambda i: billing_after_debit(account_ids=ids if i % 2 else list(reversed(ids))))
    assert not [r for r in results if isinstance(r, Exception)]
    assert len(mail.outbox) == 7  # outside a transaction the emails go at once (2 of them: top-ups charged)
    assert len({(m.subject, tuple(m.to)) for m in mail.outbox}) == 7
    assert Payment.objects.filter(kind="auto_topup", status="succeeded").count() == 2


def test_low_balance_alert_once_per_crossing(client, owner, acct_a, django_capture_on_commit_callbacks):
    buy(acct_a, "10")
    client.force_login(owner)
    client.post("/account/credits/alert/", {"threshold": "5"})
    with django_capture_on_commit_callbacks(execute=True):
        ledger_debit_usage(spend_by_account={acct_a.pk: usd_to_units("6")}, idempotency_prefix="d1")
        assert low_balance_check(account_id=acct_a.pk)
        ledger_debit_usage(spend_by_account={acct_a.pk: usd_to_units("1")}, idempotency_prefix="d2")
        assert not low_balance_check(account_id=acct_a.pk)
    assert len(mail.outbox) == 1
    assert "Low credit balance" in mail.outbox[0].subject
    assert "is $4.00, under your alert threshold of $5.00" in mail.outbox[0].body
    buy(acct_a, "20")  # back above: the next crossing alerts again
    with django_capture_on_commit_callbacks(execute=True):
        ledger_debit_usage(spend_by_account={acct_a.pk: usd_to_units("22")}, idempotency_prefix="d3")
        assert low_balance_check(account_id=acct_a.pk)
    assert len(mail.outbox) == 2
    client.post("/account/credits/alert/", {"threshold": ""})
    acct_a.refresh_from_db()
    assert acct_a.low_balance_threshold_units is None
