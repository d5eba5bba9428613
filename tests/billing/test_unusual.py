"""Unusual spend on made-up histories, against hand-computed medians, MADs and thresholds: one query
finds the accounts whose last hour was far above their usual for that hour of the week."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.models import AccountHour
from billing.models import Account, AlertEvent, ApiKey
from billing.unusual import last_complete_hour, unusual_spend_check, unusual_spend_find
from core.money import usd_to_units
from tests.billing.factories import AccountFactory
from tests.marketplace.factories import ModelFactory, ProviderFactory

NOW = datetime(2026, 12, 7, 14, 10, tzinfo=UTC)  # a Monday, ten minutes into 14:00
HOUR = datetime(2026, 12, 7, 13, tzinfo=UTC)  # the last complete hour


def usd(amount: str) -> int:
    return usd_to_units(amount)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def catalog(db):
    provider = ProviderFactory(slug="prov")
    alpha = ModelFactory(author__slug="lab", author__name="Lab", route_name="alpha", name="Alpha")
    beta = ModelFactory(author=alpha.author, route_name="beta", name="Beta")
    return provider, alpha, beta


def history(account: Account, weekly: list[str | None], catalog, *, hour: datetime = HOUR) -> ApiKey:
    """Spend of `account` in `hour` minus 1..8 weeks (None: no row that week), on model alpha by key k1."""
    provider, alpha, _ = catalog
    key, _ = ApiKey.objects.get_or_create(account=account, external_id="k1")
    AccountHour.objects.bulk_create([
        AccountHour(account=account, hour=hour - timedelta(weeks=i + 1), model=alpha, provider=provider,
                    api_key_id=key.pk, requests=1, spend_units=usd(amount))
        for i, amount in enumerate(weekly) if amount is not None])
    return key


def spend_now(account: Account, amount: str, catalog, *, model=None, key: str = "k1") -> None:
    provider, alpha, _ = catalog
    key_id = ApiKey.objects.get_or_create(account=account, external_id=key)[0].pk
    AccountHour.objects.create(account=account, hour=HOUR, model=model or alpha, provider=provider,
                               api_key_id=key_id, requests=1, spend_units=usd(amount))


# Weeks 1..8 before: $10, $12, $9, $11, $10, none, $13, $10.
# Sorted: 0, 9, 10, 10, 10, 11, 12, 13: the usual (median) is (10 + 10) / 2 = $10.
# Deviations from $10: 0, 2, 1, 1, 0, 10, 3, 0; sorted 0, 0, 0, 1, 1, 2, 3, 10: the MAD is (1 + 1) / 2 = $1.
# With k = 5 the threshold is 10 + 5 x 1 = $15; the minimum $10 asks for at least $20.
WEEKLY = ["10", "12", "9", "11", "10", None, "13", "10"]


@pytest.mark.django_db
def test_an_hour_far_above_its_usual_alerts_with_the_figures_and_what_made_the_difference(frozen, catalog):
    _, alpha, beta = catalog
    far = AccountFactory(external_id="far", name="Far")
    history(far, WEEKLY, catalog)
    spend_now(far, "11", catalog)  # alpha by k1: $1 over its own usual of $10
    spend_now(far, "20", catalog, model=beta, key="k2")  # beta by k2: new, $20 over a usual of 0
    near = AccountFactory(external_id="near")  # over the threshold ($15) but not $10 over the usual
    history(near, WEEKLY, catalog)
    spend_now(near, "19.99", catalog)

    assert last_complete_hour() == HOUR
    with CaptureQueriesContext(connection) as queries:
        [found] = unusual_spend_find(hour=HOUR)
    assert len(queries) == 4  # all the accounts; the few found's models and keys; their names (models, keys)
    assert (found.account_id, found.actual_units, found.usual_units, found.mad_units, found.weeks_seen) == (
        far.pk, usd("31"), usd("10"), usd("1"), 7)
    assert (found.k, found.threshold_units, found.minimum_units) == (Decimal("5.0"), usd("15"), usd("10"))

    [event] = unusual_spend_check(hour=HOUR)
    assert unusual_spend_check(hour=HOUR) == []  # once per account and hour
    assert event.subject == "Unusual spend: $31.00 in an hour (usually $10.00)"
    assert event.text == (
        "Spend from 2026-12-07 13:00–14:00 UTC was $31.00; the usual for this hour of the week is $10.00 (the median"
        " of the last 8 weeks; an alert above $15.00, the usual + 5.0 × the median absolute deviation of $1.00,"
        " and at least $10.00 over the usual).\n\nWhat made the difference:\n"
        "- model lab/beta: $20.00, usually $0.00 (+$20.00)\n"
        "- model lab/alpha: $11.00, usually $10.00 (+$1.00)\n"
        "- key k2: $20.00, usually $0.00 (+$20.00)\n"
        "- key k1: $11.00, usually $10.00 (+$1.00)")
    assert event.data["usual_usd"] == "10.0000000000"
    assert event.data["threshold_usd"] == "15.0000000000"
    assert event.data["contributors"][0] == {"kind": "model", "name": "lab/beta", "actual_usd": "20.0000000000",
                                             "usual_usd": "0.0000000000", "excess_usd": "20.0000000000"}
    assert event.dedupe_key == "spend.unusual:2026-12-07T13:00:00Z"


@pytest.mark.django_db
def test_an_hour_of_the_week_without_history_never_alerts(frozen, catalog):
    new = AccountFactory(external_id="new")  # spends every week, but never at 13:00 on Mondays
    history(new, ["10"] * 8, catalog, hour=HOUR - timedelta(hours=1))
    spend_now(new, "1000", catalog)
    thin = AccountFactory(external_id="thin")  # spend in 3 of the 8 weeks only: no usual
    history(thin, ["10", None, "10", None, "10", None, None, None], catalog)
    spend_now(thin, "1000", catalog)
    assert unusual_spend_find(hour=HOUR) == []
    assert not AlertEvent.objects.exists()


@pytest.mark.django_db
def test_k_and_the_minimum_are_the_accounts(frozen, catalog):
    # $10 every week: the usual is $10 and the MAD 0, so the threshold is $10 whatever k.
    steady = AccountFactory(external_id="steady", unusual_spend_k=Decimal("2.0"), unusual_spend_min_units=usd("1"))
    history(steady, ["10"] * 8, catalog)
    spend_now(steady, "11.50", catalog)
    default = AccountFactory(external_id="default")  # the same, with the default minimum of $10: no alert
    history(default, ["10"] * 8, catalog)
    spend_now(default, "11.50", catalog)
    # Four weeks at $10 and four without spend: the usual is (0 + 10) / 2 = $5, the MAD 5; k 1 → over $10.
    half = AccountFactory(external_id="half", unusual_spend_k=Decimal("1.0"), unusual_spend_min_units=usd("5"))
    history(half, ["10", None, "10", None, "10", None, "10", None], catalog)
    spend_now(half, "10.01", catalog)
    found = {u.account_id: u for u in unusual_spend_find(hour=HOUR)}
    assert sorted(found) == [steady.pk, half.pk]
    assert (found[steady.pk].usual_units, found[steady.pk].mad_units, found[steady.pk].threshold_units) == (
        usd("10"), 0, usd("10"))
    assert (found[half.pk].usual_units, found[half.pk].mad_units, found[half.pk].threshold_units) == (
        usd("5"), usd("5"), usd("10"))


@pytest.mark.django_db
def test_the_hourly_command_runs_the_last_complete_hour(frozen, catalog):
    far = AccountFactory(external_id="far")
    history(far, WEEKLY, catalog)
    spend_now(far, "40", catalog)
    call_command("alerts_hourly")
    call_command("alerts_hourly", "--hour", "2026-12-07T13:30:00Z")
    assert list(AlertEvent.objects.values_list("account_id", "event")) == [(far.pk, "spend.unusual")]
