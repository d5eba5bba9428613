"""The month-end forecast and runway read from the daily rollup (billing.selectors.spend_forecast), on the
credits page, the account overview and the credits API, against figures worked out by hand."""
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from analytics.models import AccountDay
from billing.accounts import account_token_create
from billing.ledger import ledger_adjust
from billing.models import Account, Membership
from billing.selectors import spend_forecast
from core.money import usd_to_units as usd
from tests.marketplace.factories import ModelFactory, ProviderFactory

from .conftest import make_user, text_of

pytestmark = pytest.mark.django_db
NOON_15TH = datetime(2027, 3, 15, 12, tzinfo=UTC)  # 16.5 days left in March


def _spend(account: Account, by_day: dict[date, str]) -> None:
    model = ModelFactory(author__slug=f"lab-{account.pk}", author__name="Lab", route_name=f"m{account.pk}", name="M")
    provider = ProviderFactory(slug=f"prov-{account.pk}", name=f"Prov {account.pk}")
    AccountDay.objects.bulk_create([AccountDay(account=account, day=day, model=model, provider=provider, requests=1,
                                               spend_units=usd(amount)) for day, amount in by_day.items()])


@pytest.fixture
def alpha(clock, acct_a, acct_b) -> Account:
    """Alpha: since January, $0.50 and $1.50 on alternate days of March 1-14, $0.50 today, $100 on
    February 28th (neither this month nor in the last 14 days), a $20 balance and auto top-up of $25
    under $5. Beta spends $50 a day on the same days: none of it is Alpha's."""
    clock.move_to(NOON_15TH)
    Account.objects.filter(pk__in=[acct_a.pk, acct_b.pk]).update(created=datetime(2027, 1, 1, tzinfo=UTC))
    march = {date(2027, 3, d): ("0.5" if d % 2 else "1.5") for d in range(1, 15)}
    _spend(acct_a, {date(2027, 2, 28): "100", **march, date(2027, 3, 15): "0.5"})
    _spend(acct_b, {day: "50" for day in march})
    ledger_adjust(account_id=acct_a.pk, amount_units=usd(20), reason="test credit", actor="test",
                  idempotency_key="test-credit")
    Account.objects.filter(pk=acct_a.pk).update(auto_topup_enabled=True, auto_topup_threshold_units=usd(5),
                                                auto_topup_amount_units=usd(25))
    return Account.objects.get(pk=acct_a.pk)


def test_the_forecast_reads_the_accounts_own_last_14_days(alpha):
    shown = spend_forecast(account=alpha)
    p = shown.projection
    # Mean $1, deviation $0.50; 14.50 + 1 x 16.5 = 31, +/- 0.5 x sqrt(16.5) = $2.0310096011 (floor).
    assert (p.history_days, p.mean_daily_units, p.month_to_date_units) == (14, usd(1), usd("14.5"))
    assert p.month_end_units == usd(31)
    assert (p.low_units, p.high_units) == (usd(31) - 20_310_096_011, usd(31) + 20_310_096_011)
    assert str(p.runway_days) == "20.0"
    assert str(p.topup_in_days) == "15.0"


def test_the_credits_page_and_the_overview_say_it_in_words(client, alpha, owner):
    client.force_login(owner)
    for url in ("/account/credits/", "/account/"):
        response = client.get(url)
        body = response.content.decode()
        # A shortened figure is a <span> with the exact amount on hover: read as it runs on with its punctuation.
        page = text_of(response)
        read = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"</?span\b[^>]*>", "", body)))
        assert ("Month-end spend: about $31.00 (between $28.97 and $33.03); $14.50 spent this month so far, "
                "$1.00 a day on average.") in read, url
        # the band's ends exactly: $31 -/+ $2.0310096011
        assert '<span class="exact" title="$28.9689903989">$28.97</span>' in body, url
        assert '<span class="exact" title="$33.0310096011">$33.03</span>' in body, url
        assert "Credit left: $20.00, about 20.0 days at this burn." in page, url
        assert ("Auto top-up of $25.00 when the balance falls below $5.00, in about 15.0 days at this burn."
                in page), url
        assert "the mean daily spend of the last 14 complete days" in page
        assert "From 14 complete days" in page


def test_an_account_created_three_days_ago_projects_from_its_three_days(client, clock, acct_a, owner):
    clock.move_to(NOON_15TH)
    Account.objects.filter(pk=acct_a.pk).update(created=datetime(2027, 3, 12, 9, tzinfo=UTC))
    _spend(acct_a, {date(2027, 3, 12): "1", date(2027, 3, 13): "2", date(2027, 3, 14): "3", date(2027, 3, 15): "0.5"})
    client.force_login(owner)
    page = text_of(client.get("/account/credits/"))
    # Mean 2 over 3 days: 6.50 + 2 x 16.5 = 39.50. No balance: 0 days; auto top-up is off.
    assert "Month-end spend: about $39.50" in page
    assert "From 3 complete days" in page
    assert "Credit left: $0.00, about 0.0 days at this burn." in page
    assert "Auto top-up is off." in page


def test_no_recent_spend_and_an_overdrawn_balance(client, clock, acct_a, owner):
    clock.move_to(NOON_15TH)
    client.force_login(owner)
    assert "Credit left: $0.00, no recent spend." in text_of(client.get("/account/credits/"))
    ledger_adjust(account_id=acct_a.pk, amount_units=usd(-1), reason="test debit", actor="test",
                  idempotency_key="test-debit")
    assert "Credit left: overdrawn (-$1.00)." in text_of(client.get("/account/credits/"))


def test_on_the_first_of_a_month_the_history_is_last_months(clock, acct_a):
    clock.move_to(datetime(2027, 4, 1, 6, tzinfo=UTC))  # 29.75 days of April left
    Account.objects.filter(pk=acct_a.pk).update(created=datetime(2027, 1, 1, tzinfo=UTC))
    _spend(acct_a, {**{date(2027, 3, 31) - timedelta(days=n): "4" for n in range(20)}, date(2027, 4, 1): "1"})
    p = spend_forecast(account=Account.objects.get(pk=acct_a.pk)).projection
    assert (p.history_days, p.month_to_date_units, p.month_end_units) == (14, usd(1), usd(120))  # 1 + 4 x 29.75


def test_the_credits_api_answers_the_forecast_exactly(client, alpha, owner):
    _, secret = account_token_create(account=alpha, name="ci", created_by=owner)
    forecast = client.get("/api/v1/credits", HTTP_AUTHORIZATION=f"Bearer {secret}").json()["forecast"]
    assert forecast["month_end_spend_usd"] == "31.0000000000"
    assert (forecast["low_usd"], forecast["high_usd"]) == ("28.9689903989", "33.0310096011")
    assert (forecast["runway"], forecast["runway_days"], forecast["auto_topup_in_days"]) == ("days", "20.0", "15.0")
    assert forecast["history_days"] == 14
    assert "14 complete days" in forecast["method"]


def test_another_accounts_spend_never_enters_the_forecast(client, alpha, acct_b):
    beta = make_user("bob", acct_b, Membership.Role.OWNER)
    client.force_login(beta)
    page = text_of(client.get("/account/credits/"))
    # Beta: $50 a day on 14 days, nothing today: 700 + 50 x 16.5 = 1,525.
    assert "Month-end spend: about $1,525.00" in page
    assert "$31.00" not in page


def test_an_auto_top_up_already_due_and_one_with_no_burn(client, alpha, owner):
    client.force_login(owner)
    Account.objects.filter(pk=alpha.pk).update(auto_topup_threshold_units=usd(50))  # the $20 balance is under it
    page = text_of(client.get("/account/credits/"))
    assert "Auto top-up of $25.00 when the balance falls below $50.00, due with the next usage." in page
    AccountDay.objects.filter(account=alpha).delete()
    page = text_of(client.get("/account/credits/"))
    assert "Auto top-up of $25.00 when the balance falls below $50.00, not expected at this burn (no recent spend)." in page
