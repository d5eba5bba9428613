"""The usage cache after ingestion: watched accounts' versions moved in a constant number of round trips and
prewarmed; unwatched ones left alone, and a new version on their next view."""
import re
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.usage import cache as usage
from analytics.usage import overview, params, tasks
from billing.models import Account, Membership
from tests.analytics.conftest import D1, account_traffic, at, record, run_batch, write_jsonl
from tests.billing.factories import member_of

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
    return member_of(account, Membership.Role.OWNER, username)


def _ingest(tmp_path, name: str, records: list[dict], capture) -> None:
    """Ingest records and run the after-commit hooks (the usage refresh among them)."""
    with capture(execute=True):
        run_batch(write_jsonl(tmp_path / f"{name}.jsonl", records))


class CountingCache:
    """The cache, counting every call made on it (each is one round trip on Redis) and the keys of each."""

    def __init__(self, inner):
        self.inner, self.calls, self.keys = inner, [], []

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def counted(*args, **kwargs):
            self.calls.append(name)
            keys = args[0] if args else None
            self.keys.append(sorted(keys) if isinstance(keys, list | dict) else [keys])
            return method(*args, **kwargs)
        return counted


def _refresh_calls(monkeypatch, clock, account_ids: list[int], watched: list[int]) -> tuple[list, list]:
    """Cache calls of four refreshes of the same accounts, `watched` of them watched: all due, all inside
    the window, all waiting, all due; and the keys of each call."""
    counting = CountingCache(cache)
    monkeypatch.setattr(usage, "cache", counting)
    for i in watched:
        usage.usage_watch(account_id=i)
    rounds, keys = [], []
    for advance in (0, 3, 3, 11):
        clock.shift(advance)
        counting.calls.clear()
        counting.keys.clear()
        tasks.usage_refresh(account_ids=account_ids)
        rounds.append(list(counting.calls))
        keys.append(list(counting.keys))
    return rounds, keys


@pytest.fixture
def roomy_cache(settings):
    """Room for a thousand accounts' keys in the local-memory cache (it culls past 300 entries by default)."""
    if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        settings.CACHES = {"default": {**settings.CACHES["default"], "OPTIONS": {"MAX_ENTRIES": 100_000}}}


def _cache_reset(queued) -> None:
    cache.clear()
    queued["prewarm"].clear()
    queued["later"].clear()


def test_refresh_makes_the_same_cache_round_trips_for_10_and_1000_accounts(monkeypatch, roomy_cache, clock, queued):
    few, _ = _refresh_calls(monkeypatch, clock, list(range(1, 11)), watched=list(range(1, 11, 2)))
    _cache_reset(queued)
    many, _ = _refresh_calls(monkeypatch, clock, list(range(10_001, 11_001)), watched=list(range(10_001, 11_001, 2)))
    assert few == many
    # The watch marks; the watched accounts' versions and catch-up marks; their new versions (catch-up marks).
    assert few == [["get_many", "get_many", "set_many"], ["get_many", "get_many", "set_many"],
                   ["get_many", "get_many"], ["get_many", "get_many", "set_many"]]
    # One task per refresh whatever the number of accounts: the watched half prewarmed twice, one catch-up.
    assert [len(ids) for ids in queued["prewarm"]] == [500, 500]
    assert queued["later"] == [{"args": [list(range(10_001, 11_001, 2))], "countdown": 11}]


def test_unwatched_accounts_cost_one_key_of_one_get_many(monkeypatch, roomy_cache, clock, queued):
    watched = [3, 5, 8]
    few, few_keys = _refresh_calls(monkeypatch, clock, list(range(1, 11)), watched=watched)
    sent = {k: list(v) for k, v in queued.items()}
    _cache_reset(queued)
    many, many_keys = _refresh_calls(monkeypatch, clock, list(range(1, 1001)), watched=watched)
    assert few == many
    assert queued == sent == {"prewarm": [watched, watched], "later": [{"args": [watched], "countdown": 11}]}
    # Only the first get_many grows with the accounts (one watch mark each); the rest reads and writes
    # the watched accounts' keys alone.
    assert [len(calls[0]) for calls in many_keys] == [1000, 1000, 1000, 1000]
    assert [calls[1:] for calls in few_keys] == [calls[1:] for calls in many_keys]
    watched_keys = sorted(f"usage:{kind}:{i}" for i in watched for kind in ("version", "pending"))
    assert many_keys[0][1:] == [watched_keys, sorted(f"usage:version:{i}" for i in watched)]
    _cache_reset(queued)
    nobody, _ = _refresh_calls(monkeypatch, clock, list(range(1, 1001)), watched=[])
    assert nobody == [["get_many"]] * 4
    assert queued == {"prewarm": [], "later": []}


def test_a_refresh_does_not_write_an_unwatched_accounts_version(clock, queued):
    made = usage.usage_version(7)  # by a page, or left from when the account was watched
    for advance in (0, 61, 10, 61):
        clock.shift(advance)
        tasks.usage_refresh(account_ids=[7, 8])
    assert usage.usage_version(7) == made
    assert cache.get_many(["usage:version:8", "usage:pending:7", "usage:pending:8"]) == {}
    assert queued == {"prewarm": [], "later": []}


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
    assert cache.get(f"usage:version:{b.pk}") is None  # B's version not written: nothing of B's is cached
    tasks.usage_prewarm.run(queued["prewarm"][0])
    with django_assert_max_num_queries(4):  # session, user, memberships (+ savepoint): no usage query
        text = _text(client.get("/account/"))
    assert re.search(r"Spend \$0\.05 ", text)  # $0.045 of the fixture and a6's $0.005
    assert re.search(r"Requests 5 ", text)

    client.force_login(bob)
    with CaptureQueriesContext(connection) as queries:
        text = _text(client.get("/account/", {"period": "30d"}))
    # Not prewarmed, so computed now: the totals against the previous period, and one pass over the
    # period's rows for the chart and the four tables; the forecast's daily spend; the savings' top
    # models and their rows; the account's first day of traffic (is the previous period partial?); the
    # top users' and tags' tables, whose "none" rows are AccountDay's less theirs (usage.sources).
    assert sum("analytics_accountday" in q["sql"] for q in queries.captured_queries) == 2 + 1 + 2 + 1 + 2
    # b1: 9,999 + 1 tokens for $9.99 on lab/alpha; b2: 1 + 99 tokens for $0.01 on lab/beta.
    assert re.search(r"Spend \$10\.00 ", text)
    assert re.search(r"Tokens 10\.1K ", text)
    assert re.search(r"Requests 2 ", text)
    assert re.search(r"Top models Model Spend Tokens Requests Share lab/alpha \$9\.99 10\.0K 1 99\.9% "
                     r"lab/beta \$0\.01 100 1 0\.1%", text)
    activity = client.get("/account/activity/", {"period": "30d"}).context["activity"]
    assert (activity.total.spend, activity.total.requests) == (Decimal(10), 2)


def test_a_chunk_inside_the_window_shows_after_the_catch_up(
        client, tmp_path, traffic, clock, queued, django_capture_on_commit_callbacks):
    client.force_login(_member("alice", traffic["a"]))
    params = {"period": "custom", "start": D1.isoformat(), "end": D1.isoformat()}
    assert re.search(r"Requests 3 ", _text(client.get("/account/", params)))

    def chunk(n: int) -> None:
        _ingest(tmp_path, f"c{n}", [record(id=f"c{n}", created_at=at(D1, 20, n), account="acct_a")],
                django_capture_on_commit_callbacks)

    chunk(1)  # the version moved long ago: it moves now
    assert re.search(r"Requests 4 ", _text(client.get("/account/", params)))
    clock.shift(3)
    chunk(2)  # inside the 10 s: left to one catch-up run 11 s later
    clock.shift(3)
    chunk(3)  # already waiting for that run: nothing more queued
    assert queued["later"] == [{"args": [[traffic["a"].pk]], "countdown": 11}]
    assert re.search(r"Requests 4 ", _text(client.get("/account/", params)))  # at most 11 s stale
    clock.shift(8)  # the catch-up's countdown after chunk 2
    tasks.usage_refresh_later.run(*queued["later"][0]["args"])
    assert re.search(r"Requests 6 ", _text(client.get("/account/", params)))


def test_a_page_cached_while_watched_is_not_shown_after_the_mark_expired(
        client, tmp_path, traffic, clock, queued, django_capture_on_commit_callbacks):
    a = traffic["a"]
    client.force_login(_member("alice", a))
    client.get("/account/")  # A is watched from now on
    _ingest(tmp_path, "watched", [record(id="a6", created_at=at(D1, 15), account="acct_a", model="lab/alpha",
                                         provider_name="ProvOne", api_key="k1", tokens_prompt=400,
                                         tokens_completion=100, total_cost=0.005)],
            django_capture_on_commit_callbacks)
    assert queued["prewarm"] == [[a.pk]]
    tasks.usage_prewarm.run(queued["prewarm"][0])  # cached for CACHE_SECONDS, longer than the mark lives
    version = usage.usage_version(a.pk)
    cache.delete(f"usage:watched:{a.pk}")  # the mark expired: nobody looked for USAGE_WATCH_SECONDS
    _ingest(tmp_path, "unwatched", [record(id="a7", created_at=at(D1, 16), account="acct_a", model="lab/beta",
                                           provider_name="ProvTwo", api_key="k2", tokens_prompt=300,
                                           tokens_completion=200, total_cost=0.02)],
            django_capture_on_commit_callbacks)
    assert queued["prewarm"] == [[a.pk]]  # neither moved nor prewarmed: A is not watched
    assert usage.usage_version(a.pk) == version
    period = params.period_parse(None)
    assert overview.usage_overview(account_id=a.pk, period=period).totals.requests == 5  # the stale page is there

    with CaptureQueriesContext(connection) as queries:
        text = _text(client.get("/account/"))
    # Computed anew under a new version: the fixture's $0.045 and 7,700 tokens in 4 requests, a6's
    # $0.005 and 500 tokens, a7's $0.02 and 500 tokens.
    assert re.search(r"Spend \$0\.07 ", text)
    assert re.search(r"Tokens 8\.7K ", text)
    assert re.search(r"Requests 6 ", text)
    assert sum("analytics_accountday" in q["sql"] for q in queries.captured_queries) == 2 + 1 + 2 + 1 + 2  # as above
    assert usage.usage_version(a.pk) != version
    activity = client.get("/account/activity/").context["activity"]
    assert (activity.total.spend, activity.total.requests) == (Decimal("0.07"), 6)

    # Watched again: the next chunk moves the new version at once and prewarms.
    _ingest(tmp_path, "again", [record(id="a8", created_at=at(D1, 17), account="acct_a", total_cost=0.01)],
            django_capture_on_commit_callbacks)
    assert queued["prewarm"] == [[a.pk], [a.pk]]
    assert re.search(r"Requests 7 ", _text(client.get("/account/")))


def test_a_view_of_a_watched_account_keeps_its_version_and_its_mark(clock, queued, settings):
    usage.usage_watch(account_id=7)
    version = usage.usage_version(7)
    clock.shift(settings.USAGE_WATCH_SECONDS - 1)
    usage.usage_watch(account_id=7)  # just before the mark expires: found, kept for another while
    assert usage.usage_version(7) == version
    clock.shift(settings.USAGE_WATCH_SECONDS - 1)
    assert cache.get("usage:watched:7") == 1  # its time to live was refreshed
    cache.delete("usage:watched:7")
    usage.usage_watch(account_id=7)  # not found: a new version
    assert usage.usage_version(7) != version


def test_a_catch_up_passes_over_an_account_no_longer_watched(clock, queued):
    usage.usage_watch(account_id=7)
    tasks.usage_refresh(account_ids=[7])
    clock.shift(3)
    tasks.usage_refresh(account_ids=[7])  # inside the 10 s: left to the catch-up
    version = usage.usage_version(7)
    assert queued["later"] == [{"args": [[7]], "countdown": 11}]
    cache.delete("usage:watched:7")
    clock.shift(8)
    tasks.usage_refresh_later.run([7])
    assert usage.usage_version(7) == version  # nothing to move: the next view starts a new version
    assert queued["prewarm"] == [[7]]
    usage.usage_watch(account_id=7)
    assert usage.usage_version(7) != version


def test_versions_never_repeat(clock, queued):
    seen = [usage.usage_version(7)]  # made by a page, before any chunk
    usage.usage_watch(account_id=7)  # the first view of an account not watched: a new one
    seen.append(usage.usage_version(7))
    tasks.usage_refresh(account_ids=[7])
    seen.append(usage.usage_version(7))
    clock.shift(61)
    tasks.usage_refresh(account_ids=[7, 8])
    seen.append(usage.usage_version(7))
    cache.delete("usage:version:7")  # evicted: the next page makes a new one
    seen.append(usage.usage_version(7))
    cache.delete("usage:watched:7")  # the mark expired: the next view starts a new one
    usage.usage_watch(account_id=7)
    seen.append(usage.usage_version(7))
    clock.shift(-3600)  # the clock stepped back: the same milliseconds come again
    for _ in range(3):
        cache.delete("usage:version:7")
        tasks.usage_refresh(account_ids=[7])
        seen.append(usage.usage_version(7))
    assert len(set(seen)) == len(seen) == 9
