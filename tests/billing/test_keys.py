"""Per-key limits, which are hard key budgets: usage in the current interval of the account's zone, the page,
the API, alerts."""
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from analytics import ingest
from billing.accounts import account_token_create, api_key_limit_set
from billing.models import ApiKey, Budget
from billing.periods import period_now
from billing.thresholds import budget_thresholds_check
from core.money import usd_to_units
from tests.analytics.conftest import record, run_batch, write_jsonl
from tests.billing.factories import ApiKeyFactory

from .conftest import buy, iso, text_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]  # intervals and months of today


@pytest.fixture
def key_traffic(tmp_path, acct_a, acct_b):
    """Key k1 of acct_a: $0.015 + $0.03 now, $0.5 forty days ago, a BYOK request; acct_b's kb: $9.99."""
    ingest.pricebook_reset()
    now = datetime.now(tz=UTC) - timedelta(seconds=5)
    records = [
        record(id="g1", created_at=iso(now), total_cost=0.015, account="acct_a", api_key="k1"),
        record(id="g2", created_at=iso(now), total_cost=0.03, account="acct_a", api_key="k1"),
        record(id="g3", created_at=iso(now), total_cost=0.2, is_byok=True, account="acct_a", api_key="k1"),
        record(id="g4", created_at=iso(now - timedelta(days=40)), total_cost=0.5, account="acct_a", api_key="k1"),
        record(id="g5", created_at=iso(now), total_cost=0.001, account="acct_a", api_key="k2"),
        record(id="b1", created_at=iso(now), total_cost=9.99, account="acct_b", api_key="kb"),
    ]
    assert run_batch(write_jsonl(tmp_path / "keys.jsonl", records)).accepted == 6
    return {k.external_id: k for k in ApiKey.objects.all()}


def limit(key: ApiKey, amount: str, interval: str) -> None:
    api_key_limit_set(account=key.account, key_id=key.pk, limit_units=usd_to_units(amount), interval=interval)


def test_members_set_a_limit_and_read_usage_and_remaining(client, member, key_traffic):
    k1 = key_traffic["k1"]
    client.force_login(member)
    assert client.post("/account/keys/", {"key": k1.pk, "limit": "0.05", "interval": "daily"}).status_code == 302
    budget = Budget.objects.get(api_key=k1)
    assert (budget.scope, budget.amount_units, budget.period, budget.mode) == ("key", usd_to_units("0.05"), "day", "hard")
    page = text_of(client.get("/account/keys/"))
    # $0.045 spent today (BYOK excluded, the old request outside the interval): 90%, $0.005 left.
    assert "k1 " + str(k1.pk) + " $0.05 daily $0.045 (90%) $0.005 " in page
    client.post("/account/keys/", {"key": k1.pk, "limit": "0.05", "interval": "never"})
    assert "$0.545 (1090%) $0.00 · limit reached" in text_of(client.get("/account/keys/"))


def test_viewers_read_limits_only(client, viewer, key_traffic):
    client.force_login(viewer)
    assert "owners and members set them" in text_of(client.get("/account/keys/"))
    assert client.post("/account/keys/", {"key": key_traffic["k1"].pk, "limit": "1", "interval": "daily"}
                       ).status_code == 403


def test_another_accounts_key_answers_404(client, owner, key_traffic):
    kb = key_traffic["kb"]
    client.force_login(owner)
    assert client.post("/account/keys/", {"key": kb.pk, "limit": "1", "interval": "daily"}).status_code == 404
    assert not Budget.objects.filter(api_key=kb).exists()
    assert "kb" not in text_of(client.get("/account/keys/"))


def test_the_key_api_answers_limit_usage_and_remaining(client, key_traffic, acct_a, owner):
    k1, kb = key_traffic["k1"], key_traffic["kb"]
    limit(k1, "0.05", "monthly")
    _, secret = account_token_create(account=acct_a, name="gateway", created_by=owner)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    body = client.get(f"/api/v1/keys/{k1.pk}", **auth).json()
    _, start, reset = period_now(period="month", now=datetime.now(tz=UTC), zone=UTC)
    assert body == {"id": k1.pk, "key": "k1", "name": "", "limit_usd": "0.0500000000", "interval": "monthly",
                    "usage_usd": "0.0450000000", "remaining_usd": "0.0050000000", "exhausted": False,
                    "interval_start": start.isoformat().replace("+00:00", "Z"),
                    "resets_at": reset.isoformat().replace("+00:00", "Z"), "interval_time_zone": "UTC"}
    assert client.get(f"/api/v1/keys/{kb.pk}", **auth).status_code == 404
    assert client.get("/api/v1/keys/999999", **auth).status_code == 404
    assert client.get(f"/api/v1/keys/{k1.pk}").status_code in (401, 403)
    listed = client.get("/api/v1/keys", **auth).json()
    assert sorted(k["key"] for k in listed) == ["k1", "k2"]
    no_limit = next(k for k in listed if k["key"] == "k2")
    assert (no_limit["limit_usd"], no_limit["remaining_usd"]) == (None, None)


def test_key_alerts_at_80_and_100_percent_once_per_crossing(key_traffic, owner, django_capture_on_commit_callbacks):
    k1 = key_traffic["k1"]
    limit(k1, "0.05", "daily")

    def check(now=None) -> list[tuple[str, int]]:
        return [(e.event, e.data["level"]) for e in budget_thresholds_check(account_ids=[k1.account_id], now=now)]

    with django_capture_on_commit_callbacks(execute=True):
        assert check() == [("key.threshold", 80)]
        assert check() == []
    assert len(mail.outbox) == 1
    assert "at 80% of its daily budget" in mail.outbox[0].subject

    Budget.objects.filter(api_key=k1).update(amount_units=usd_to_units("0.045"))
    with django_capture_on_commit_callbacks(execute=True):
        assert check() == [("budget.exhausted", 100)]
        assert check() == []
    assert mail.outbox[1].subject == "API key k1 reached its limit"
    assert "The gateway refuses its requests until the period resets." in mail.outbox[1].body

    tomorrow = datetime.now(tz=UTC) + timedelta(days=1)  # a new interval: nothing spent yet, no alert
    assert check(now=tomorrow) == []


def test_the_keys_page_reads_usage_in_a_bounded_number_of_queries(client, owner, acct_a, key_traffic,
                                                                 django_assert_max_num_queries):
    for i in range(30):
        limit(ApiKeyFactory(account=acct_a, external_id=f"extra_{i}"), "1", ("daily", "weekly", "monthly", "never")[i % 4])
    client.force_login(owner)
    with django_assert_max_num_queries(12):
        response = client.get("/account/keys/")
    assert len(response.context["limits"]) == 32


def test_the_key_api_follows_the_accounts_zone_and_counts_holds(client, key_traffic, acct_a, owner):
    from billing.budgets import spend_reserve

    acct_a.time_zone = "America/New_York"
    acct_a.save()
    k1 = key_traffic["k1"]
    limit(k1, "1", "daily")
    buy(acct_a, "10")
    assert spend_reserve(reservation_id="held", key=ApiKey.objects.select_related("account").get(pk=k1.pk),
                         amount_units=usd_to_units("0.5"))[0] == 201
    _, secret = account_token_create(account=acct_a, name="gateway", created_by=owner)
    body = client.get(f"/api/v1/keys/{k1.pk}", HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    from zoneinfo import ZoneInfo
    _, start, reset = period_now(period="day", now=datetime.now(tz=UTC), zone=ZoneInfo("America/New_York"))
    assert (body["interval_time_zone"], body["usage_usd"], body["remaining_usd"]) == (
        "America/New_York", "0.5450000000", "0.4550000000")  # $0.045 spent today + $0.50 held
    assert (body["interval_start"], body["resets_at"]) == (start.isoformat().replace("+00:00", "Z"),
                                                           reset.isoformat().replace("+00:00", "Z"))
