"""The explorer (/account/activity/) and the overview's top users and tags against hand-computed truth.

Account A, over D2..D1 (UTC):
    e1  D2 10:00  u1  chat,prod  lab/alpha  $0.010  150 tokens (100 + 50)
    e2  D2 11:00  u2  prod       lab/beta   $0.020  300 tokens
    e3  D1 09:00  u1  —          lab/beta   $0.030  450 tokens
    e4  D1 12:00  —   chat       lab/alpha  $0.045  500 tokens
Account B: b1 D1, the same user id u1 and tag prod, $9.99.
"""
import csv
import io
import re
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext

from analytics.models import Generation
from analytics.usage.filters import Filters, filters_parse
from billing.models import Account, Membership
from tests.analytics.conftest import D1, D2, at, record, run_batch, write_jsonl
from tests.billing.factories import member_of

pytestmark = pytest.mark.django_db

ALPHA = {"model": "lab/alpha", "provider_name": "ProvOne", "api_key": "k1"}
BETA = {"model": "lab/beta", "provider_name": "ProvTwo", "api_key": "k2"}
RANGE = {"period": "custom", "start": D2.isoformat(), "end": D1.isoformat(), "granularity": "day"}


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


@pytest.fixture
def alice(tmp_path):
    records = [
        record(id="e1", created_at=at(D2, 10), user="u1", tags=["prod", "chat"], tokens_prompt=100,
               tokens_completion=50, total_cost=0.010, latency=400, account="acct_a", **ALPHA),
        record(id="e2", created_at=at(D2, 11), user="u2", tags=["prod"], tokens_prompt=200, tokens_completion=100,
               total_cost=0.020, latency=600, account="acct_a", **BETA),
        record(id="e3", created_at=at(D1, 9), user="u1", tokens_prompt=300, tokens_completion=150,
               total_cost=0.030, latency=200, account="acct_a", **BETA),
        record(id="e4", created_at=at(D1, 12), tags=["chat"], tokens_prompt=400, tokens_completion=100,
               total_cost=0.045, latency=800, account="acct_a", **ALPHA),
        record(id="b1", created_at=at(D1, 9), user="u1", tags=["prod"], tokens_prompt=9999, tokens_completion=1,
               total_cost=9.99, account="acct_b", **ALPHA),
    ]
    assert run_batch(write_jsonl(tmp_path / "explorer.jsonl", records)).accepted == 5
    return member_of(Account.objects.get(external_id="acct_a"), Membership.Role.OWNER, "alice")


def _view(client, **choices):
    response = client.get("/account/activity/", {**RANGE, **choices})
    assert response.status_code == 200
    return response.context["activity"]


def _groups(activity) -> dict:
    return {" · ".join(row.labels): row.value for row in activity.groups}


def _model_id(slug: str) -> int:
    return Generation.objects.filter(model__slug=slug).values_list("model_id", flat=True).first()


def test_group_by_tag_counts_a_request_under_each_of_its_tags_and_the_total_once(client, alice):
    client.force_login(alice)
    activity = _view(client, group_by="tag")
    assert _groups(activity) == {"chat": Decimal("0.055"), "(no tag)": Decimal("0.030"), "prod": Decimal("0.030")}
    assert activity.total.spend_units == 1_050_000_000  # $0.105, not the $0.115 of the tags' sum
    assert [float(row.share) for row in activity.groups] == pytest.approx([0.055 / 0.105, 0.030 / 0.105, 0.030 / 0.105])
    assert activity.series.series == {"chat": [Decimal("0.010"), Decimal("0.045")],
                                      "(no tag)": [0, Decimal("0.030")], "prod": [Decimal("0.030"), 0]}


def test_group_by_user_filtered_by_a_tag(client, alice):
    client.force_login(alice)
    activity = _view(client, group_by="user", tag="prod")
    assert _groups(activity) == {"u2": Decimal("0.020"), "u1": Decimal("0.010")}  # B's u1 ($9.99) is not A's
    assert activity.total.requests == 2


def test_group_by_tag_filtered_by_model_and_by_no_user(client, alice):
    client.force_login(alice)
    alpha = _model_id("lab/alpha")
    assert _groups(_view(client, group_by="tag", model=alpha)) == {"chat": Decimal("0.055"), "prod": Decimal("0.010")}
    no_user = _view(client, group_by=["user", "tag"], user="")
    assert _groups(no_user) == {"(no user) · chat": Decimal("0.045")}


def test_grouped_by_tag_and_filtered_by_tags_the_groups_are_those_tags(client, alice):
    client.force_login(alice)
    assert _groups(_view(client, group_by="tag", tag="prod")) == {"prod": Decimal("0.030")}
    both = _view(client, group_by="tag", tag=["prod", "chat"])
    assert _groups(both) == {"chat": Decimal("0.055"), "prod": Decimal("0.030")}
    assert both.total.spend_units == 750_000_000  # e1, e2, e4 once each


def test_in_filters_and_two_group_bys(client, alice):
    client.force_login(alice)
    activity = _view(client, group_by=["model", "user"], user=["u1", "u2"])
    assert _groups(activity) == {"lab/beta · u1": Decimal("0.030"), "lab/beta · u2": Decimal("0.020"),
                                 "lab/alpha · u1": Decimal("0.010")}
    both = _view(client, group_by="model", tag=["chat", "prod"], model=[_model_id("lab/beta"), _model_id("lab/alpha")])
    assert _groups(both) == {"lab/alpha": Decimal("0.055"), "lab/beta": Decimal("0.020")}  # e3 has no tag


def test_top_n_and_other_sum_the_rest_exactly(client, alice):
    client.force_login(alice)
    activity = _view(client, group_by="model", top="1")
    assert _groups(activity) == {"lab/alpha": Decimal("0.055"), "Other": Decimal("0.050")}
    assert activity.group_count == 2
    assert activity.series.series == {"lab/alpha": [Decimal("0.010"), Decimal("0.045")],
                                      "Other": [Decimal("0.020"), Decimal("0.030")]}
    other = activity.groups[-1]
    assert (other.key, other.totals.requests, other.totals.tokens) == (None, 2, 750)
    # By tag the rest overlaps the top: Other counts each request with a tag outside the top once (e1, e2, e3).
    tags = _view(client, group_by="tag", top="1")
    assert _groups(tags) == {"chat": Decimal("0.055"), "Other": Decimal("0.060")}
    assert tags.series.series["Other"] == [Decimal("0.030"), Decimal("0.030")]
    assert [_view(client, group_by="model", top=top).top for top in ("0", "51", "x", "5")] == [10, 10, 10, 5]


def test_cumulative_sums_and_ratio_of_running_sums(client, alice):
    client.force_login(alice)
    assert _view(client, cumulative="1").series.series == {"All": [Decimal("0.030"), Decimal("0.105")]}
    # Cost per 1M tokens: $0.03 / 450 tokens on D2; then $0.105 / 1,400 tokens (D1 alone: $0.075 / 950).
    running = _view(client, metric="cost_per_million", cumulative="1").series.series["All"]
    assert running == [Decimal("66.6666666666"), Decimal("75.0000000000")]
    assert _view(client, metric="cost_per_million").series.series["All"][1] == Decimal("78.9473684210")
    latency = _view(client, metric="latency", group_by="model", cumulative="1").series.series
    assert latency == {"lab/beta": [600.0, 400.0], "lab/alpha": [400.0, 600.0]}


def test_rate_metrics(client, alice, tmp_path):
    run_batch(write_jsonl(tmp_path / "failed.jsonl", [
        record(id="f1", created_at=at(D1, 14), status=500, tokens_prompt=100, tokens_completion=0, total_cost=0,
               latency=None, native_tokens_cached=0, account="acct_a", **BETA),
        record(id="c1", created_at=at(D1, 15), tokens_prompt=100, tokens_completion=0, native_tokens_cached=60,
               total_cost=0, account="acct_a", **ALPHA)]))
    client.force_login(alice)
    failures = _groups(_view(client, metric="failure_rate", group_by="model"))
    assert failures == {"lab/beta": pytest.approx(1 / 3), "lab/alpha": 0.0}
    hits = _groups(_view(client, metric="cache_hit_rate", group_by="model"))
    assert hits == {"lab/alpha": pytest.approx(60 / 600), "lab/beta": 0.0}


def test_month_buckets_split_exactly_at_the_month_edge(client, tmp_path):
    with time_machine.travel(datetime(2026, 12, 3, 12, tzinfo=UTC), tick=False):
        run_batch(write_jsonl(tmp_path / "edge.jsonl", [
            record(id="m1", created_at="2026-11-29T10:00:00Z", total_cost=0.01, account="acct_m", **ALPHA),
            record(id="m2", created_at="2026-11-30T23:59:59Z", total_cost=0.02, account="acct_m", **ALPHA),
            record(id="m3", created_at="2026-12-01T00:00:00Z", total_cost=0.04, account="acct_m", **ALPHA)]))
        client.force_login(member_of(Account.objects.get(external_id="acct_m"), Membership.Role.OWNER, "mia"))
        month = client.get("/account/activity/", {"period": "7d", "granularity": "month"}).context["activity"]
        week = client.get("/account/activity/", {"period": "7d", "granularity": "week"}).context["activity"]
    assert month.series.periods == ["2026-11", "2026-12"]
    assert month.series.series == {"All": [Decimal("0.03"), Decimal("0.04")]}
    assert week.series.periods == ["2026-11-23", "2026-11-30"]  # weeks start on Monday
    assert week.series.series == {"All": [Decimal("0.01"), Decimal("0.06")]}


def test_cell_links_read_back_into_the_row_slice(client, alice):
    client.force_login(alice)
    response = client.get("/account/activity/", {**RANGE, "group_by": ["user", "tag"], "tag": "prod"})
    rows = {" · ".join(row.labels): link for row, link, _ in response.context["rows"]}
    # Filtered to prod, the tag groups are prod only (e1's chat is not "chat among prod": no link says that).
    assert set(rows) == {"u2 · prod", "u1 · prod"}
    link = rows["u1 · prod"]
    assert link.startswith("/account/generations/?")
    query = QueryDict(urlsplit(link).query)
    assert filters_parse(query) == Filters((("user", ("u1",)), ("tag", ("prod",))))
    assert (query["start"], query["end"]) == (D2.isoformat(), D1.isoformat())
    assert f'href="{link.replace("&", "&amp;")}"' in response.content.decode()
    # The narrowing links keep the view and add the row's value as a filter.
    narrow = dict(response.context["rows"][0][2])["u2"]
    assert parse_qs(narrow[1:])["user"] == ["u2"]
    assert parse_qs(narrow[1:])["group_by"] == ["user", "tag"]
    by_tag = client.get("/account/activity/", {**RANGE, "group_by": "tag", "top": "1"}).context["rows"]
    assert [(row.labels, link) for row, link, _ in by_tag][1] == (("Other",), None)
    no_tag = client.get("/account/activity/", {**RANGE, "group_by": "tag"}).context["rows"]
    assert [link for row, link, _ in no_tag if row.labels == ("(no tag)",)] == [None]  # no filter names it


def test_filter_chips_remove_one_value_and_inputs_add_one(client, alice):
    client.force_login(alice)
    response = client.get("/account/activity/", {**RANGE, "user": ["u1", "u2"], "model": _model_id("lab/beta")})
    chips = response.context["chips"]
    assert [(label, name) for label, name, _ in chips] == [("Model", "lab/beta"), ("User", "u1"), ("User", "u2")]
    assert f'<option value="{_model_id("lab/beta")}" selected>lab/beta</option>' in response.content.decode()
    assert f'<option value="{_model_id("lab/alpha")}">lab/alpha</option>' in response.content.decode()
    removed = QueryDict(chips[1][2][1:])
    assert filters_parse(removed) == Filters((("model", (_model_id("lab/beta"),)), ("user", ("u2",))))
    added = client.get("/account/activity/", {**RANGE, "user": "u1", "user_add": "u2", "tag_add": ""})
    assert added.status_code == 302
    target = QueryDict(urlsplit(added["Location"]).query)
    assert target.getlist("user") == ["u1", "u2"]
    assert "tag" not in target
    assert "user_add" not in target


def test_invalid_filters_warn_and_show_the_view_without_them(client, alice):
    client.force_login(alice)
    response = client.get("/account/activity/", {**RANGE, "model": "abc", "tag": "a,b"})
    assert response.status_code == 200
    assert "Showing the view without filters." in _text(response)
    assert response.context["activity"].filters == Filters()
    assert response.context["activity"].total.spend_units == 1_050_000_000
    refused = client.get("/account/activity.csv", {**RANGE, "user": "x" * 129})
    assert refused.status_code == 400
    assert "user" in refused.content.decode()


def test_csv_of_the_view_is_bucket_by_group(client, alice):
    client.force_login(alice)
    response = client.get("/account/activity.csv", {**RANGE, "group_by": "model", "top": "1"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["bucket", "Model", "spend", "requests", "tokens", "spend_usd"]
    assert [(r[0], r[1], Decimal(r[2]), r[3], r[4], r[5]) for r in rows[1:]] == [
        (D2.isoformat(), "lab/alpha", Decimal("0.01"), "1", "150", "0.0100000000"),
        (D2.isoformat(), "Other", Decimal("0.02"), "1", "300", "0.0200000000"),
        (D1.isoformat(), "lab/alpha", Decimal("0.045"), "1", "500", "0.0450000000"),
        (D1.isoformat(), "Other", Decimal("0.03"), "1", "450", "0.0300000000")]
    cumulative = client.get("/account/activity.csv", {**RANGE, "cumulative": "1", "tag": "prod"})
    rows = list(csv.reader(io.StringIO(b"".join(cumulative.streaming_content).decode())))
    assert [(r[0], r[1], Decimal(r[2]), r[3]) for r in rows[1:]] == [
        (D2.isoformat(), "All", Decimal("0.03"), "2"), (D1.isoformat(), "All", Decimal("0.03"), "2")]
    # The page links the CSV of the same view.
    page = client.get("/account/activity/", {**RANGE, "group_by": "model", "top": "1"})
    assert parse_qs(urlsplit(page.context["csv_url"]).query)["top"] == ["1"]


def test_overview_top_users_and_tags(client, alice, django_assert_max_num_queries):
    client.force_login(alice)
    with django_assert_max_num_queries(22):
        response = client.get("/account/", {"period": "7d"})
    tops = {dimension: [(row.name, row.totals.spend_units, round(row.share, 3)) for row in rows]
            for _, _, dimension, rows in response.context["tops"]}
    assert tops["user"] == [("(no user)", 450_000_000, 0.429), ("u1", 400_000_000, 0.381), ("u2", 200_000_000, 0.190)]
    # Shares of the period's $0.105, though the tags' rows sum to more (e1 is under chat and prod).
    assert tops["tag"] == [("chat", 550_000_000, 0.524), ("(no tag)", 300_000_000, 0.286),
                           ("prod", 300_000_000, 0.286)]
    text = _text(response)
    assert "Top users User Spend" in text
    assert "Top tags Tag Spend" in text
    assert "9.99" not in text


def test_overview_reads_each_rollup_once_and_never_the_generations(client, alice):
    client.force_login(alice)
    cache.clear()
    with CaptureQueriesContext(connection) as context:
        client.get("/account/", {"period": "7d"})
    rollups = [q["sql"].lower() for q in context.captured_queries if "analytics_account" in q["sql"].lower()]
    # the totals; one pass over AccountDay for the chart and the model, key, app and provider tables,
    # one over AccountUserDay for the users, one over AccountTagDay for the tags; then the forecast's
    # daily spend (1) and the savings advisor's (2), as tests/analytics/usage/test_usage_cache.py counts them;
    # and the account's first day of traffic (1: is the previous period partial?)
    assert len(rollups) == 1 + 3 + 1 + 2 + 1
    assert sum("analytics_accountuserday" in sql for sql in rollups) == 1
    assert sum("analytics_accounttagday" in sql for sql in rollups) == 1
    assert not [q for q in context.captured_queries if "analytics_generation" in q["sql"].lower()]


def test_prewarm_fills_the_default_explorer_view(client, alice, django_assert_max_num_queries):
    from analytics.usage import prewarm
    from analytics.usage.cache import usage_watch

    account_id = alice.memberships.get().account_id
    usage_watch(account_id=account_id)
    prewarm.usage_prewarm(account_id=account_id)
    client.force_login(alice)
    with CaptureQueriesContext(connection) as context:
        assert client.get("/account/activity/").status_code == 200
    assert not [q for q in context.captured_queries if "analytics_account" in q["sql"].lower()]


def test_a_user_called_other_keeps_its_row_apart_from_the_rest(client, alice, tmp_path):
    run_batch(write_jsonl(tmp_path / "other.jsonl", [
        record(id="o1", created_at=at(D1, 16), user="Other", total_cost=1.0, account="acct_a", **ALPHA)]))
    client.force_login(alice)
    activity = _view(client, group_by="user", top="1")
    assert _groups(activity) == {"Other": Decimal("1.0"), "Other (the rest)": Decimal("0.105")}
    assert set(activity.series.series) == {"Other", "Other (the rest)"}


def test_hourly_buckets_read_the_hourly_rollup_with_the_filters(client, alice):
    client.force_login(alice)
    activity = _view(client, granularity="hour", group_by="user", tag="chat")
    assert len(activity.series.periods) == 48
    series = {name: {p: v for p, v in zip(activity.series.periods, values, strict=True) if v}
              for name, values in activity.series.series.items()}
    assert series == {"(no user)": {f"{D1:%Y-%m-%d} 12:00": Decimal("0.045")},
                      "u1": {f"{D2:%Y-%m-%d} 10:00": Decimal("0.010")}}
