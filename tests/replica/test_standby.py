"""The public and account pages on a real streaming standby: what reads it, what never does, and what
happens when it lags or is down (core.replica).

Which server a query ran on is seen from each alias's captured queries; `pg_is_in_recovery()` on the
replica alias shows it is the standby.
"""
import logging
import re
import threading
import time

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from analytics.rankings.cache import rankings_invalidate
from analytics.usage.tasks import usage_prewarm
from billing.models import Account, Membership
from core import replica
from marketplace.models import Model
from tests.analytics.conftest import TODAY, at, record, run_batch, write_jsonl
from tests.billing.factories import member_of

from .conftest import on_the_standby, skip_without_replica

pytestmark = [skip_without_replica, on_the_standby]

ROLLUP_TABLES = re.compile(r'"(analytics_(?!ingest)\w+|marketplace_\w+)"')


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _ingest(tmp_path, name: str, *records) -> None:
    assert run_batch(write_jsonl(tmp_path / f"{name}.jsonl", list(records))).accepted == len(records)


def _alpha(id_: str, prompt: int, completion: int, cost: float, hour: int = 10) -> dict:
    return record(id=id_, created_at=at(TODAY, hour), model="lab/alpha", provider_name="ProvOne",
                  account="acct_a", api_key="k1", tokens_prompt=prompt, tokens_completion=completion,
                  total_cost=cost)


@pytest.fixture
def first(tmp_path, standby):
    """acct_a's first request (1,500 tokens, $0.015), replayed by the standby, and its owner alice."""
    _ingest(tmp_path, "first", _alpha("r1", 1000, 500, 0.015))
    Model.objects.filter(slug="lab/alpha").update(listed=True)  # a new model shows once staff list it
    alice = member_of(Account.objects.get(external_id="acct_a"), Membership.Role.OWNER, "alice")
    standby.sync()
    return alice


@pytest.fixture
def second(tmp_path):
    """Another 3,000 tokens and $0.03 for acct_a, committed on the primary (call after pausing the standby)."""
    return lambda: _ingest(tmp_path, "second", _alpha("r2", 2000, 1000, 0.03, hour=11))


class Reads:
    """The statements each server ran while inside."""

    def __enter__(self):
        self.primary = CaptureQueriesContext(connections["default"])
        self.standby = CaptureQueriesContext(connections[replica.REPLICA])
        self.primary.__enter__()
        self.standby.__enter__()
        return self

    def __exit__(self, *exc):
        self.standby.__exit__(*exc)
        self.primary.__exit__(*exc)

    @staticmethod
    def _tables(context) -> set[str]:
        return {table for query in context.captured_queries for table in ROLLUP_TABLES.findall(query["sql"])}

    @property
    def primary_tables(self) -> set[str]:
        return self._tables(self.primary)

    @property
    def standby_tables(self) -> set[str]:
        return self._tables(self.standby)


def _model_tokens(response) -> str:
    return re.search(r"1 alpha Lab ([\d.]+K?) ", _text(response)).group(1)


def test_the_replica_alias_is_the_standby(standby):
    with connections[replica.REPLICA].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        assert cursor.fetchone()[0] is True
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        assert cursor.fetchone()[0] is False


def test_the_rankings_page_reads_the_standby(client, first):
    with Reads() as reads:
        response = client.get("/rankings/", {"window": "day"})
    assert _model_tokens(response) == "1.5K"
    assert {"analytics_endpointhour", "marketplace_model"} <= reads.standby_tables
    assert reads.primary_tables == set()  # the primary was asked for its WAL position only
    assert [q["sql"] for q in reads.primary.captured_queries] == [
        "SELECT (pg_current_wal_lsn()) - '0/0'::pg_lsn"]


def test_a_lagging_standby_is_never_cached_under_a_new_version(client, first, second, standby, caplog, settings):
    """The version moved after a chunk the standby has not replayed: the page is computed on the primary."""
    settings.DATABASE_REPLICA_PAGE_WAIT_SECONDS = 0.25
    assert _model_tokens(client.get("/rankings/", {"window": "day"})) == "1.5K"
    standby.pause()
    second()
    rankings_invalidate()  # what the rankings refresh does after the chunk
    with caplog.at_level(logging.WARNING, logger="core.replica"), Reads() as reads:
        response = client.get("/rankings/", {"window": "day"})
    assert _model_tokens(response) == "4.5K"  # 1,500 + 3,000, not the standby's 1.5K
    assert reads.standby_tables == set()
    assert "analytics_endpointhour" in reads.primary_tables
    assert re.search(r"read replica \d+ bytes behind the primary after 0\.25 s: reading the primary", caplog.text)

    standby.resume()
    standby.sync()
    rankings_invalidate()
    caplog.clear()
    with Reads() as reads:
        response = client.get("/rankings/", {"window": "day"})
    assert _model_tokens(response) == "4.5K"
    assert "analytics_endpointhour" in reads.standby_tables
    assert caplog.text == ""


def test_the_prewarm_waits_until_the_standby_has_replayed_the_chunk(client, first, second, standby, caplog):
    client.force_login(first)
    assert "Tokens 1.5K" in _text(client.get("/account/"))
    account_id = first.memberships.get().account_id
    standby.pause()
    second()  # the chunk moves the account's version (its usage refresh): the account is watched
    resumer = threading.Timer(0.5, standby.resume)
    resumer.start()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="core.replica"), Reads() as reads:
        usage_prewarm([account_id])
    resumer.join()
    assert time.monotonic() - started >= 0.5  # it waited for the replay
    assert "analytics_accountday" in reads.standby_tables
    assert reads.primary_tables == set()
    assert caplog.text == ""
    with Reads() as reads:  # the prewarmed page: the new numbers, from the cache
        assert "Tokens 4.5K" in _text(client.get("/account/"))
    assert reads.standby_tables == reads.primary_tables == set()


def test_a_prewarm_past_its_wait_reads_the_primary(client, first, second, standby, caplog, settings):
    settings.DATABASE_REPLICA_WAIT_SECONDS = 0.3
    client.force_login(first)
    assert "Tokens 1.5K" in _text(client.get("/account/"))
    account_id = first.memberships.get().account_id
    standby.pause()
    second()
    with caplog.at_level(logging.WARNING, logger="core.replica"), Reads() as reads:
        usage_prewarm([account_id])
    assert re.search(r"read replica \d+ bytes behind the primary after 0\.30 s: reading the primary", caplog.text)
    assert "analytics_accountday" in reads.primary_tables
    assert reads.standby_tables == set()
    assert "Tokens 4.5K" in _text(client.get("/account/"))


def test_account_analytics_read_the_standby_and_billing_the_primary(client, first):
    client.force_login(first)
    for url in ("/account/", "/account/activity/", "/account/generations/", "/account/reports/"):
        with Reads() as reads:
            assert client.get(url).status_code == 200, url
        assert reads.standby_tables, url
        assert not reads.primary_tables, (url, reads.primary_tables)
    with Reads() as reads:
        text = _text(client.get("/account/credits/"))
    assert "Credits" in text
    assert reads.standby.captured_queries == []  # balances and the ledger: the primary only
    assert reads.primary.captured_queries


def test_a_browser_that_wrote_reads_the_primary_for_a_few_seconds(client, first, settings):
    """Signing in writes (the session, last_login): the pages after it read the primary until the pin ends."""
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice-123"})
    assert response.status_code == 302
    assert response.cookies[replica.PIN_COOKIE]["max-age"] == settings.DATABASE_REPLICA_PIN_SECONDS
    with Reads() as reads:
        assert "Tokens 1.5K" in _text(client.get("/account/"))
    assert reads.standby.captured_queries == []
    assert "analytics_accountday" in reads.primary_tables
    del client.cookies[replica.PIN_COOKIE]  # the cookie expired
    client.get("/rankings/")
    with Reads() as reads:
        client.get("/account/activity/")
    assert reads.standby_tables


def test_a_stopped_standby_leaves_the_pages_on_the_primary(client, first, standby, caplog, settings):
    settings.DATABASE_REPLICA_RETRY_SECONDS = 60
    assert _model_tokens(client.get("/rankings/", {"window": "day"})) == "1.5K"  # the replica connection is open
    standby.stop()
    rankings_invalidate()
    with caplog.at_level(logging.WARNING, logger="core.replica"), Reads() as reads:
        response = client.get("/rankings/", {"window": "day"})
    assert response.status_code == 200
    assert _model_tokens(response) == "1.5K"
    assert "analytics_endpointhour" in reads.primary_tables
    assert len(caplog.records) == 1
    assert re.match(r"read replica unavailable \(.+\): reading the primary for the next 60 s",
                    caplog.records[0].getMessage())

    # Within the retry time the standby is not tried again: no new warning, no wait on a dead server.
    caplog.clear()
    rankings_invalidate()
    client.force_login(first)
    with caplog.at_level(logging.WARNING, logger="core.replica"):
        assert "Tokens 1.5K" in _text(client.get("/account/"))
        assert _model_tokens(client.get("/rankings/", {"window": "week"})) == "1.5K"
    assert caplog.text == ""

    standby.start()
    standby.sync()
    replica._down_until = 0.0  # the retry time is over
    rankings_invalidate()
    with Reads() as reads:
        assert _model_tokens(client.get("/rankings/", {"window": "day"})) == "1.5K"
    assert "analytics_endpointhour" in reads.standby_tables


def test_a_standby_that_refuses_connections_from_the_start(client, first, standby, caplog):
    standby.stop()
    connections[replica.REPLICA].close()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="core.replica"):
        response = client.get("/rankings/", {"window": "day"})
    assert _model_tokens(response) == "1.5K"
    assert time.monotonic() - started < 10  # no long wait on a server that is gone
    assert re.match(r"read replica unavailable \(connect: .+\)", caplog.records[0].getMessage())
