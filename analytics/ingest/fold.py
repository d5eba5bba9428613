"""The rollup writer (INGEST_ROLLUPS=fold): fold what chunks appended to the delta into every rollup, exactly once.

In fold mode a chunk's transaction writes its generations, ledger debits and budget use as in chunk mode
(money is current the moment a chunk commits) and appends its rows, narrowed to the columns the rollups
read, to `analytics_rollupdelta` (its fallback attempts to `analytics_rollupdeltaattempt`): plain
INSERTs, no unique index, so two chunks never wait on each other's hot rollup rows (issue 35).

`rollups_fold` is the one writer of the rollups. In ONE transaction it takes a transaction-level
advisory lock (`pg_try_advisory_xact_lock`: busy means someone else is folding, so it returns), moves
every delta row visible to it into the loader's own staging tables (one statement: `WITH d AS (DELETE
… RETURNING …) INSERT INTO ingest_stage …`, both tables under one snapshot), runs the loader's very
upserts (`loader.rollup_sql()`: one GROUP BY per rollup over every chunk that arrived), and commits.
The DELETE and the upserts commit together, so every delta row is folded exactly once: a writer killed
or disconnected mid-fold rolls back and its rows are still in the delta for the next fold. (The DELETE
alone would already keep two folders from folding a row twice, since the second waits on the row and
then skips it; the lock keeps them from waiting on each other at all.) After its commit it sets off
what a chunk's fan-out sets off for the rollups in chunk mode: the rankings refresh and `usage_refresh`
of the folded accounts (analytics.ingest.fanout keeps only the billing checks per chunk in fold mode).

Who folds (the lock serializes them all):
- `manage.py rollup_writer [--interval S]`: the long-running writer, a fold every ROLLUP_FOLD_INTERVAL
  seconds (at once again after a fold that hit ROLLUP_FOLD_MAX_ROWS);
- the `rollup_fold` task (rollups queue), queued after each chunk commit: folding goes on where only
  Celery workers run (the demo, `make worker`); with a writer running it mostly finds the lock taken
  or nothing to fold;
- `manage.py ingest --wait`, while it waits: it returns once its batches are done and folded;
- a reprice batch, inside its own transaction and under the blocking lock, before it moves the
  rollups by its per-row deltas (analytics.repricing.services: its UPDATE finds only rows that exist).

Readers that must be exact to the last chunk:
- money checks never read the rollups: the gateway's spend check and reservations, key limits and
  budgets read `BudgetSpend` and the reservations (written in the chunk's transaction,
  billing.budgets), the balance is the ledger's; a budget made mid-period sums the generations
  (analytics.usage.spend.spend_of_generations). Nothing to wait for.
- the account's pages and usage API read the rollups: `analytics.delta.delta_settle` waits, before
  they read, until the account's delta rows that were committed before the request are folded,
  bounded by ROLLUP_READ_WAIT_SECONDS (about an interval plus a fold). Waiting rather than adding the
  delta: every query of the pages (by model, key, app, user, tag, by hour or by day, top N with an
  exact Other) would need a second, delta-shaped source; a wait keeps one source and costs nothing
  while the account has nothing unfolded (one probe of the delta's account index).
- the public rankings are refreshed after each fold; `ingest --wait` and a batch's `ranked_at` wait
  for its rows to be folded (analytics.rankings.cache.batches_mark_ranked).
- billing's alerts over closed hours and days (unusual spend, pace) and statements read the rollups
  seconds late at most: they look at periods that ended.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from celery import shared_task
from django.conf import settings
from django.db import connection, transaction

from analytics.models import IngestBatch
from analytics.rankings.tasks import rollup_rankings_refresh
from analytics.usage.tasks import usage_refresh

from . import loader

log = logging.getLogger(__name__)

# pg_advisory_xact_lock's key for "folding the delta into the rollups" (any constant of our own: 'fold').
FOLD_LOCK = 0x666F6C64


def _move_sql() -> str:
    """One statement: take at most %s delta rows and at most %s attempt rows into the staging tables."""
    def take(table: str) -> str:
        return f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} LIMIT %s))"
    rows, attempts = ", ".join(loader.DELTA_COLUMNS), ", ".join(loader.DELTA_ATTEMPT_COLUMNS)
    return (f"WITH d AS ({take(loader.DELTA_TABLE)} RETURNING {rows}),"
            f" a AS ({take(loader.DELTA_ATTEMPT_TABLE)} RETURNING {attempts}),"
            f" s AS (INSERT INTO ingest_stage ({rows}) SELECT {rows} FROM d)"
            f" INSERT INTO ingest_attempts ({attempts}) SELECT {attempts} FROM a")


@dataclass(frozen=True)
class Folded:
    rows: int  # generations folded
    attempts: int  # fallback attempts folded
    accounts: int  # distinct accounts among them
    seconds: float

    @property
    def full(self) -> bool:
        """The fold took as many rows as it may: more are probably waiting."""
        return max(self.rows, self.attempts) >= settings.ROLLUP_FOLD_MAX_ROWS


def rollups_fold(*, wait: bool = False, max_rows: int | None = None) -> Folded | None:
    """Fold every delta row visible now (at most `max_rows` of each table) into every rollup, exactly once.

    Returns None when another session holds the fold lock (unless `wait`: then it waits for it; a
    reprice does, inside its own transaction). Inside an outer transaction the fold commits with it.
    """
    started = time.monotonic()
    limit = max_rows or settings.ROLLUP_FOLD_MAX_ROWS
    with transaction.atomic(), connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
        else:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [FOLD_LOCK])
            if not cursor.fetchone()[0]:
                return None
        # As a chunk's apply: sorts and hash aggregates in memory, no JIT (temp tables have no statistics).
        cursor.execute("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off")
        loader.temp_tables_create(cursor)
        cursor.execute(_move_sql(), [limit, limit])
        cursor.execute("SELECT (SELECT count(*) FROM ingest_stage), (SELECT count(*) FROM ingest_attempts)")
        rows, attempts = cursor.fetchone()
        if not rows and not attempts:
            # A finished batch may still wait for the rankings (its last chunk held only duplicates, after
            # its rows were folded under the rate limit): its refresh is due now.
            transaction.on_commit(lambda: fold_fan_out(account_ids=[], folded=False))
            return Folded(0, 0, 0, time.monotonic() - started)
        for sql in loader.rollup_sql():
            cursor.execute(sql)
        cursor.execute("SELECT COALESCE(array_agg(DISTINCT account_id), '{}') FROM ingest_stage")
        accounts = cursor.fetchone()[0]
        transaction.on_commit(lambda: fold_fan_out(account_ids=accounts, folded=True))
    folded = Folded(rows, attempts, len(accounts), time.monotonic() - started)
    log.info("folded %s rows and %s attempts of %s accounts in %.3f s", rows, attempts, len(accounts),
             folded.seconds)
    return folded


def fold_fan_out(*, account_ids: list[int], folded: bool) -> None:
    """After a fold committed: what a chunk sets off for the rollups in chunk mode (analytics.ingest.fanout).

    The rankings version moves at once when a finished batch waits for it (its `ranked_at`, which
    `ingest --wait` waits for, is stamped only once its rows are folded), else under the usual rate
    limit; a fold that found nothing refreshes only for such a batch.
    """
    batch_end = IngestBatch.objects.filter(status=IngestBatch.Status.DONE, ranked_at__isnull=True,
                                           accepted__gt=0).exists()
    if folded or batch_end:
        rollup_rankings_refresh.delay(batch_end=batch_end)
    if account_ids:
        usage_refresh(account_ids=account_ids)


def delta_rows() -> int:
    """Rows (generations and attempts) waiting in the delta: 0 once everything committed is folded."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT (SELECT count(*) FROM {loader.DELTA_TABLE})"
                       f" + (SELECT count(*) FROM {loader.DELTA_ATTEMPT_TABLE})")
        return int(cursor.fetchone()[0])


# The task lives beside its service, not in analytics.ingest.tasks: the chunk's fan-out queues it, and the
# tasks module imports the chunk (an import cycle otherwise). Routed to the rollups queue (config.settings).
@shared_task(ignore_result=True)
def rollup_fold() -> None:
    """Fold what chunks appended, unless someone else is folding (a chunk queues one after its commit)."""
    while (folded := rollups_fold()) is not None and folded.full:
        pass
