"""The account's own time zone: days, weeks and months a person in that zone would count.

America/New_York across the end of daylight saving time (Sunday 2026-11-01: 02:00 EDT goes back to
01:00 EST, at 06:00 UTC, so that local day has 25 hours), with costs in powers of two so that every
sum names its requests:

    n1  2026-10-31 03:30Z  Fri Oct 30 23:30 EDT   $0.001
    n2  2026-11-01 03:59Z  Sat Oct 31 23:59 EDT   $0.002
    n3  2026-11-01 04:00Z  Sun Nov  1 00:00 EDT   $0.004
    n4  2026-11-01 05:30Z  Sun Nov  1 01:30 EDT   $0.008
    n5  2026-11-01 06:30Z  Sun Nov  1 01:30 EST   $0.016  (the second 01:30)
    n6  2026-11-02 04:30Z  Sun Nov  1 23:30 EST   $0.032
    n7  2026-11-02 05:00Z  Mon Nov  2 00:00 EST   $0.064

So, in New York: Oct 30 $0.001, Oct 31 $0.002, Nov 1 $0.060, Nov 2 $0.064; October $0.003 and
November $0.124 (in UTC: Oct 31 $0.001, Nov 1 $0.030, Nov 2 $0.096; October $0.001).

Asia/Kolkata (+05:30): the hourly rollups cannot split 18:00-19:00Z at 18:30Z (local midnight), so
the account's days run 00:30 to 00:30, and the pages say so; the generation log reads raw rows and
keeps exact local days. Pacific/Auckland (+13:00 in November): months turn at 11:00Z the day before.
"""
import csv
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from analytics.usage import params
from analytics.usage.overview import forecast_days, usage_overview
from billing import selectors, statements
from billing.models import Account, Membership
from core.timerange import zone_named
from tests.analytics.conftest import record, run_batch, write_jsonl
from tests.billing.factories import member_of

pytestmark = pytest.mark.django_db

NEW_YORK = [("n1", "2026-10-31T03:30:00Z", 0.001), ("n2", "2026-11-01T03:59:00Z", 0.002),
            ("n3", "2026-11-01T04:00:00Z", 0.004), ("n4", "2026-11-01T05:30:00Z", 0.008),
            ("n5", "2026-11-01T06:30:00Z", 0.016), ("n6", "2026-11-02T04:30:00Z", 0.032),
            ("n7", "2026-11-02T05:00:00Z", 0.064)]
KOLKATA = [("k1", "2026-11-04T18:10:00Z", 0.001),  # Nov 4 23:40 IST
           ("k2", "2026-11-04T18:40:00Z", 0.002),  # Nov 5 00:10 IST, in the 18:00Z hour: Nov 4 here
           ("k3", "2026-11-04T19:00:00Z", 0.004),  # Nov 5 00:30 IST
           ("k4", "2026-11-05T18:29:00Z", 0.008)]  # Nov 5 23:59 IST
AUCKLAND = [("z1", "2026-10-31T10:59:00Z", 0.001),  # Oct 31 23:59 NZDT
            ("z2", "2026-10-31T11:00:00Z", 0.002),  # Nov 1 00:00 NZDT
            ("z3", "2026-11-30T10:30:00Z", 0.004),  # Nov 30 23:30 NZDT
            ("z4", "2026-11-30T11:30:00Z", 0.008)]  # Dec 1 00:30 NZDT


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _owner(tmp_path, rows, zone: str, account: str = "acct_z"):
    records = [record(id=gid, created_at=created, total_cost=cost, account=account, model="lab/alpha",
                      provider_name="ProvOne", api_key="k1") for gid, created, cost in rows]
    # Another account's request in the same hours: it never shows on this account's pages.
    records.append(record(id=f"other-{account}", created_at=rows[0][1], total_cost=9.99, account="acct_other",
                          model="lab/alpha", provider_name="ProvOne", api_key="kx"))
    assert run_batch(write_jsonl(tmp_path / f"{account}.jsonl", records)).accepted == len(records)
    owner = member_of(Account.objects.get(external_id=account), Membership.Role.OWNER, f"owner-{account}")
    Account.objects.filter(external_id=account).update(time_zone=zone)
    return owner


def _series(client, **query) -> dict:
    response = client.get("/account/activity/", {"period": "custom", **query})
    assert response.status_code == 200
    activity = response.context["activity"]
    return dict(zip(activity.series.periods, next(iter(activity.series.series.values())), strict=True))


def _csv(client, url: str, **query) -> list[dict]:
    response = client.get(url, query)
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_a_period_is_local_days_and_compares_with_as_many_local_days_across_dst():
    zone = zone_named("America/New_York")
    period = params.period_parse("7d", now=datetime(2026, 11, 3, 12, tzinfo=UTC), zone=zone)
    assert (period.start, period.end) == (datetime(2026, 10, 28, 4, tzinfo=UTC), datetime(2026, 11, 4, 5, tzinfo=UTC))
    assert (period.first_day, period.last_day, period.days) == (date(2026, 10, 28), date(2026, 11, 3), 7)
    assert not period.daily_rollup  # 7 days and one hour of UTC: the hourly rollup answers
    before = period.previous
    assert (before.start, before.end) == (datetime(2026, 10, 21, 4, tzinfo=UTC), period.start)
    assert period.day_starts_at is None
    kolkata = params.period_parse("custom", start="2026-11-05", end="2026-11-05", zone=zone_named("Asia/Kolkata"))
    assert (kolkata.start, kolkata.day_starts_at) == (datetime(2026, 11, 4, 18, 30, tzinfo=UTC), "00:30")
    assert params.period_parse("7d", now=datetime(2026, 11, 3, 12, tzinfo=UTC)).daily_rollup  # UTC: AccountDay


def test_new_york_days_months_and_the_repeated_hour(client, tmp_path):
    client.force_login(_owner(tmp_path, NEW_YORK, "America/New_York"))
    days = _series(client, start="2026-10-30", end="2026-11-02", granularity="day")
    assert days == {"2026-10-30": Decimal("0.001"), "2026-10-31": Decimal("0.002"), "2026-11-01": Decimal("0.060"),
                    "2026-11-02": Decimal("0.064")}
    months = _series(client, start="2026-10-30", end="2026-11-02", granularity="month")
    assert months == {"2026-10": Decimal("0.003"), "2026-11": Decimal("0.124")}
    hours = _series(client, start="2026-11-01", end="2026-11-01", granularity="hour")
    assert len(hours) == 25  # the day the clocks go back
    assert (hours["2026-11-01 00:00"], hours["2026-11-01 01:00"], hours["2026-11-01 01:00 EST"],
            hours["2026-11-01 23:00"]) == (Decimal("0.004"), Decimal("0.008"), Decimal("0.016"), Decimal("0.032"))
    page = _text(client.get("/account/activity/", {"period": "custom", "start": "2026-10-30", "end": "2026-11-02"}))
    assert "Times in America/New_York (UTC-05:00)" in page
    assert "a day here runs from" not in page


def test_new_york_usage_csv_api_statement_report_and_log(client, tmp_path):
    owner = _owner(tmp_path, NEW_YORK, "America/New_York")
    client.force_login(owner)
    rows = _csv(client, "/account/reports/usage.csv", start="2026-10-30", end="2026-11-02", group_by="day")
    assert [(r["date"], r["requests"], r["spend_usd"]) for r in rows] == [
        ("2026-10-30", "1", "0.0010000000"), ("2026-10-31", "1", "0.0020000000"),
        ("2026-11-01", "4", "0.0600000000"), ("2026-11-02", "1", "0.0640000000")]
    rows = _csv(client, "/account/reports/usage.csv", start="2026-10-01", end="2026-11-30", group_by="month")
    assert [(r["month"], r["spend_usd"]) for r in rows] == [("2026-10", "0.0030000000"), ("2026-11", "0.1240000000")]

    from billing.accounts import account_token_create
    _, secret = account_token_create(account=Account.objects.get(external_id="acct_z"), name="t", created_by=owner)
    body = client.get("/api/v1/account/usage", {"start": "2026-11-01", "end": "2026-11-01", "group_by": "day"},
                      HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    assert (body["time_zone"], body["day_starts_at"]) == ("America/New_York", None)
    assert [(r["date"], r["requests"], r["spend_usd"]) for r in body["rows"]] == [("2026-11-01", 4, "0.0600000000")]

    account = Account.objects.get(external_id="acct_z")
    november = statements.statement_month(account=account, month=date(2026, 11, 1))
    assert (november.start, november.end) == (datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 12, 1, 5, tzinfo=UTC))
    assert november.model_usage_units == 1_240_000_000  # $0.124: n3..n7
    october = statements.statement_month(account=account, month=date(2026, 10, 1))
    assert october.model_usage_units == 30_000_000

    report = client.get("/account/reports/monthly/2026-11/").context["report"]
    assert report.totals["spend_units"] == 1_240_000_000
    assert report.totals["requests"] == 5
    daily = dict(zip(report.daily.periods, report.daily.series["lab/alpha"], strict=True))
    assert (daily["2026-11-01"], daily["2026-11-02"], daily["2026-11-03"]) == (Decimal("0.06"), Decimal("0.064"), 0)

    log = client.get("/account/generations/", {"start": "2026-11-01", "end": "2026-11-01"})
    assert sorted(g.id for g in log.context["page"].rows) == ["n3", "n4", "n5", "n6"]
    histogram = log.context["histogram"]
    assert histogram.unit == "hour"
    assert histogram.total == 4
    # n4, at its New York wall-clock time: the row shows month, day and time, the full timestamp on hover
    assert re.search(r'title="2026-11-01 01:30:\d\d">11-01 01:30:\d\d<', log.content.decode())
    months = client.get("/account/reports/").context["months"]
    assert months == [date(2026, 11, 1), date(2026, 10, 1)]


def test_kolkata_days_run_from_half_past_midnight_and_say_so(client, tmp_path):
    client.force_login(_owner(tmp_path, KOLKATA, "Asia/Kolkata"))
    days = _series(client, start="2026-11-04", end="2026-11-05", granularity="day")
    assert days == {"2026-11-04": Decimal("0.003"), "2026-11-05": Decimal("0.012")}  # k1 + k2 | k3 + k4
    with time_machine.travel(datetime(2026, 11, 6, 6, tzinfo=UTC), tick=False):
        page = _text(client.get("/account/activity/", {"period": "custom", "start": "2026-11-04", "end": "2026-11-05"}))
        log = client.get("/account/generations/", {"start": "2026-11-05", "end": "2026-11-05"})
    assert ("Times in Asia/Kolkata (UTC+05:30); usage is kept per UTC hour and Asia/Kolkata is not a whole number of "
            "hours from UTC, so a day here runs from 00:30 to 00:30.") in page
    # The log reads each request's own time: Nov 5 in Kolkata is k2, k3, k4 exactly, and it says nothing of 00:30.
    assert sorted(g.id for g in log.context["page"].rows) == ["k2", "k3", "k4"]
    assert "a day here runs from" not in _text(log)
    rows = _csv(client, "/account/reports/usage.csv", start="2026-11-05", end="2026-11-05", group_by="day")
    assert [(r["date"], r["requests"]) for r in rows] == [("2026-11-05", "2")]


def test_auckland_months_statements_and_forecast(client, tmp_path):
    client.force_login(_owner(tmp_path, AUCKLAND, "Pacific/Auckland"))
    account = Account.objects.get(external_id="acct_z")
    months = _series(client, start="2026-10-31", end="2026-12-01", granularity="month")
    assert months == {"2026-10": Decimal("0.001"), "2026-11": Decimal("0.006"), "2026-12": Decimal("0.008")}
    statement = statements.statement_month(account=account, month=date(2026, 11, 1))
    assert statement.start == datetime(2026, 10, 31, 11, tzinfo=UTC)
    assert statement.model_usage_units == 60_000_000  # z2 + z3
    assert statements.statement_months(account=account, today=date(2026, 12, 1))[:3] == [
        date(2026, 12, 1), date(2026, 11, 1), date(2026, 10, 1)]
    # At 01:00 on Dec 1 in Auckland (12:00Z on Nov 30), December so far is z4 alone.
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    forecast = selectors.spend_forecast(account=account, now=now).projection
    assert forecast.month_to_date_units == 80_000_000
    assert forecast_days(account_id=account.pk, now=now, zone=account.zone)[date(2026, 11, 30)] == 40_000_000


def test_the_settings_page_sets_the_zone_for_owners_only(client, tmp_path):
    owner = _owner(tmp_path, NEW_YORK, "UTC")
    account = Account.objects.get(external_id="acct_z")
    viewer = member_of(account, Membership.Role.VIEWER, "vera")
    client.force_login(viewer)
    assert "Owners of the account change it" in _text(client.get("/account/settings/"))
    assert client.post("/account/settings/", {"time_zone": "Asia/Tokyo"}).status_code == 403
    client.force_login(owner)
    assert client.post("/account/settings/", {"time_zone": "Not/AZone"}).status_code == 200  # the form's error
    assert Account.objects.get(pk=account.pk).time_zone == "UTC"
    response = client.post("/account/settings/", {"time_zone": "America/New_York"}, follow=True)
    assert "Time zone set to America/New_York." in _text(response)
    assert Account.objects.get(pk=account.pk).time_zone == "America/New_York"
    assert Account.objects.get(external_id="acct_other").time_zone == "UTC"  # one account's setting only
    # The pages follow at once: New York's Oct 31 holds n2 alone.
    assert _series(client, start="2026-10-31", end="2026-10-31", granularity="day") == {"2026-10-31": Decimal("0.002")}


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Auckland"])
def test_the_reports_list_the_months_with_usage_and_skip_a_month_without(client, tmp_path, zone):
    # 2026-08-31 12:00Z is Sep 1 in Auckland (+12:00); nothing in October anywhere; November's two requests.
    rows = [("g1", "2026-08-31T12:00:00Z", 0.001), ("g2", "2026-11-03T10:00:00Z", 0.002),
            ("g3", "2026-11-20T10:00:00Z", 0.004)]
    client.force_login(_owner(tmp_path, rows, zone))
    months = client.get("/account/reports/").context["months"]
    first = date(2026, 8, 1) if zone == "UTC" else date(2026, 9, 1)
    assert months == [date(2026, 11, 1), first]


def test_top_users_and_tags_in_a_zone_read_whole_utc_days_from_their_rollups_and_the_edges_from_generations(
        tmp_path):
    """New York, Oct 31 to Nov 2 (local): [2026-10-31 04:00Z, 2026-11-03 05:00Z). The UTC days Nov 1 and Nov 2
    come from AccountUserDay / AccountTagDay; the hours before (Oct 31 04:00-24:00Z) and after (Nov 3
    00:00-05:00Z) from the generations; n1 (Oct 30 local) and e3 (Nov 3 local) are outside."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    users = {"n2": "u1", "n3": "u1", "e1": "u1"}
    tags = {"n2": ["a"], "e1": ["a"], "e2": ["a", "b"], "e3": ["a"]}
    rows = [*NEW_YORK, ("e1", "2026-10-31T12:00:00Z", 0.128), ("e2", "2026-11-03T02:00:00Z", 0.256),
            ("e3", "2026-11-03T05:30:00Z", 0.512)]
    records = [record(id=gid, created_at=created, total_cost=cost, account="acct_e", model="lab/alpha",
                      provider_name="ProvOne", api_key="k1", user=users.get(gid, "u2"), tags=tags.get(gid, ["b"]))
               for gid, created, cost in rows]
    assert run_batch(write_jsonl(tmp_path / "edges.jsonl", records)).accepted == len(records)
    account = Account.objects.get(external_id="acct_e")
    period = params.period_parse("custom", start="2026-10-31", end="2026-11-02", zone=zone_named("America/New_York"))
    with CaptureQueriesContext(connection) as context:
        overview = usage_overview(account_id=account.pk, period=period)
    unit = 10_000_000  # $0.001
    # u1: n2 + n3 + e1; u2: n4 + n5 + n6 + n7 + e2
    assert [(row.id, row.totals.spend_units) for row in overview.tops["user"]] == [("u2", 376 * unit),
                                                                                   ("u1", 134 * unit)]
    # b: n3..n7 + e2; a: n2 + e1 + e2 (e2 counts under both)
    assert [(row.id, row.totals.spend_units) for row in overview.tops["tag"]] == [("a", 386 * unit),
                                                                                  ("b", 380 * unit)]
    assert (overview.totals.requests, overview.totals.spend_units) == (8, (2 + 4 + 8 + 16 + 32 + 64 + 128 + 256) * unit)
    sql = [q["sql"].lower() for q in context.captured_queries]
    assert sum("analytics_accountuserday" in s for s in sql) == 1
    assert sum("analytics_accounttagday" in s for s in sql) == 1
    # the two edges, for users and tags together (one pass each)
    assert sum("analytics_generation" in s for s in sql) == 2
