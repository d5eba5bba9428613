"""Set-based apply of one chunk: stage rows, insert the new generations, roll up exactly those.

COPY into a temporary staging table; the chunk's ids go into the key table
(`analytics_generationkey`, the one unique index over every monthly partition), by a plain insert
when none was seen before and by `ON CONFLICT (id) DO NOTHING RETURNING id` after a duplicate
(concurrent chunks wait on each other's keys, so a generation is inserted once); the staging rows
whose key did not go in are dropped, the rest become generations and are upserted into the
rollups.

Every upsert groups and orders by its key, so concurrent chunks take row locks in one order and
cannot deadlock. Must run inside the caller's transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

import orjson
from django.db import IntegrityError, connection, transaction
from psycopg.types.json import set_json_dumps

from analytics import rollups
from analytics.counters import SPEND, UNPRICED


class StageRow(NamedTuple):
    """One row of `ingest_stage`, built by `analytics.ingest.stage.stage_rows`.

    The field order is the staging table's column order (COPY): a NamedTuple
    is a tuple, so COPY's `write_row` takes a row unchanged.
    """

    id: str
    created_at: datetime
    hour: datetime
    day: date
    account_id: int
    api_key_id: int  # 0: none
    model_id: int
    provider_id: int
    app_id: int  # 0: none
    batch_id: int
    tokens_prompt: int
    tokens_completion: int
    tokens_reasoning: int
    tokens_cached: int
    cost_units: int
    is_byok: bool
    latency: int | None
    generation_time: int | None
    status: int
    finish_reason: str
    streamed: bool | None
    cancelled: bool | None
    num_media_prompt: int | None
    num_media_completion: int | None
    num_search_results: int | None
    provider_responses: list[dict] | None
    failed: int
    own_attempts: int
    own_failed: int
    latency_bucket: int | None
    throughput_bucket: int | None
    end_user: str  # "": none
    session_id: str  # "": none
    tags: str  # ",a,b,"; "": none
    own_rate_limited: int  # own_attempts answered 429 (not in own_failed)
    cost_source: int  # Generation.CostSource
    price_id: int | None  # the EndpointPrice that priced it (Generation.price_id)


class AttemptRow(NamedTuple):
    """A provider_responses entry of another provider than the one that served (a fallback), with its
    generation's id (to drop it with a duplicate generation) and the hour, day and model it counts in."""

    gen_id: str
    hour: datetime
    day: date
    model_id: int
    provider_id: int
    failed: int  # a non-2xx answer other than 429
    rate_limited: int  # a 429


# The chunk's staging table: after `apply`, its rows are the inserted generations (until the commit).
STAGE_TABLE = "ingest_stage"

# The PostgreSQL type of every staging column, by name.
_STAGE_TYPES = {
    "id": "text", "created_at": "timestamptz", "hour": "timestamptz", "day": "date",
    "account_id": "bigint", "api_key_id": "bigint", "model_id": "bigint", "provider_id": "bigint",
    "app_id": "bigint", "batch_id": "bigint",
    "tokens_prompt": "bigint", "tokens_completion": "bigint", "tokens_reasoning": "bigint",
    "tokens_cached": "bigint", "cost_units": "bigint", "is_byok": "boolean",
    "latency": "integer", "generation_time": "integer", "status": "smallint", "finish_reason": "text",
    "streamed": "boolean", "cancelled": "boolean", "num_media_prompt": "integer",
    "num_media_completion": "integer", "num_search_results": "integer", "provider_responses": "jsonb",
    "failed": "smallint", "own_attempts": "integer", "own_failed": "integer",
    "latency_bucket": "smallint", "throughput_bucket": "smallint",
    "end_user": "text", "session_id": "text", "tags": "text", "own_rate_limited": "integer", "cost_source": "smallint",
    "price_id": "bigint",
}
_ATTEMPT_TYPES = {"gen_id": "text", "hour": "timestamptz", "day": "date", "model_id": "bigint",
                  "provider_id": "bigint", "failed": "smallint", "rate_limited": "smallint"}


def _columns(row: type[tuple], types: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """(name, PostgreSQL type) of every column, in the row's field order; each field has one type."""
    if set(types) != set(row._fields):
        raise TypeError(f"{row.__name__} fields and column types differ: {set(types) ^ set(row._fields)}")
    return tuple((name, types[name]) for name in row._fields)


# The staging tables' columns: the rows' fields, in their order.
STAGE_COLUMNS = _columns(StageRow, _STAGE_TYPES)
ATTEMPT_COLUMNS = _columns(AttemptRow, _ATTEMPT_TYPES)

GENERATION_COLUMNS = (
    "id", "created_at", "account_id", "api_key_id", "model_id", "provider_id", "app_id", "batch_id",
    "tokens_prompt", "tokens_completion", "tokens_reasoning", "tokens_cached", "cost_units",
    "is_byok", "latency", "generation_time", "status", "finish_reason", "streamed", "cancelled",
    "num_media_prompt", "num_media_completion", "num_search_results", "provider_responses",
    "end_user", "session_id", "tags", "cost_source", "price_id",
)
_GENERATION_SELECT = ", ".join(
    f"NULLIF({c}, 0)" if c in ("api_key_id", "app_id") else c for c in GENERATION_COLUMNS)

@dataclass(frozen=True)
class Applied:
    inserted: int
    spend_by_account: dict[int, int]
    unpriced: int = 0  # inserted rows Tokengrid could not price


def _upsert(table: str, keys: tuple[str, ...], sums: dict[str, str], source: str) -> str:
    """Build `INSERT ... SELECT ... GROUP BY key ORDER BY key ON CONFLICT DO UPDATE (add)`."""
    columns = (*keys, *sums)
    select = ", ".join((*keys, *sums.values()))
    key_list = ", ".join(keys)
    updates = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in sums)
    return (f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} FROM {source} "
            f"GROUP BY {key_list} ORDER BY {key_list} "
            f"ON CONFLICT ({key_list}) DO UPDATE SET {updates}")


def rollup_sql() -> tuple[str, ...]:
    """Every rollup's upsert (analytics.rollups.ROLLUPS, in its order, the lock order)."""
    return tuple(_upsert(r.table, r.keys, r.counters, r.loader_source) for r in rollups.ROLLUPS)


# The fallback attempts of generations that were not inserted (duplicates) count nowhere.
_ATTEMPTS_OF_DROPPED_SQL = ("DELETE FROM ingest_attempts WHERE NOT EXISTS"
                            " (SELECT 1 FROM ingest_stage s WHERE s.id = ingest_attempts.gen_id)")
SPEND_SQL = f"SELECT account_id, SUM({SPEND}) FROM ingest_stage GROUP BY account_id ORDER BY account_id"
UNPRICED_SQL = f"SELECT COUNT(*) FROM ingest_stage WHERE {UNPRICED.sql()}"


def _create_temp_tables(cursor) -> None:
    for table, columns in (("ingest_stage", STAGE_COLUMNS), ("ingest_attempts", ATTEMPT_COLUMNS)):
        spec = ", ".join(f"{name} {kind}" for name, kind in columns)
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({spec}) ON COMMIT DELETE ROWS")
        cursor.execute(f"TRUNCATE {table}")


def _json(value) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _load(cursor, stage: list[StageRow], extra_attempts: list[AttemptRow]) -> int:
    raw = cursor.cursor  # the psycopg cursor under Django's wrapper
    set_json_dumps(_json, context=raw)
    names = ", ".join(name for name, _ in STAGE_COLUMNS)
    # Binary COPY: psycopg's C dumpers adapt each typed value without going through text.
    with raw.copy(f"COPY ingest_stage ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([kind for _, kind in STAGE_COLUMNS])
        for row in stage:
            copy.write_row(row)
    if extra_attempts:
        names = ", ".join(name for name, _ in ATTEMPT_COLUMNS)
        with raw.copy(f"COPY ingest_attempts ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([kind for _, kind in ATTEMPT_COLUMNS])
            for row in extra_attempts:
                copy.write_row(row)
    return _generations_insert(cursor, len(stage))


def _generations_insert(cursor, staged: int) -> int:
    """Insert the chunk's new generations; drop every other staging row; return the number inserted.

    The ids go into the narrow key table first (one unique index over every month, since the
    partitioned generation table cannot have one on `id` alone). Most chunks hold no id seen
    before, so a plain insert of the keys is tried first, in a savepoint: it costs a third of
    `ON CONFLICT ... RETURNING` and the anti-join that follows it. A duplicate (a re-sent file, or
    a concurrent chunk with the same id, which the plain insert waits for) fails it with a unique
    violation; the savepoint rolls back and the keys go in with `ON CONFLICT (id) DO NOTHING`,
    which skips them. Both insert in id order, so two chunks never deadlock. Rows below the
    retention horizon (their month was dropped, analytics.ingest.partitions) are skipped like duplicates.
    Only the staging rows whose key went in stay, and they alone become generations (routed to
    their month's partition) and reach the rollups.
    """
    from analytics.horizon import HORIZON_SQL

    # Locked first (the lock the insert takes anyway), so retention cannot move the horizon and drop
    # months between reading it here and routing rows below.
    cursor.execute("LOCK TABLE analytics_generation IN ROW EXCLUSIVE MODE")
    keys = (f"INSERT INTO analytics_generationkey (id, created_at) SELECT id, created_at FROM ingest_stage"
            f" WHERE created_at >= {HORIZON_SQL} ORDER BY id")
    try:
        with transaction.atomic():
            cursor.execute(keys)
            keyed = cursor.rowcount
    except IntegrityError:
        cursor.execute(f"WITH k AS ({keys} ON CONFLICT (id) DO NOTHING RETURNING id)"
                       " DELETE FROM ingest_stage s WHERE NOT EXISTS (SELECT 1 FROM k WHERE k.id = s.id)")
        keyed = staged - cursor.rowcount
    else:
        if keyed < staged:  # rows below the horizon
            cursor.execute(f"DELETE FROM ingest_stage WHERE created_at < {HORIZON_SQL}")
    if keyed < staged:
        cursor.execute(_ATTEMPTS_OF_DROPPED_SQL)
    if keyed:
        cursor.execute(f"INSERT INTO analytics_generation ({', '.join(GENERATION_COLUMNS)})"
                       f" SELECT {_GENERATION_SELECT} FROM ingest_stage")
    return keyed


def apply(*, stage: list[StageRow], extra_attempts: list[AttemptRow]) -> Applied:
    """Insert the new generations of a chunk and add exactly them into every rollup."""
    if not stage:
        return Applied(inserted=0, spend_by_account={})
    with connection.cursor() as cursor:
        # The sorts and hash aggregates of a 50k-row chunk fit in memory instead of spilling to
        # disk. No JIT: the staging tables have no statistics, so the planner overestimates the
        # endpoint rollups' join and compiled them, which cost more than running them.
        cursor.execute("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off")
        _create_temp_tables(cursor)
        inserted = _load(cursor, stage, extra_attempts)
        if inserted:
            for sql in rollup_sql():
                cursor.execute(sql)
            cursor.execute(SPEND_SQL)
            spend = {account_id: int(total) for account_id, total in cursor.fetchall() if total}
            cursor.execute(UNPRICED_SQL)
            unpriced = int(cursor.fetchone()[0])
        else:
            spend, unpriced = {}, 0
    return Applied(inserted=inserted, spend_by_account=spend, unpriced=unpriced)
