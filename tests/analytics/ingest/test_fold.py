"""Fold mode (analytics.ingest.fold): chunks append to the delta, the rollup writer folds it exactly once."""
import threading
import time
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection
from django.db.models import Sum

from analytics import ingest, rollups
from analytics.delta import delta_settle
from analytics.ingest import fold, loader
from analytics.ingest.fold import FOLD_LOCK, delta_rows, rollups_fold
from analytics.models import (
    AccountDay,
    EndpointHour,
    Generation,
    IngestBatch,
    IngestChunk,
    RollupDelta,
    RollupDeltaAttempt,
)
from analytics.rankings.cache import batches_mark_ranked
from billing.models import Account, BudgetSpend, LedgerEntry
from tests.analytics.conftest import D1, at, record, write_jsonl
from tests.analytics.ingest.test_rollup_property import rollups_assert_equal_generations
from tests.conftest import database_url

pytestmark = pytest.mark.django_db

MIXED = [  # two accounts, a fallback (an attempt of another provider), a failure, an app, users and tags
    record(id="f1", created_at=at(D1, 10), account="acct_a", tokens_prompt=100, tokens_completion=50,
           total_cost=0.25, user="u1", tags=["x"], origin="https://one.example/",
           provider_responses=[{"provider_name": "Other", "status": 502}, {"provider_name": "DeepInfra", "status": 200}]),
    record(id="f2", created_at=at(D1, 10, 5), account="acct_a", tokens_prompt=7, tokens_completion=3, total_cost=0.5),
    record(id="f3", created_at=at(D1, 11), account="acct_b", status=500, tokens_completion=0, latency=None,
           total_cost=...),
    record(id="f4", created_at=at(D1, 12), account="acct_b", tokens_prompt=1, tokens_completion=1, total_cost=1,
           is_byok=True),
]


@pytest.fixture
def fold_mode(settings):
    settings.INGEST_ROLLUPS = "fold"


def _chunks(tmp_path, records, *, lines: int = 2) -> IngestBatch:
    """Apply every chunk of a file (chunks of `lines`), folding nothing."""
    batch = ingest.batch_queue(path=write_jsonl(tmp_path / "f.jsonl", records), source="f.jsonl")
    ingest.batch_split(batch_id=batch.pk)
    for index in IngestChunk.objects.filter(batch=batch).values_list("index", flat=True):
        ingest.chunk_ingest(batch_id=batch.pk, index=index)
    return batch


def _rollups_empty() -> bool:
    return not any(r.model.objects.exists() for r in rollups.ROLLUPS)


def test_the_delta_tables_hold_exactly_the_staging_columns_the_rollups_read():
    with connection.cursor() as cursor:
        for table, columns, types in ((loader.DELTA_TABLE, loader.DELTA_COLUMNS, dict(loader.STAGE_COLUMNS)),
                                      (loader.DELTA_ATTEMPT_TABLE, loader.DELTA_ATTEMPT_COLUMNS,
                                       dict(loader.ATTEMPT_COLUMNS))):
            cursor.execute("SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns c"
                           " JOIN pg_attribute a ON a.attrelid = %s::regclass AND a.attname = c.column_name"
                           " WHERE c.table_name = %s", [table, table])
            found = dict(cursor.fetchall())
            kind = {"timestamptz": "timestamp with time zone"}
            assert found == {"chunk_id": "bigint", **{c: kind.get(types[c], types[c]) for c in columns}}, table
            # No unique index (chunks never wait on each other): only the account index of the pages' wait.
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [table])
            assert [row[0].split(" USING ")[1] for row in cursor.fetchall()] == (
                ["btree (account_id)"] if table == loader.DELTA_TABLE else [])
    # What the delta keeps is what the rollups name, and no more than what they need.
    assert {"account_id", "tags", "end_user", "latency_bucket", "finish_reason"} <= set(loader.DELTA_COLUMNS)
    assert not {"id", "created_at", "session_id", "provider_responses", "batch_id", "price_id"} & set(
        loader.DELTA_COLUMNS)
    assert loader.DELTA_ATTEMPT_COLUMNS == ("hour", "day", "model_id", "provider_id", "failed", "rate_limited")


def test_a_chunk_keeps_money_current_and_leaves_the_rollups_to_the_fold(tmp_path, fold_mode):
    batch = _chunks(tmp_path, MIXED)

    assert Generation.objects.count() == 4
    assert _rollups_empty()
    assert RollupDelta.objects.count() == 4
    assert RollupDeltaAttempt.objects.count() == 1  # the fallback to "Other"
    assert set(RollupDelta.objects.values_list("chunk_id", flat=True)) == set(
        IngestChunk.objects.filter(batch=batch).values_list("pk", flat=True))
    # Money is per chunk: debits (BYOK left out) and the budgets' use were written with the generations.
    balances = dict(Account.objects.values_list("external_id", "balance_units"))
    assert balances == {"acct_a": -7_500_000_000, "acct_b": 0}  # $0.75 in units of 1e-10 USD
    assert LedgerEntry.objects.aggregate(s=Sum("amount_units"))["s"] == -7_500_000_000

    folded = rollups_fold()
    assert (folded.rows, folded.attempts, folded.accounts) == (4, 1, 2)
    assert delta_rows() == 0
    rollups_assert_equal_generations()
    assert EndpointHour.objects.aggregate(a=Sum("attempts"), r=Sum("requests")) == {"a": 5, "r": 4}
    before = {r.table: list(r.model.objects.order_by(*r.keys).values_list(*r.counters)) for r in rollups.ROLLUPS}

    again = rollups_fold()
    assert (again.rows, again.attempts, again.accounts) == (0, 0, 0)
    assert {r.table: list(r.model.objects.order_by(*r.keys).values_list(*r.counters))
            for r in rollups.ROLLUPS} == before  # folded exactly once: a second fold adds nothing


def test_budget_spend_is_written_by_the_chunk_not_the_fold(tmp_path, fold_mode):
    from billing.models import Budget

    account = Account.objects.create(external_id="acct_a")
    Budget.objects.create(account=account, scope=Budget.Scope.ACCOUNT, period="month", amount_units=10**12)
    _chunks(tmp_path, MIXED[:2])
    assert _rollups_empty()
    assert BudgetSpend.objects.aggregate(s=Sum("spent_units"))["s"] == 7_500_000_000


def test_a_fold_that_fails_midway_rolls_back_and_the_next_folds_every_row_once(tmp_path, fold_mode, monkeypatch):
    _chunks(tmp_path, MIXED)
    statements = loader.rollup_sql()
    monkeypatch.setattr(loader, "rollup_sql", lambda: (*statements[:5], "SELECT 1/0"))
    with pytest.raises(Exception, match="division by zero"):
        rollups_fold()
    assert _rollups_empty()  # the upserts that ran rolled back with the delete
    assert (RollupDelta.objects.count(), RollupDeltaAttempt.objects.count()) == (4, 1)

    monkeypatch.undo()
    assert rollups_fold().rows == 4
    rollups_assert_equal_generations()


def test_a_fold_takes_at_most_max_rows_and_the_rest_waits(tmp_path, fold_mode):
    _chunks(tmp_path, MIXED, lines=1)
    assert rollups_fold(max_rows=3).rows == 3
    assert RollupDelta.objects.count() == 1
    assert rollups_fold(max_rows=3).rows == 1
    rollups_assert_equal_generations()


@pytest.mark.django_db(transaction=True)
def test_two_folders_never_both_fold(tmp_path, settings, monkeypatch):
    settings.INGEST_ROLLUPS = "fold"
    monkeypatch.setattr(fold.rollup_fold, "delay", lambda: None)  # no broker: the test folds
    _chunks(tmp_path, MIXED)
    with psycopg.connect(database_url(), autocommit=False) as other:  # another session folding
        other.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
        assert rollups_fold() is None
        assert delta_rows() == 5
        assert _rollups_empty()
    assert rollups_fold().rows == 4  # the lock went with the other session's transaction

    # Two at once for real: one holds the lock while its upserts wait on a rollup row; the other finds it busy.
    _chunks(tmp_path, [record(id="f9", created_at=at(D1, 10), account="acct_a")])
    results = []
    with psycopg.connect(database_url(), autocommit=False) as blocker:
        blocker.execute("SELECT 1 FROM analytics_endpointhour FOR UPDATE")
        first = threading.Thread(target=_in_thread(lambda: results.append(rollups_fold())))
        first.start()
        _wait(lambda: _lock_held(), message="the first fold never took the lock")
        assert rollups_fold() is None  # busy: the other is folding
        blocker.rollback()
    first.join(10)
    assert results[0].rows == 1
    rollups_assert_equal_generations()


def _in_thread(work):
    """`work` for another thread, closing that thread's own database connection after it."""
    def run():
        try:
            work()
        finally:
            connection.close()
    return run


def _lock_held() -> bool:
    with psycopg.connect(database_url(), autocommit=True) as probe:
        return bool(probe.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s",
                                  [FOLD_LOCK]).fetchone()[0])


def _wait(predicate, *, message: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_page_waits_for_the_fold_of_the_chunks_committed_before_it_and_no_longer(tmp_path, settings, monkeypatch):
    settings.INGEST_ROLLUPS = "fold"
    monkeypatch.setattr(fold.rollup_fold, "delay", lambda: None)
    _chunks(tmp_path, MIXED)
    account = Account.objects.get(external_id="acct_a")
    other = Account.objects.create(external_id="acct_quiet")

    assert delta_settle(account_id=other.pk, timeout=0) is True  # nothing of it waits
    started = time.monotonic()
    assert delta_settle(account_id=account.pk, timeout=0.3) is False  # nobody folds: bounded
    assert 0.3 <= time.monotonic() - started < 2

    folder = threading.Timer(0.4, _in_thread(rollups_fold))
    folder.start()
    started = time.monotonic()
    assert delta_settle(account_id=account.pk, timeout=10) is True
    assert 0.3 < time.monotonic() - started < 5
    folder.join()
    assert AccountDay.objects.filter(account=account).aggregate(n=Sum("requests"))["n"] == 2

    settings.INGEST_ROLLUPS = "chunk"  # chunk mode never looks
    assert delta_settle(account_id=account.pk, timeout=0) is True


def test_a_finished_batch_is_in_the_rankings_only_once_its_rows_are_folded(tmp_path, fold_mode):
    batch = _chunks(tmp_path, MIXED)
    batch.refresh_from_db()
    assert batch.status == IngestBatch.Status.DONE
    assert batches_mark_ranked() == 0
    rollups_fold()
    assert batches_mark_ranked() == 1
    batch.refresh_from_db()
    assert batch.in_rankings


def test_a_reprice_of_rows_still_in_the_delta_moves_the_rollups_exactly(tmp_path, fold_mode):
    from decimal import Decimal

    from analytics.repricing.services import reprice_apply, reprice_plan
    from marketplace.models import EndpointPrice, Model, Provider
    from marketplace.price_history import endpoint_price_set
    from tests.marketplace.factories import EndpointFactory

    alpha = {"model": "lab/alpha", "provider_name": "ProvOne"}
    _chunks(tmp_path, [record(id="seed", created_at=at(D1, 1), total_cost=0.1, **alpha)])
    rollups_fold()
    endpoint = EndpointFactory(model=Model.objects.get(slug="lab/alpha"), provider=Provider.objects.get(name="ProvOne"),
                               prompt_price=Decimal("0.000001"), completion_price=Decimal("0.000002"))
    EndpointPrice.objects.create(endpoint=endpoint, valid_from=datetime(2000, 1, 1, tzinfo=UTC),
                                 prompt_price=Decimal("0.000001"), completion_price=Decimal("0.000002"))
    ingest.pricebook_reset()
    (tmp_path / "g").mkdir()
    _chunks(tmp_path / "g", [record(id=f"r{i}", created_at=at(D1, 2 + i), account=f"acct_{i % 2}",
                                    tokens_prompt=1000 * (i + 1), tokens_completion=100, total_cost=..., **alpha)
                             for i in range(5)])
    assert delta_rows() == 5  # catalog-priced and not folded yet
    price = endpoint_price_set(model_id=endpoint.model_id, provider_id=endpoint.provider_id,
                               valid_from=datetime(2000, 1, 1, tzinfo=UTC), prompt=Decimal("0.000003"),
                               completion=Decimal("0.000007"))
    plan = reprice_plan(model_id=endpoint.model_id, provider_id=endpoint.provider_id, price_id=price.pk,
                        start=datetime(2000, 1, 1, tzinfo=UTC), created_by="staff")
    assert reprice_apply(reprice_id=plan.reprice_id, actor="staff", batch_rows=2).requests == 5
    assert delta_rows() == 0  # the reprice folded first, under the lock
    rollups_assert_equal_generations()
