"""The one door for money: ledger_post, ledger_verify, staff adjustments through the ledger, exact amounts."""
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.ledger import ledger_adjust, ledger_debit_usage, ledger_post
from billing.models import Account, LedgerEntry
from billing.purchases import fee_for
from core.money import units_to_usd, usd_to_units
from core.numbers import money_exact
from tests.billing.factories import AccountFactory

from .conftest import buy

pytestmark = pytest.mark.django_db


def test_ledger_verify_passes_on_honest_books_and_fails_on_a_tampered_balance(acct_a, acct_b, capsys):
    buy(acct_a, "20")
    ledger_debit_usage(spend_by_account={acct_a.pk: usd_to_units("1.25"), acct_b.pk: usd_to_units("3")},
                       idempotency_prefix="ingest:batch:1:chunk:0")
    call_command("ledger_verify")
    assert "ledger ok: 2 accounts" in capsys.readouterr().out

    Account.objects.filter(pk=acct_a.pk).update(balance_units=F("balance_units") + 1)
    with pytest.raises(CommandError, match="2 difference"):
        call_command("ledger_verify")
    err = capsys.readouterr().err
    assert "acct_a" in err
    assert "acct_b" not in err
    assert "difference 0.0000000001 USD" in err


def test_ledger_verify_sees_a_tampered_entry(acct_a):
    buy(acct_a, "10")
    LedgerEntry.objects.filter(account=acct_a).update(amount_units=F("amount_units") - usd_to_units("0.01"))
    with pytest.raises(CommandError):
        call_command("ledger_verify")


def test_ledger_post_takes_integer_units_only(acct_a):
    with pytest.raises(TypeError):
        ledger_post(account_id=acct_a.pk, kind="grant", amount_units=Decimal("1.5"), idempotency_key="x")
    with pytest.raises(TypeError):
        ledger_post(account_id=acct_a.pk, kind="grant", amount_units=1.5, idempotency_key="y")


def test_the_same_idempotency_key_posts_once(acct_a):
    for _ in range(3):
        ledger_post(account_id=acct_a.pk, kind="grant", amount_units=usd_to_units("2"), idempotency_key="same")
    acct_a.refresh_from_db()
    assert acct_a.balance_units == usd_to_units("2")
    assert acct_a.ledger.count() == 1


def test_an_adjustment_needs_a_reason_and_an_actor(acct_a):
    with pytest.raises(ValueError, match="reason"):
        ledger_adjust(account_id=acct_a.pk, amount_units=5, reason=" ", actor="staff", idempotency_key="a")
    with pytest.raises(ValueError, match="actor"):
        ledger_adjust(account_id=acct_a.pk, amount_units=5, reason="why", actor="", idempotency_key="a")
    assert not acct_a.ledger.exists()


@pytest.fixture
def staff_client(client):
    staff = get_user_model().objects.create_superuser("sam", "sam@example.com", "pw-sam-123")
    client.force_login(staff)
    return client


def test_staff_adjust_a_balance_in_the_admin_through_the_ledger(staff_client, acct_a):
    url = f"/admin/billing/account/{acct_a.pk}/adjust/"
    assert "Adjust balance" in staff_client.get(f"/admin/billing/account/{acct_a.pk}/change/").content.decode()
    page = staff_client.get(url)
    assert page.status_code == 200
    token = page.context["form"].initial["token"]

    refused = staff_client.post(url, {"amount": "-5", "reason": "  ", "token": token})
    assert refused.status_code == 200
    assert not acct_a.ledger.exists()

    for _ in range(2):  # a double submit posts once
        assert staff_client.post(url, {"amount": "-5.25", "reason": "refund by bank transfer", "token": token}
                                 ).status_code == 302
    entry = acct_a.ledger.get()
    assert (entry.kind, entry.amount_units, entry.actor, entry.memo) == (
        "adjustment", -usd_to_units("5.25"), "sam", "refund by bank transfer")
    acct_a.refresh_from_db()
    assert acct_a.balance_units == -usd_to_units("5.25")


def test_ledger_entries_are_read_only_in_the_admin(staff_client, acct_a):
    buy(acct_a, "10")
    entry = acct_a.ledger.get()
    assert staff_client.get("/admin/billing/ledgerentry/add/").status_code == 403
    response = staff_client.post(f"/admin/billing/ledgerentry/{entry.pk}/change/", {"amount_units": "1"})
    assert response.status_code == 403
    assert staff_client.post(f"/admin/billing/ledgerentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert LedgerEntry.objects.get(pk=entry.pk).amount_units == usd_to_units("10")
    # The balance is not a form field of the account either.
    form = staff_client.get(f"/admin/billing/account/{acct_a.pk}/change/").context["adminform"].form
    assert "balance_units" not in form.fields








@given(st.decimals(min_value=Decimal("-1000000"), max_value=Decimal("1000000"), places=10, allow_nan=False))
def test_units_round_trip_exactly(amount):
    assert units_to_usd(usd_to_units(amount)) == amount
    assert usd_to_units(str(amount)) == usd_to_units(amount)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amounts=st.lists(st.decimals(min_value=Decimal("5"), max_value=Decimal("10000"), places=2), min_size=1,
                        max_size=6),
       usage=st.lists(st.decimals(min_value=Decimal("0"), max_value=Decimal("50"), places=10), max_size=6))
def test_purchases_and_usage_add_up_without_a_cent_of_drift(acct_a, amounts, usage):
    account = AccountFactory(external_id=f"acct_{Account.objects.count()}")
    for amount in amounts:
        buy(account, str(amount))
    for i, spend in enumerate(usage):
        ledger_debit_usage(spend_by_account={account.pk: usd_to_units(spend)},
                           idempotency_prefix=f"prop:{account.pk}:{i}")
    account.refresh_from_db()
    expected = sum(amounts, Decimal(0)) - sum(usage, Decimal(0))
    assert account.balance == expected
    assert account.balance_units == account.ledger.aggregate(s=Sum("amount_units"))["s"]
    # the exact amount to 1e-10 USD, trailing zeros dropped past the cents
    exact = re.sub(r"(\.\d\d\d*?)0+$", r"\1", f"{abs(expected):,.10f}")
    assert money_exact(account.balance_units) == f"{'-' if expected < 0 else ''}${exact}"
    fees = sum((fee_for(a) for a in amounts), Decimal(0))
    charged = account.payments.aggregate(s=Sum(F("amount_units") + F("fee_units")))["s"]
    assert units_to_usd(charged) == sum(amounts, Decimal(0)) + fees
