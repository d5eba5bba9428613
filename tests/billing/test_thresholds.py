"""Thresholds chosen by the account: each percentage of a budget or key, its 100%, and the low balance,
alert once per crossing (also when 20 debits cross at once), and again once a crossing was undone."""
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.db import connection, transaction

from billing.accounts import api_key_limit_set
from billing.alerts import billing_after_debit
from billing.ledger import ledger_debit_usage
from billing.models import (
    Account,
    AlertEvent,
    ApiKey,
    Budget,
    BudgetAlertLevel,
    BudgetSpend,
    Membership,
    Reservation,
)
from core.money import usd_to_units

from .conftest import buy, make_user, run_threads

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
DECEMBER = date(2026, 12, 1)


def usd(amount: str) -> int:
    return usd_to_units(amount)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def spend_set(budget: Budget, amount: str, *, subject: str = "") -> None:
    """The budget's December spend is now `amount` (what ingestion, or a reprice lowering it, leaves)."""
    BudgetSpend.objects.update_or_create(budget=budget, subject=subject, period_key=DECEMBER,
                                         defaults={"spent_units": usd(amount)})


def events(account) -> list[tuple[str, str]]:
    return [(e.event, e.dedupe_key) for e in AlertEvent.objects.filter(account=account).order_by("pk")]


@pytest.mark.django_db
def test_each_chosen_percentage_and_the_100_fire_once_with_the_figures(frozen, acct_a, owner,
                                                                        django_capture_on_commit_callbacks):
    budget = Budget.objects.create(account=acct_a, scope="account", amount_units=usd("10"), period="month",
                                   mode="hard", alert_percentages=[50, 80])
    key = f"budget:{budget.pk}::2026-12-01"
    with django_capture_on_commit_callbacks(execute=True):
        spend_set(budget, "4.99")
        billing_after_debit(account_ids=[acct_a.pk])  # under 50%: nothing
        assert events(acct_a) == []
        spend_set(budget, "5.00")  # exactly 50%: crossed
        billing_after_debit(account_ids=[acct_a.pk])
        billing_after_debit(account_ids=[acct_a.pk])  # the same crossing again: nothing more
        assert events(acct_a) == [("budget.threshold", f"{key}:50:1")]
        # $7.50 spent and a $0.60 hold made this month: $8.10 used, 81%.
        spend_set(budget, "7.50")
        Reservation.objects.create(id="gen-1", account=acct_a, api_key=ApiKey.objects.create(account=acct_a,
                                   external_id="k1"), amount_units=usd("0.60"), created=NOW - timedelta(minutes=1),
                                   expires_at=NOW + timedelta(minutes=5), answer_status=201, answer={})
        billing_after_debit(account_ids=[acct_a.pk])
        spend_set(budget, "10.00")
        billing_after_debit(account_ids=[acct_a.pk])
    assert events(acct_a) == [("budget.threshold", f"{key}:50:1"), ("budget.threshold", f"{key}:80:1"),
                              ("budget.exhausted", f"{key}:100:1")]
    at_80 = AlertEvent.objects.get(dedupe_key=f"{key}:80:1")
    assert at_80.subject == "The account's budget at 80% of its monthly budget"
    assert at_80.text == ("The account's budget used $8.10 of its $10.00 monthly budget (80% reached; $7.50 spent,"
                          " $0.60 held for requests in flight).")
    assert (at_80.data["used_usd"], at_80.data["reserved_usd"], at_80.data["level"]) == (
        "8.1000000000", "0.6000000000", 80)
    exhausted = AlertEvent.objects.get(dedupe_key=f"{key}:100:1")
    assert exhausted.subject == "The account's budget is exhausted"
    assert exhausted.text.endswith("The gateway refuses its requests until the period resets.")
    assert [m.subject for m in mail.outbox] == [
        "The account's budget at 50% of its monthly budget", "The account's budget at 80% of its monthly budget",
        "The account's budget is exhausted"]
    assert mail.outbox[0].to == [owner.email]


@pytest.mark.django_db
def test_a_crossing_undone_and_crossed_again_fires_again(frozen, acct_a):
    budget = Budget.objects.create(account=acct_a, scope="account", amount_units=usd("10"), period="day",
                                   mode="soft", alert_percentages=[80])
    day = f"budget:{budget.pk}::2026-12-02"
    BudgetSpend.objects.create(budget=budget, period_key=NOW.date(), spent_units=usd("9"))
    billing_after_debit(account_ids=[acct_a.pk])
    BudgetSpend.objects.filter(budget=budget).update(spent_units=usd("7"))  # a reprice lowered it under 80%
    billing_after_debit(account_ids=[acct_a.pk])
    assert BudgetAlertLevel.objects.get(budget=budget, level=80).armed
    BudgetSpend.objects.filter(budget=budget).update(spent_units=usd("8.20"))
    billing_after_debit(account_ids=[acct_a.pk])
    billing_after_debit(account_ids=[acct_a.pk])
    assert events(acct_a) == [("budget.threshold", f"{day}:80:1"), ("budget.threshold", f"{day}:80:2")]
    assert AlertEvent.objects.get(dedupe_key=f"{day}:80:2").data["used_usd"] == "8.2000000000"
    # Tomorrow is a new period: its levels start armed.
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        BudgetSpend.objects.create(budget=budget, period_key=NOW.date() + timedelta(days=1), spent_units=usd("12"))
        billing_after_debit(account_ids=[acct_a.pk])
    tomorrow = f"budget:{budget.pk}::2026-12-03"
    assert events(acct_a)[2:] == [("budget.threshold", f"{tomorrow}:80:1"), ("budget.exhausted", f"{tomorrow}:100:1")]
    assert AlertEvent.objects.get(dedupe_key=f"{tomorrow}:100:1").text.endswith(
        "It is a soft budget: requests go on, and so does the spend.")


@pytest.mark.django_db
def test_a_budget_moved_to_other_spend_alerts_anew(frozen, acct_a):
    from billing.budgets import budget_update
    budget = Budget.objects.create(account=acct_a, scope="account", amount_units=usd("10"), period="day",
                                   alert_percentages=[80])
    BudgetSpend.objects.create(budget=budget, period_key=NOW.date(), spent_units=usd("9"))
    billing_after_debit(account_ids=[acct_a.pk])
    budget_update(account=acct_a, budget_id=budget.pk, scope="tag", target="batch")  # counts the tag's spend: none
    assert not BudgetSpend.objects.filter(budget=budget).exists()
    BudgetSpend.objects.create(budget=budget, period_key=NOW.date(), spent_units=usd("8.50"))  # the tag's, later
    billing_after_debit(account_ids=[acct_a.pk])
    day = f"budget:{budget.pk}::2026-12-02:80"
    assert events(acct_a) == [("budget.threshold", f"{day}:1"), ("budget.threshold", f"{day}:2")]
    assert AlertEvent.objects.get(dedupe_key=f"{day}:2").subject == "The tag budget batch at 80% of its daily budget"


@pytest.mark.django_db
def test_each_end_user_of_an_each_user_budget_crosses_apart(frozen, acct_a):
    budget = Budget.objects.create(account=acct_a, scope="each_user", amount_units=usd("2"), period="month",
                                   alert_percentages=[])
    spend_set(budget, "2.50", subject="alice")
    spend_set(budget, "1.99", subject="bob")
    billing_after_debit(account_ids=[acct_a.pk])
    [event] = AlertEvent.objects.filter(account=acct_a)
    assert (event.event, event.dedupe_key, event.subject) == (
        "budget.exhausted", f"budget:{budget.pk}:alice:2026-12-01:100:1", "The budget of end user alice is exhausted")


@pytest.mark.django_db
def test_a_key_limit_alerts_at_80_by_default_and_at_the_chosen_percentages(frozen, acct_a):
    k1, k2 = (ApiKey.objects.create(account=acct_a, external_id=name) for name in ("k1", "k2"))
    api_key_limit_set(account=acct_a, key_id=k1.pk, limit_units=usd("10"), interval="daily")
    api_key_limit_set(account=acct_a, key_id=k2.pk, limit_units=usd("10"), interval="daily",
                      alert_percentages=[25, 90])
    b1, b2 = (Budget.objects.get(api_key=k) for k in (k1, k2))
    assert (b1.alert_percentages, b2.alert_percentages) == ([80], [25, 90])
    BudgetSpend.objects.create(budget=b1, period_key=NOW.date(), spent_units=usd("8.50"))
    BudgetSpend.objects.create(budget=b2, period_key=NOW.date(), spent_units=usd("10.00"))
    billing_after_debit(account_ids=[acct_a.pk])
    assert [(e.event, e.subject) for e in AlertEvent.objects.filter(account=acct_a).order_by("dedupe_key")] == [
        ("key.threshold", "API key k1 at 80% of its daily budget"),
        ("budget.exhausted", "API key k2 reached its limit"),
        ("key.threshold", "API key k2 at 25% of its daily budget"),
        ("key.threshold", "API key k2 at 90% of its daily budget")]
    # Setting the limit again without percentages keeps the chosen ones.
    api_key_limit_set(account=acct_a, key_id=k2.pk, limit_units=usd("20"), interval="daily")
    assert Budget.objects.get(api_key=k2).alert_percentages == [25, 90]


def _debit(account_id: int, budget_id: int, units: int, tag: str) -> None:
    """What a chunk does for one account: its budget's spend and its debit in one transaction, then
    (after the commit, as the fan-out queues it) the checks."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO billing_budgetspend (budget_id, subject, period_key, spent_units)"
                           " VALUES (%s, '', %s, %s) ON CONFLICT (budget_id, subject, period_key)"
                           " DO UPDATE SET spent_units = billing_budgetspend.spent_units + EXCLUDED.spent_units",
                           [budget_id, DECEMBER, units])
        ledger_debit_usage(spend_by_account={account_id: units}, idempotency_prefix=tag)
    billing_after_debit(account_ids=[account_id])


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_debits_crossing_one_threshold_send_one_alert(frozen, acct_a):
    owner = make_user("olivia", acct_a, Membership.Role.OWNER)
    buy(acct_a, "100")
    budget = Budget.objects.create(account=acct_a, scope="account", amount_units=usd("10"), period="month",
                                   alert_percentages=[80])
    BudgetSpend.objects.create(budget=budget, period_key=DECEMBER, spent_units=usd("7.90"))
    # 20 debits of $0.01: the spend goes from $7.90 to $8.10, over $8.00 (80%) once.
    results = run_threads(20, lambda i: _debit(acct_a.pk, budget.pk, usd("0.01"), f"chunk{i}"))
    assert results == [None] * 20
    assert BudgetSpend.objects.get(budget=budget).spent_units == usd("8.10")
    key = f"budget:{budget.pk}::2026-12-01:80"
    assert events(acct_a) == [("budget.threshold", f"{key}:1")]
    assert [(m.subject, m.to) for m in mail.outbox] == [
        ("The account's budget at 80% of its monthly budget", [owner.email])]
    # Undone (a reprice takes $0.50 off: $7.60, 76%), then 20 debits cross it again: one more alert.
    BudgetSpend.objects.filter(budget=budget).update(spent_units=usd("7.60"))
    billing_after_debit(account_ids=[acct_a.pk])
    results = run_threads(20, lambda i: _debit(acct_a.pk, budget.pk, usd("0.03"), f"again{i}"))
    assert results == [None] * 20
    assert events(acct_a) == [("budget.threshold", f"{key}:1"), ("budget.threshold", f"{key}:2")]
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_low_balance_is_an_alert_event_once_per_crossing(acct_a, owner, django_capture_on_commit_callbacks):
    buy(acct_a, "10")
    Account.objects.filter(pk=acct_a.pk).update(low_balance_threshold_units=usd("5"))
    with django_capture_on_commit_callbacks(execute=True):
        ledger_debit_usage(spend_by_account={acct_a.pk: usd("6")}, idempotency_prefix="d1")
        billing_after_debit(account_ids=[acct_a.pk])
        billing_after_debit(account_ids=[acct_a.pk])
        buy(acct_a, "20")  # back above: re-armed
        ledger_debit_usage(spend_by_account={acct_a.pk: usd("22")}, idempotency_prefix="d2")
        billing_after_debit(account_ids=[acct_a.pk])
    assert events(acct_a) == [("balance.low", "balance.low:1"), ("balance.low", "balance.low:2")]
    first = AlertEvent.objects.get(dedupe_key="balance.low:1")
    assert first.text.startswith("The credit balance of Alpha Labs is $4.00, under your alert threshold of $5.00.")
    assert first.data == {"balance_usd": "4.0000000000", "threshold_usd": "5.0000000000", "crossing": 1}
    assert [m.subject for m in mail.outbox] == ["Low credit balance on Alpha Labs"] * 2


# At this pace ----------------------------------------------------------------------------------------

PACE_NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)  # 21.5 days before the month ends (1 January 00:00 UTC)


def daily_spend(account, days: int, amount: str) -> None:
    """`amount` a day on each of the `days` complete days before PACE_NOW (the forecasts' history)."""
    from analytics.models import AccountDay
    from tests.marketplace.factories import ModelFactory, ProviderFactory
    model, provider = ModelFactory(), ProviderFactory()
    AccountDay.objects.bulk_create([
        AccountDay(account=account, day=PACE_NOW.date() - timedelta(days=n + 1), model=model, provider=provider,
                   requests=1, spend_units=usd(amount)) for n in range(days)])


@pytest.mark.django_db
def test_the_pace_alert_fires_once_per_period_with_the_forecast_the_pages_show(client, acct_a, acct_b, owner):
    from billing.pace import pace_alerts_check
    Account.objects.filter(pk__in=[acct_a.pk, acct_b.pk]).update(created=PACE_NOW - timedelta(days=60))
    # A: $100 left, $10 a day over the last 14 days: 10 days of credit, runs out on 20 December 12:00,
    # before the month ends (21.5 days left). B: $300 left lasts 30 days, past the month's end: no alert.
    Account.objects.filter(pk=acct_a.pk).update(balance_units=usd("100"))
    Account.objects.filter(pk=acct_b.pk).update(balance_units=usd("300"))
    daily_spend(acct_a, 14, "10")
    daily_spend(acct_b, 14, "10")
    # A's monthly budget of $200 with $90 used: $110 left at $10 a day runs out on 21 December.
    budget = Budget.objects.create(account=acct_a, scope="account", amount_units=usd("200"), period="month",
                                   alert_percentages=[])
    BudgetSpend.objects.create(budget=budget, period_key=DECEMBER, spent_units=usd("90"))
    roomy = Budget.objects.create(account=acct_a, scope="account", amount_units=usd("900"), period="week")  # not monthly
    BudgetSpend.objects.create(budget=roomy, period_key=date(2026, 12, 7), spent_units=usd("30"))
    with time_machine.travel(PACE_NOW, tick=False):
        fired = pace_alerts_check()
        assert pace_alerts_check() == []  # once per period
    assert sorted((e.account_id, e.dedupe_key, e.data["runs_out_on"]) for e in fired) == [
        (acct_a.pk, "forecast:balance:2026-12", "2026-12-20"),
        (acct_a.pk, f"forecast:budget:{budget.pk}:2026-12-01", "2026-12-21")]
    balance = next(e for e in fired if e.data["what"] == "balance")
    assert balance.subject == "Credit balance of Alpha Labs runs out on 2026-12-20"
    assert balance.text == ("At this pace the credit balance of Alpha Labs runs out on Sun 2026-12-20, before the month"
                            " ends: $100.00 left, $10.00 a day over the last 14 days, about 10.0 days.")
    on_budget = next(e for e in fired if e.data["what"] == "budget")
    assert on_budget.text == ("At this pace the account's monthly budget of $200.00 runs out on Mon 2026-12-21, before"
                              " the month ends: $90.00 used, $10.00 a day over the last 14 days, $305.00 by the"
                              " month's end.")
    # The pages show the forecast that fired, a day later too, when the live one moved.
    client.force_login(owner)
    with time_machine.travel(PACE_NOW + timedelta(days=1), tick=False):
        credits_page = client.get("/account/credits/").content.decode()
        budgets_page = client.get("/account/credits/budgets/").content.decode()
    assert "Forecast alert sent 2026-12-10 12:00: At this pace the credit balance of Alpha Labs runs out on Sun" \
        " 2026-12-20" in credits_page
    assert 'data-fired="2026-12-21"' in budgets_page
    # In January the period is new: an alert may fire again; December's is no longer shown.
    with time_machine.travel(datetime(2027, 1, 2, 12, tzinfo=UTC), tick=False):
        assert "Forecast alert sent" not in client.get("/account/credits/").content.decode()


# Pages and the API -----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_owners_edit_thresholds_on_the_pages_and_viewers_cannot(client, acct_a, owner, viewer):
    from .conftest import text_of
    key = ApiKey.objects.create(account=acct_a, external_id="k1")
    client.force_login(owner)
    response = client.post("/account/keys/", {"key": key.pk, "limit": "10", "interval": "daily", "alerts": "50, 90%"})
    assert response.status_code == 302
    assert Budget.objects.get(api_key=key).alert_percentages == [50, 90]
    assert 'value="50, 90"' in client.get("/account/keys/").content.decode()
    response = client.post("/account/keys/", {"key": key.pk, "limit": "10", "interval": "daily", "alerts": "0"},
                           follow=True)
    assert "Alert at (%): at most 10 whole percentages from 1 to 1000." in text_of(response)
    assert Budget.objects.get(api_key=key).alert_percentages == [50, 90]

    response = client.post("/account/credits/unusual/", {"k": "3.5", "minimum": "25"}, follow=True)
    assert "Unusual-spend alert saved." in text_of(response)
    acct_a.refresh_from_db()
    assert (acct_a.unusual_spend_k, acct_a.unusual_spend_min_units) == (Decimal("3.5"), usd("25"))
    response = client.post("/account/credits/unusual/", {"k": "0.1", "minimum": "25"}, follow=True)
    assert "Ensure this value is greater than or equal to 0.5." in text_of(response)
    client.post("/account/credits/alert/", {"threshold": "7.50"})
    acct_a.refresh_from_db()
    assert acct_a.low_balance_threshold_units == usd("7.50")
    budgets_page = text_of(client.get("/account/credits/budgets/"))
    assert "Alerts at 50%, 90%, 100%" in budgets_page

    client.force_login(viewer)
    assert client.post("/account/credits/unusual/", {"k": "9", "minimum": "1"}).status_code == 403
    assert client.post("/account/credits/alert/", {"threshold": "1"}).status_code == 403
    assert client.post("/account/keys/", {"key": key.pk, "limit": "10", "interval": "daily",
                                          "alerts": "10"}).status_code == 403
    acct_a.refresh_from_db()
    assert (acct_a.unusual_spend_k, acct_a.low_balance_threshold_units) == (Decimal("3.5"), usd("7.50"))
    assert Budget.objects.get(api_key=key).alert_percentages == [50, 90]


@pytest.mark.django_db
def test_the_alert_settings_api(client, acct_a, owner, viewer):
    from billing.accounts import account_token_create
    _, secret = account_token_create(account=acct_a, name="o", created_by=owner)
    _, read_only = account_token_create(account=acct_a, name="v", created_by=viewer)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert client.get("/api/v1/account/alert-settings", **auth).json() == {
        "low_balance_usd": None, "unusual_spend_k": "5.0", "unusual_spend_min_usd": "10.0000000000"}
    response = client.patch("/api/v1/account/alert-settings", {"low_balance_usd": "5", "unusual_spend_k": "2.5"},
                            content_type="application/json", **auth)
    assert response.json() == {"low_balance_usd": "5.0000000000", "unusual_spend_k": "2.5",
                               "unusual_spend_min_usd": "10.0000000000"}
    response = client.patch("/api/v1/account/alert-settings", {"unusual_spend_k": "100"},
                            content_type="application/json", **auth)
    assert response.status_code == 400
    assert response.json() == {"unusual_spend_k": ["Ensure this value is less than or equal to 99.9."]}
    response = client.patch("/api/v1/account/alert-settings", {"low_balance_usd": None},
                            content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {read_only}")
    assert response.status_code == 403
    acct_a.refresh_from_db()
    assert (acct_a.low_balance_threshold_units, acct_a.unusual_spend_k) == (usd("5"), Decimal("2.5"))
