"""The usage cache after ingestion: versions moved in a constant number of round trips, prewarm of watched accounts."""
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics import tasks, usage
from billing.models import Account, Membership

from .conftest import D1, account_traffic, at, record, run_batch, write_jsonl

pytestmark = pytest.mark.django_db

def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


@pytest.fixture
def queued(monkeypatch):
    """The usage tasks queued, instead of sent: prewarm account lists and catch-up calls."""
    sent = {"prewarm": [], "later": []}
    monkeypatch.setattr(tasks.usage_prewarm, "delay", sent["prewarm"].append)
    monkeypatch.setattr(tasks.usage_refresh_later, "apply_async", lambda **kw: sent["later"].append(kw))
    return sent


@pytest.fixture
def traffic(tmp_path):
    return account_traffic(tmp_path)


def _member(username: str, account: Account):
    user = get_user_model().objects.create_user(username, password=f"pw-{username}-123")
    Membership.objects.create(user=user, account=account, role=Membership.Role.OWNER)
    return user


def _ingest(tmp_path, name: str, records: list[dict], capture) -> None:
    """Ingest records and run the after-commit hooks (the usage refresh among them)."""
    with capture(execute=True):
        run_batch(write_jsonl(tmp_path / f"{name}.jsonl", records))


class CountingCache:
    """The cache, counting every call made on it (each is one round trip on Redis)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def counted(*args, **kwargs):
            self.calls.append(name)
            return method(*args, **kwargs)
        return counted


def _refresh_calls(monkeypatch, clock, account_ids: list[int]) -> list[list[str]]:
    """Cache calls of four refreshes of the same accounts: all due, all inside the minute, all waiting, all due."""
    counting = CountingCache(cache)
    monkeypatch.setattr(usage, "cache", counting)
    for i in account_ids[::2]:  # half of them watched
        usage.usage_watch(account_id=i)
    rounds = []
    for advance in (0, 10, 10, 61):
        clock.shift(advance)
        counting.calls.clear()
        usage.usage_refresh(account_ids=account_ids)
        rounds.append(list(counting.calls))
    return rounds


@pytest.fixture
def roomy_cache(settings):
    """Room for a thousand accounts' keys in the local-memory cache (it culls past 300 entries by default)."""
    if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        settings.CACHES = {"default": {**settings.CACHES["default"], "OPTIONS": {"MAX_ENTRIES": 100_000}}}


def test_refresh_makes_the_same_cache_round_trips_for_10_and_1000_accounts(monkeypatch, roomy_cache, clock, queued):
    few = _refresh_calls(monkeypatch, clock, list(range(1, 11)))
    cache.clear()
    queued["prewarm"].clear()
    queued["later"].clear()
    many = _refresh_calls(monkeypatch, clock, list(range(10_001, 11_001)))
    assert few == many
    assert few == [["get_many", "set_many"], ["get_many", "set_many"], ["get_many"], ["get_many", "set_many"]]
    # One task per refresh whatever the number of accounts: the watched half prewarmed twice, one catch-up.
    assert [len(ids) for ids in queued["prewarm"]] == [500, 500]
    assert queued["later"] == [{"args": [list(range(10_001, 11_001))], "countdown": 61}]


def test_a_watched_account_is_prewarmed_an_unwatched_one_computes_right_on_first_view(
        client, tmp_path, traffic, clock, queued, django_capture_on_commit_callbacks, django_assert_max_num_queries):
    a, b = traffic["a"], traffic["b"]
    alice, bob = _member("alice", a), _member("bob", b)
    client.force_login(alice)
    client.get("/account/")  # A is watched from now on; B is not
    _ingest(tmp_path, "more", [
        record(id="a6", created_at=at(D1, 15), account="acct_a", model="lab/alpha", provider_name="ProvOne",
               api_key="k1", tokens_prompt=400, tokens_completion=100, total_cost=0.005),
        record(id="b2", created_at=at(D1, 14), account="acct_b", model="lab/beta", provider_name="ProvTwo",
               api_key="kb", tokens_prompt=1, tokens_completion=99, total_cost=0.01),
    ], django_capture_on_commit_callbacks)
    assert queued["prewarm"] == [[a.pk]]
    tasks.usage_prewarm.run(queued["prewarm"][0])
    with django_assert_max_num_queries(4):  # session, user, memberships (+ savepoint): no usage query
        text = _text(client.get("/account/"))
    assert re.search(r"Spend \$0\.0500 ", text)  # $0.045 of the fixture and a6's $0.005
    assert re.search(r"Requests 5 ", text)

    client.force_login(bob)
    with CaptureQueriesContext(connection) as queries:
        text = _text(client.get("/account/", {"period": "30d"}))
    # Not prewarmed, so computed now: the totals against the previous period, and one pass over the
    # period's rows for the chart and the four tables.
    assert sum("analytics_accountday" in q["sql"] for q in queries.captured_queries) == 2
    # b1: 9,999 + 1 tokens for $9.99 on lab/alpha; b2: 1 + 99 tokens for $0.01 on lab/beta.
    assert re.search(r"Spend \$10\.0000 ", text)
    assert re.search(r"Tokens 10\.1K ", text)
    assert re.search(r"Requests 2 ", text)
    assert re.search(r"Top models Model Spend Tokens Requests Share lab/alpha \$9\.9900 10\.0K 1 99\.9% "
                     r"lab/beta \$0\.0100 100 1 0\.1%", text)
    activity = client.get("/account/activity/", {"period": "30d"}).context["activity"]
    assert (activity.total.spend, activity.total.requests) == (Decimal(10), 2)


def test_a_chunk_inside_the_minute_shows_after_the_catch_up(
        client, tmp_path, traffic, clock, queued, django_capture_on_commit_callbacks):
    client.force_login(_member("alice", traffic["a"]))
    params = {"period": "custom", "start": D1.isoformat(), "end": D1.isoformat()}
    assert re.search(r"Requests 3 ", _text(client.get("/account/", params)))

    def chunk(n: int) -> None:
        _ingest(tmp_path, f"c{n}", [record(id=f"c{n}", created_at=at(D1, 20, n), account="acct_a")],
                django_capture_on_commit_callbacks)

    chunk(1)  # the version moved long ago: it moves now
    assert re.search(r"Requests 4 ", _text(client.get("/account/", params)))
    clock.shift(10)
    chunk(2)  # inside the minute: left to one catch-up run a minute later
    clock.shift(10)
    chunk(3)  # already waiting for that run: nothing more queued
    assert queued["later"] == [{"args": [[traffic["a"].pk]], "countdown": 61}]
    assert re.search(r"Requests 4 ", _text(client.get("/account/", params)))  # at most a minute stale
    clock.shift(51)  # the catch-up's countdown after chunk 2
    tasks.usage_refresh_later.run(*queued["later"][0]["args"])
    assert re.search(r"Requests 6 ", _text(client.get("/account/", params)))


def test_versions_never_repeat(clock, queued):
    seen = [usage.usage_version(7)]  # made by a page, before any chunk
    usage.usage_refresh(account_ids=[7])
    seen.append(usage.usage_version(7))
    clock.shift(61)
    usage.usage_refresh(account_ids=[7, 8])
    seen.append(usage.usage_version(7))
    cache.delete("usage:version:7")  # evicted: the next page makes a new one
    seen.append(usage.usage_version(7))
    clock.shift(-3600)  # the clock stepped back: the same milliseconds come again
    for _ in range(3):
        cache.delete("usage:version:7")
        usage.usage_refresh(account_ids=[7])
        seen.append(usage.usage_version(7))
    assert len(set(seen)) == len(seen) == 7
