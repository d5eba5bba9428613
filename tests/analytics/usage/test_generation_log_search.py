"""The generation log's search, user / session / tag filters, histogram and cost breakdown; group_by=user,tag.

Hand-computed truth on a few records; the same user id ("u1") and session ("s1") in two accounts.
"""
import csv
import dataclasses
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from analytics.models import Generation, GenerationKey
from analytics.usage import cost_breakdown, generation_log, log_histogram
from billing.accounts import account_token_create
from billing.models import Account, Membership
from marketplace.models import EndpointPrice
from tests.analytics.conftest import D1, D2, record, run_batch, write_jsonl
from tests.analytics.conftest import at as _at
from tests.billing.factories import AccountFactory, member_of
from tests.marketplace.factories import AuthorFactory, EndpointFactory, ModelFactory, ProviderFactory

pytestmark = pytest.mark.django_db

KEY = {"model": "lab/alpha", "provider_name": "ProvOne", "api_key": "k1", "account": "acct_a"}


@pytest.fixture
def log(tmp_path, clock):
    records = [
        record(id="g1", created_at=_at(D2, 10), user="u1", session_id="s1", tags=["a", "b"], total_cost=0.001, **KEY),
        record(id="g2", created_at=_at(D2, 11), user="u1", session_id="s2", tags=["a"], total_cost=0.002, **KEY),
        record(id="g3", created_at=_at(D1, 9), user="u2", session_id="s1", total_cost=0.004, **KEY),
        record(id="g4", created_at=_at(D1, 10), tags=["b"], total_cost=0.008, **KEY),
        record(id="b-1", created_at=_at(D1, 9), user="u1", session_id="s1", tags=["a", "secret"], total_cost=1.0,
               model="lab/alpha", provider_name="ProvOne", api_key="kb", account="acct_b"),
    ]
    assert run_batch(write_jsonl(tmp_path / "log.jsonl", records)).accepted == 5
    a = Account.objects.get(external_id="acct_a")
    return {"a": a, "b": Account.objects.get(external_id="acct_b"),
            "alice": member_of(a, Membership.Role.OWNER, "alice")}


def _ids(client, **params) -> list[str]:
    response = client.get("/account/generations/", params)
    assert response.status_code == 200
    return [g.id for g in response.context["page"].rows]


def test_search_by_id_finds_only_this_accounts_generation(client, log):
    client.force_login(log["alice"])
    assert _ids(client, id="g3") == ["g3"]
    assert _ids(client, id="b-1") == []  # account B's: the same answer as an id that does not exist
    assert _ids(client, id="nope") == []
    theirs, missing = (re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "",
                              client.get("/account/generations/", {"id": i}).content.decode())
                       for i in ("b-1", "nope"))
    assert "No generations match." in theirs
    assert "No generations match." in missing
    assert "secret" not in theirs
    assert theirs.replace("b-1", "X") == missing.replace("nope", "X")  # nothing tells the two apart


def test_user_session_and_tag_filters_alone_and_combined(client, log):
    client.force_login(log["alice"])
    assert _ids(client, user="u1") == ["g2", "g1"]  # never B's b-1, though it has user u1 too
    assert _ids(client, user="") == ["g4"]  # "user=": requests without a user
    assert _ids(client, user=["u1", "u2"]) == ["g3", "g2", "g1"]
    assert _ids(client, session="s1") == ["g3", "g1"]
    assert _ids(client, session="") == ["g4"]
    assert _ids(client, tag="b") == ["g4", "g1"]
    assert _ids(client, tag=["a", "b"]) == ["g4", "g2", "g1"]  # repeated: any of them
    assert _ids(client, user="u1", tag="b") == ["g1"]
    assert _ids(client, session="s1", user="u2") == ["g3"]
    assert _ids(client, tag="secret") == []
    # From the page's own form, an empty box means "any", not "none".
    assert _ids(client, form="1", user="", session="", tag="", id="") == ["g4", "g3", "g2", "g1"]
    assert _ids(client, form="1", user="u1", session="", tag="") == ["g2", "g1"]
    response = client.get("/account/generations/", {"tag": "x,y"})
    assert _ids(client, tag="x,y") == ["g4", "g3", "g2", "g1"]  # unusable: says why, shows all
    assert "Showing every generation" in response.content.decode()


def test_cursor_pages_keep_the_filters(client, log, monkeypatch):
    monkeypatch.setattr(generation_log, "PAGE_SIZE", 1)
    client.force_login(log["alice"])
    seen = []
    response = client.get("/account/generations/", {"tag": ["a", "b"], "user": "u1", "session": "s1"})
    seen += [g.id for g in response.context["page"].rows]
    assert seen == ["g1"]
    assert response.context["next_url"] is None
    response = client.get("/account/generations/", {"tag": ["a", "b"]})
    while True:
        seen_page = [g.id for g in response.context["page"].rows]
        seen += seen_page
        if not response.context["next_url"]:
            break
        assert "tag=a&tag=b" in response.context["next_url"]
        response = client.get("/account/generations/" + response.context["next_url"])
    assert seen == ["g1", "g4", "g2", "g1"]


def test_histogram_counts_the_filtered_requests(client, log):
    client.force_login(log["alice"])
    histogram = client.get("/account/generations/").context["histogram"]
    assert histogram.unit == "day"
    assert len(histogram.bars) == 30
    assert not histogram.capped
    counts = {at.date(): n for at, n in histogram.bars if n}
    assert counts == {D2: 2, D1: 2}  # B's request on D1 is not counted
    by_user = client.get("/account/generations/", {"user": "u1"}).context["histogram"]
    assert {at.date(): n for at, n in by_user.bars if n} == {D2: 2}
    # Two days or less: per hour.
    hourly = client.get("/account/generations/", {"start": D2.isoformat(), "end": D1.isoformat(),
                                                  "tag": "b"}).context["histogram"]
    assert hourly.unit == "hour"
    assert len(hourly.bars) == 48
    assert [(at, n) for at, n in hourly.bars if n] == [
        (datetime.combine(D2, datetime.min.time(), tzinfo=UTC) + timedelta(hours=10), 1),
        (datetime.combine(D1, datetime.min.time(), tzinfo=UTC) + timedelta(hours=10), 1)]
    long = client.get("/account/generations/", {"start": (D1 - timedelta(days=200)).isoformat(),
                                                "end": D1.isoformat()})
    assert long.context["histogram"].capped
    assert len(long.context["histogram"].bars) == 90
    assert "only its last 90 days are counted" in long.content.decode()


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_the_histogram_counts_from_the_rollups_what_the_generations_count(log, zone):
    """Filtered on rollup dimensions and status only, the rollups answer, and exactly as the generation
    table does (by day and by hour, in UTC and in a whole-hour zone); a session or an id goes to the table."""
    from django.db import connection
    from django.http import QueryDict
    from django.test.utils import CaptureQueriesContext

    from core.timerange import days_span, zone_named

    tz = zone_named(zone)
    for query in ("", "user=u1", "tag=b", "tag=a&tag=b", "status=ok", "status=error", "user=", "user=u2&tag=a"):
        log_filter = generation_log.log_filter_parse(QueryDict(query), zone=tz)
        for unit, (first, last) in (("day", (D2 - timedelta(days=5), D1)), ("hour", (D2, D1))):
            start, end = days_span(first, last, tz)
            with CaptureQueriesContext(connection) as queries:
                from_rollups = log_histogram.rollup_histogram_counts(account_id=log["a"].pk, log_filter=log_filter,
                                                                      unit=unit, start=start, end=end)
            # Users and tags have daily rollups of their own, each alone: by the hour, in a zone whose
            # days are not UTC days, or a user with a tag, only the generation table answers.
            named = {part.split("=")[0] for part in query.split("&")} & {"user", "tag"}
            if named and (unit == "hour" or zone != "UTC" or len(named) > 1):
                assert from_rollups is None, query
                assert not queries, query
                continue
            assert len(queries) == 1, query
            assert "analytics_generation" not in queries[0]["sql"], query
            from_rows = log_histogram.histogram_counts(
                account_id=log["a"].pk, log_filter=dataclasses.replace(log_filter, start=start, end=end), unit=unit,
                zone=tz)
            assert {k: v for k, v in from_rollups.items() if v} == {b.astimezone(UTC): n for b, n in from_rows}, query
    assert sum(log_histogram.rollup_histogram_counts(
        account_id=log["a"].pk, log_filter=generation_log.log_filter_parse(QueryDict("status=ok")), unit="day",
        start=days_span(D2, D1)[0], end=days_span(D2, D1)[1]).values()) == 4
    for query in ("session=s1", "id=g1"):
        assert log_histogram.rollup_histogram_counts(
            account_id=log["a"].pk, log_filter=generation_log.log_filter_parse(QueryDict(query)), unit="day",
            start=days_span(D2, D1)[0], end=days_span(D2, D1)[1]) is None


def test_user_session_and_tags_are_shown(client, log):
    client.force_login(log["alice"])
    body = client.get("/account/generations/", {"id": "g1"}).content.decode()
    assert "u1" in body
    assert "s1" in body
    assert "a,b" in body
    detail = client.get("/account/generations/g1/").content.decode()
    assert '<span class="badge">a</span>' in detail
    assert '<span class="badge">b</span>' in detail


def test_generations_csv_follows_the_filters_and_has_the_new_columns(client, log):
    client.force_login(log["alice"])
    response = client.get("/account/reports/generations.csv",
                          {"start": D2.isoformat(), "end": D1.isoformat(), "user": "u1"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["id"], r["end_user"], r["session_id"], r["tags"]) for r in rows] == [
        ("g1", "u1", "s1", "a,b"), ("g2", "u1", "s2", "a")]
    response = client.get("/account/reports/generations.csv",
                          {"start": D2.isoformat(), "end": D1.isoformat(), "tag": "b", "session": ""})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["id"], r["end_user"], r["session_id"], r["tags"]) for r in rows] == [("g4", "", "", "b")]
    everything = client.get("/account/reports/generations.csv", {"start": D2.isoformat(), "end": D1.isoformat()})
    body = b"".join(everything.streaming_content).decode()
    assert "secret" not in body
    assert "b-1" not in body


def _usage(client, group_by: str) -> list[dict]:
    response = client.get("/account/reports/usage.csv",
                          {"start": D2.isoformat(), "end": D1.isoformat(), "group_by": group_by})
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_usage_csv_by_user_and_by_tag(client, log):
    client.force_login(log["alice"])
    by_user = _usage(client, "user")
    assert [(r["user"], r["requests"], r["spend_usd"]) for r in by_user] == [
        ("", "1", "0.0080000000"), ("u1", "2", "0.0030000000"), ("u2", "1", "0.0040000000")]
    # g1 (a, b) counts under a and under b: tag rows sum to 5 requests of 4.
    by_tag = _usage(client, "tag")
    assert [(r["tag"], r["requests"], r["spend_usd"]) for r in by_tag] == [
        ("", "1", "0.0040000000"), ("a", "2", "0.0030000000"), ("b", "2", "0.0090000000")]
    both = _usage(client, "day,user,tag")
    assert [(r["date"], r["user"], r["tag"], r["requests"]) for r in both] == [
        (D2.isoformat(), "u1", "a", "2"), (D2.isoformat(), "u1", "b", "1"),
        (D1.isoformat(), "", "b", "1"), (D1.isoformat(), "u2", "", "1")]
    assert [r["model"] for r in _usage(client, "tag,model")] == ["lab/alpha"] * 3


def test_usage_api_by_user_and_tag(client, log):
    _, secret = account_token_create(account=log["a"], name="t", created_by=log["alice"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    answer = client.get("/api/v1/account/usage", {"start": D2.isoformat(), "end": D1.isoformat(),
                                                  "group_by": "user,tag"}, **auth).json()
    assert answer["group_by"] == ["user", "tag"]
    assert [(r["user"], r["tag"], r["requests"]) for r in answer["rows"]] == [
        ("", "b", 1), ("u1", "a", 2), ("u1", "b", 1), ("u2", "", 1)]
    by_day = client.get("/api/v1/account/usage", {"start": D2.isoformat(), "end": D1.isoformat(),
                                                  "group_by": "tag,day"}, **auth).json()
    assert [(r["tag"], r["date"], r["spend_usd"]) for r in by_day["rows"]] == [
        ("", D1.isoformat(), "0.0040000000"), ("a", D2.isoformat(), "0.0030000000"),
        ("b", D2.isoformat(), "0.0010000000"), ("b", D1.isoformat(), "0.0080000000")]
    generations = client.get("/api/v1/account/generations", {"user": "u1", "tag": "b"}, **auth).json()
    assert [(g["id"], g["end_user"], g["session_id"], g["tags"]) for g in generations["results"]] == [
        ("g1", "u1", "s1", ["a", "b"])]


def test_one_account_never_sees_anothers_users_tags_or_sessions(client, log):
    client.force_login(log["alice"])
    for group_by in ("user", "tag", "day,user,tag"):
        assert all("secret" not in r.get("tag", "") for r in _usage(client, group_by))
    assert sum(int(r["requests"]) for r in _usage(client, "user") if r["user"] == "u1") == 2
    for params in ({}, {"user": "u1"}, {"session": "s1"}, {"tag": "a"}):
        body = client.get("/account/generations/", params).content.decode()
        assert "secret" not in body, params
        assert "b-1" not in body, params


# --- the cost breakdown ----------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def priced(db):
    account = AccountFactory(external_id="acct_cost")
    author = AuthorFactory(slug="lab", name="Lab")
    model = ModelFactory(slug="lab/priced", author=author, route_name="priced", name="priced")
    provider = ProviderFactory(slug="prov", name="Prov")
    endpoint = EndpointFactory(model=model, provider=provider, prompt_price=Decimal("0.000009"),
                               completion_price=Decimal("0.000009"))
    # Per token: prompt $1/M, cache reads $0.10/M, completion $2/M, reasoning at the completion price.
    EndpointPrice.objects.create(endpoint=endpoint, valid_from=T0, prompt_price=Decimal("0.000001"),
                                 completion_price=Decimal("0.000002"), cache_read_price=Decimal("0.0000001"))
    # From T1 on, twice that, and reasoning at $3/M.
    EndpointPrice.objects.create(endpoint=endpoint, valid_from=T1, prompt_price=Decimal("0.000002"),
                                 completion_price=Decimal("0.000004"), cache_read_price=Decimal("0.0000002"),
                                 reasoning_price=Decimal("0.000003"))
    other = ModelFactory(slug="lab/unpriced", author=author, route_name="unpriced", name="unpriced")
    tokens = {"tokens_prompt": 1000, "tokens_cached": 200, "tokens_completion": 500, "tokens_reasoning": 100}
    GenerationKey.objects.bulk_create([GenerationKey(id=i, created_at=T0 + timedelta(days=3))
                                       for i in ("c-jan", "c-gw", "c-none")])
    GenerationKey.objects.create(id="c-feb", created_at=T1 + timedelta(days=3))
    Generation.objects.bulk_create([
        Generation(id="c-jan", created_at=T0 + timedelta(days=3), account=account, model=model, provider=provider,
                   cost_units=18_200_000, cost_source=Generation.CostSource.CATALOG, **tokens),
        Generation(id="c-feb", created_at=T1 + timedelta(days=3), account=account, model=model, provider=provider,
                   cost_units=36_400_000, cost_source=Generation.CostSource.CATALOG, **tokens),
        Generation(id="c-gw", created_at=T0 + timedelta(days=3), account=account, model=model, provider=provider,
                   cost_units=50_000_000, cost_source=Generation.CostSource.GATEWAY, **tokens),
        Generation(id="c-none", created_at=T0 + timedelta(days=3), account=account, model=other, provider=provider,
                   cost_units=70_000_000, cost_source=Generation.CostSource.GATEWAY, **tokens),
    ])
    return {"account": account, "user": member_of(account, Membership.Role.OWNER, "carol")}


def _cost(generation_id: str) -> cost_breakdown.CostBreakdown:
    return cost_breakdown.generation_cost(Generation.objects.get(id=generation_id))


def test_cost_breakdown_at_the_price_in_force_at_created_at(priced, client):
    january = _cost("c-jan")
    # 800 uncached prompt x $1/M = $0.0008; 200 cached x $0.1/M = $0.00002;
    # 400 completion x $2/M = $0.0008; 100 reasoning x $2/M (no reasoning price) = $0.0002. Total $0.00182.
    assert january.rows == [("Prompt (uncached)", 800, 8_000_000), ("Cache reads", 200, 200_000),
                            ("Completion (without reasoning)", 400, 8_000_000),
                            ("of the completion: reasoning", 100, 2_000_000)]
    assert january.total_units == 18_200_000
    assert january.matches_bill
    assert january.since == T0
    february = _cost("c-feb")
    # $0.0016 + $0.00004 + $0.0016 + 100 x $3/M = $0.0003: $0.00354.
    assert [units for _, _, units in february.rows] == [16_000_000, 400_000, 16_000_000, 3_000_000]
    assert february.total_units == 35_400_000
    assert february.since == T1
    assert not february.matches_bill
    client.force_login(priced["user"])
    page = client.get("/account/generations/c-jan/").content.decode()
    assert "$0.00002" in page
    assert "$0.00182" in page
    assert "Cost from the gateway" not in page


def test_a_gateway_cost_is_the_bill_and_the_catalog_only_what_it_would_be(priced, client):
    gateway = _cost("c-gw")
    assert gateway.from_gateway
    assert gateway.total_units == 18_200_000
    client.force_login(priced["user"])
    page = client.get("/account/generations/c-gw/").content.decode()
    assert "Cost from the gateway: $0.005" in page
    assert "The catalog price at the time would be" in page
    assert "Catalog total (not the bill)" in page
    none = client.get("/account/generations/c-none/").content.decode()
    assert _cost("c-none").parts is None
    assert "The catalog has no price for this model at this provider" in none
    assert "Cost from the gateway: $0.007" in none
