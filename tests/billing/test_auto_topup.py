"""Auto top-up that cannot run away: one automatic charge in flight per account (a unique claim in the
database), a monthly cap in the account's month, a minimum interval between two charges, off at once
after a final decline and after N transient failures in a row, with an audit trail and alerts."""
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import IntegrityError, transaction

from billing.gateways import Charge, DemoGateway
from billing.ledger import ledger_debit_usage
from billing.models import Account, AlertEvent, AutoTopupChange, Payment
from billing.periods import MONTH, period_now
from billing.purchases import auto_topup_run, auto_topup_settings_save
from billing.topup_selectors import auto_topup_outlook
from core.money import usd_to_units
from tests.billing.factories import AccountFactory
from tests.conftest import NOW

from .conftest import buy, make_user, run_threads, text_of, with_demo_card


def _rule(account, *, threshold="5", amount="25", cap="200", user=None):
    return auto_topup_settings_save(account=account, enabled=True, threshold=Decimal(threshold),
                                    amount=Decimal(amount), monthly_cap=Decimal(cap), user=user)


def _debit(account, usd: str, key: str):
    ledger_debit_usage(spend_by_account={account.pk: usd_to_units(usd)}, idempotency_prefix=key)


def _rearm(account):
    """What the ledger does when the balance is back above the threshold (e.g. a purchase meanwhile)."""
    Account.objects.filter(pk=account.pk).update(auto_topup_armed=True)


def _events(account) -> list[tuple[str, str]]:
    return list(AlertEvent.objects.filter(account=account).order_by("pk").values_list("event", "subject"))


@pytest.fixture
def slow_gateway(monkeypatch):
    """The demo gateway, counting charges and taking 0.3 s to answer each (a slow card network)."""
    charges: list[int] = []
    lock = threading.Lock()

    def charge_saved(self, *, payment, method):
        with lock:
            charges.append(payment.pk)
        time.sleep(0.3)
        return Charge(external_id=f"demo_ch_{payment.pk}")

    monkeypatch.setattr(DemoGateway, "charge_saved", charge_saved)
    return charges


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_triggers_of_one_top_up_charge_once(slow_gateway):
    account = AccountFactory(external_id="acct_topup_race")
    buy(account, "10")
    with_demo_card(account)
    _rule(account)
    _debit(account, "8", "d1")  # $2: under the $5 threshold

    def trigger(i: int):
        _rearm(account)  # every trigger finds the crossing armed: only the unique claim stands between them
        return auto_topup_run(account_id=account.pk)

    results = run_threads(10, trigger)
    assert not [r for r in results if isinstance(r, Exception)]
    assert len(slow_gateway) == 1
    assert sum(r is not None for r in results) == 1
    assert list(Payment.objects.filter(kind="auto_topup").values_list("status", "amount_units")) == [
        ("succeeded", usd_to_units("25"))]
    account.refresh_from_db()
    assert account.balance_units == usd_to_units("27")  # 2 + 25, once


@pytest.mark.django_db
def test_the_database_refuses_a_second_automatic_charge_in_flight(acct_a):
    Payment.objects.create(account=acct_a, kind="auto_topup", gateway="demo", amount_units=1, fee_units=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(account=acct_a, kind="auto_topup", gateway="demo", amount_units=1, fee_units=0)
    # A purchase, or a settled top-up, is not a charge in flight.
    Payment.objects.create(account=acct_a, kind="purchase", gateway="demo", amount_units=1, fee_units=0)
    Payment.objects.create(account=acct_a, kind="auto_topup", gateway="demo", amount_units=1, fee_units=0,
                           status="failed")


@pytest.mark.django_db
def test_the_monthly_cap_refuses_a_charge_and_the_page_says_so(client, owner, acct_a, clock):
    buy(acct_a, "10")
    with_demo_card(acct_a)
    _rule(acct_a, amount="25", cap="60")
    _debit(acct_a, "6", "d0")  # $4: under $5
    for n in range(3):  # $25, $25, then $50 + $25 would pass the $60 cap
        payment = auto_topup_run(account_id=acct_a.pk)
        assert (payment is not None) == (n < 2)
        _debit(acct_a, "25", f"d{n + 1}")  # $29 - $25: a new crossing
        clock.shift(3600)
    acct_a.refresh_from_db()
    assert acct_a.balance_units == usd_to_units("-21")  # 10 - 6 + 25 - 25 + 25 - 25 - 25
    assert acct_a.auto_topup_armed  # refused, not claimed: the next month's first debit tops up
    outlook = auto_topup_outlook(account=acct_a)
    assert outlook.used_units == usd_to_units("50")
    assert outlook.refusal == ("the monthly cap would be exceeded: $50.00 of the $60.00 used, "
                               "and a top-up adds $25.00")
    client.force_login(owner)
    page = text_of(client.get("/account/credits/"))
    assert ("Tops up $25.00 when the balance falls under $5.00; $50.00 of the $60.00 monthly cap used. "
            "A top-up now would be refused: the monthly cap would be exceeded: $50.00 of the $60.00 used, "
            "and a top-up adds $25.00.") in page


@pytest.mark.django_db
def test_the_minimum_interval_refuses_a_charge_and_says_until_when(client, owner, acct_a, clock, settings):
    settings.BILLING_AUTO_TOPUP_MIN_INTERVAL_MINUTES = 60
    buy(acct_a, "10")
    with_demo_card(acct_a)
    _rule(acct_a, amount="25", cap="200")
    clock.shift(32 * 60)  # NOW + 32 min (12:32 UTC at the default NOW)
    _debit(acct_a, "6", "d1")  # $4
    assert auto_topup_run(account_id=acct_a.pk).status == "succeeded"  # $29
    clock.shift(59 * 60)  # one minute short of the hour
    _debit(acct_a, "25", "d2")  # $4: a new crossing
    assert auto_topup_run(account_id=acct_a.pk) is None
    allowed = f"{NOW + timedelta(minutes=32 + 60):%H:%M}"  # 13:32 at the default NOW
    outlook = auto_topup_outlook(account=acct_a)
    assert outlook.refusal == f"next top-up allowed after {allowed} UTC"
    client.force_login(owner)
    assert ("Tops up $25.00 when the balance falls under $5.00; $25.00 of the $200.00 monthly cap used. "
            f"A top-up now would be refused: next top-up allowed after {allowed} UTC.") in text_of(
        client.get("/account/credits/"))
    clock.shift(60)  # the hour has passed
    assert auto_topup_run(account_id=acct_a.pk).status == "succeeded"
    acct_a.refresh_from_db()
    assert acct_a.balance_units == usd_to_units("29")  # 10 - 6 + 25 - 25 + 25


@pytest.mark.django_db
def test_the_cap_counts_the_accounts_month_in_its_zone(acct_a, clock):
    acct_a.time_zone = "America/New_York"
    acct_a.save(update_fields=["time_zone"])
    with_demo_card(acct_a)
    _rule(acct_a, amount="25", cap="25")
    _, start, _ = period_now(period=MONTH, now=NOW, zone=acct_a.zone)  # local midnight of the 1st, in UTC
    before = Payment.objects.create(account=acct_a, kind="auto_topup", gateway="demo", status="succeeded",
                                    amount_units=usd_to_units("25"), fee_units=0)
    Payment.objects.filter(pk=before.pk).update(created=start - timedelta(seconds=1))  # last month, locally
    assert auto_topup_outlook(account=acct_a).used_units == 0
    Payment.objects.filter(pk=before.pk).update(created=start)
    assert auto_topup_outlook(account=acct_a).used_units == usd_to_units("25")


@pytest.mark.django_db
def test_transient_failures_turn_it_off_after_three_in_a_row(acct_a, owner, clock, settings,
                                                            django_capture_on_commit_callbacks):
    settings.BILLING_AUTO_TOPUP_MAX_FAILURES = 3
    with_demo_card(acct_a, token="busy_pm")  # the demo gateway answers "rate limited"
    _rule(acct_a, user=owner)
    _debit(acct_a, "1", "d1")
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(1, 4):
            payment = auto_topup_run(account_id=acct_a.pk)
            assert payment.status == "failed"
            acct_a.refresh_from_db()
            assert (acct_a.auto_topup_failures, acct_a.auto_topup_enabled) == (n, n < 3)
            assert acct_a.auto_topup_armed == (n < 3)  # re-armed for the next debit after the interval
            clock.shift(3600)
    assert auto_topup_run(account_id=acct_a.pk) is None  # off: nothing more is charged
    assert [event for event, _ in _events(acct_a)] == ["topup.failed"] * 3 + ["topup.disabled"]
    change = AutoTopupChange.objects.filter(account=acct_a).latest("pk")
    assert change.actor == "system"
    assert change.reason == ("3 failed charges in a row; the last: the payment provider is busy (demo)")
    assert (change.old["enabled"], change.new["enabled"]) == (True, False)
    assert mail.outbox[-1].subject == "Auto top-up turned off on Alpha Labs"
    assert "3 failed charges in a row" in mail.outbox[-1].body


@pytest.mark.django_db
def test_a_success_resets_the_failures_in_a_row(acct_a, clock):
    method = with_demo_card(acct_a, token="busy_pm")
    _rule(acct_a)
    _debit(acct_a, "1", "d1")
    auto_topup_run(account_id=acct_a.pk)
    acct_a.refresh_from_db()
    assert acct_a.auto_topup_failures == 1
    method.token = "demo_pm_saved"
    method.save(update_fields=["token"])
    clock.shift(3600)
    assert auto_topup_run(account_id=acct_a.pk).status == "succeeded"
    acct_a.refresh_from_db()
    assert (acct_a.auto_topup_failures, acct_a.auto_topup_enabled) == (0, True)
    assert [event for event, _ in _events(acct_a)] == ["topup.failed", "topup.charged"]


@pytest.mark.django_db
def test_who_turned_it_on_and_off_is_kept_and_shown(client, owner, acct_a, admin_client):
    with_demo_card(acct_a)
    client.force_login(owner)
    client.post("/account/credits/auto-topup/", {"enabled": "on", "threshold": "5", "amount": "25",
                                                 "monthly_cap": "200"})
    client.post("/account/credits/auto-topup/", {"enabled": "on", "threshold": "5", "amount": "25",
                                                 "monthly_cap": "200"})  # nothing changed: nothing recorded
    client.post("/account/credits/auto-topup/", {"threshold": "5", "amount": "25", "monthly_cap": "200"})
    changes = list(AutoTopupChange.objects.filter(account=acct_a).order_by("pk"))
    assert [(c.actor, c.user_id, c.old, c.new) for c in changes] == [
        ("olivia", owner.pk, {"enabled": False, "threshold": "0.00", "amount": "0.00", "monthly_cap": "0.00"},
         {"enabled": True, "threshold": "5.00", "amount": "25.00", "monthly_cap": "200.00"}),
        ("olivia", owner.pk, {"enabled": True, "threshold": "5.00", "amount": "25.00", "monthly_cap": "200.00"},
         {"enabled": False, "threshold": "5.00", "amount": "25.00", "monthly_cap": "200.00"})]
    page = text_of(client.get("/account/credits/"))
    on, off = (f"{c.created:%Y-%m-%d %H:%M} UTC, olivia" for c in changes)
    assert f"{off}: turned it off (off)" in page
    assert f"{on}: turned it on ($25.00 under $5.00, at most $200.00 a month)" in page
    admin_page = text_of(admin_client.get(f"/admin/billing/account/{acct_a.pk}/change/"))
    assert "olivia" in admin_page
    assert "monthly_cap" in admin_page
    assert admin_client.get("/admin/billing/autotopupchange/").status_code == 200


@pytest.mark.django_db
def test_a_cap_under_one_top_up_is_refused(client, owner, acct_a):
    with_demo_card(acct_a)
    client.force_login(owner)
    response = client.post("/account/credits/auto-topup/", {"enabled": "on", "threshold": "5", "amount": "25",
                                                            "monthly_cap": "20"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        "Auto top-up not saved: The monthly cap must be at least the top-up amount."]
    acct_a.refresh_from_db()
    assert not acct_a.auto_topup_enabled


@pytest.mark.django_db
def test_another_accounts_audit_is_not_shown(client, acct_a, acct_b, owner_b):
    with_demo_card(acct_a)
    _rule(acct_a, user=make_user("olga", acct_a, "owner"))
    client.force_login(owner_b)
    assert "olga" not in text_of(client.get("/account/credits/"))
