"""Monthly range partitions of raw generations, and their retention.

`analytics_generation` is partitioned by `created_at`: one partition per UTC month
(`analytics_generation_p2026_11`), a default partition for rows of months that have none yet, and,
once retention has run, `analytics_generation_expired`, an empty partition from MINVALUE to the
*horizon* (the start of the oldest month kept) whose `CHECK (false)` refuses any row. Ingestion
skips rows below the horizon before they reach `GenerationKey` (analytics.ingest.loader), so a re-sent
record of a dropped month is counted as a duplicate and never reaches the rollups twice.

Upkeep (beat, hourly): create the partitions of the current month and the next ones ahead, and
move the default partition's rows into partitions of their own months. Each month is built as a
plain table and then ATTACHed, under SHARE on the parent: inserts wait for it (at most a chunk's
commit plus the move, about once a month), the generation log's reads go on except while ATTACH
scans the default partition (kept small by this very task) under ACCESS EXCLUSIVE. Retention (beat, daily) drops whole months past
the window: DROP and DETACH take ACCESS EXCLUSIVE on the parent, so they wait for running chunk
transactions and block new ones for the (short) duration. Both use `lock_timeout` and give up
rather than queue behind a long chunk (the next run retries), and one advisory lock, so two
schedulers never race.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import OperationalError, connection, transaction

from analytics.horizon import EXPIRED, HORIZON_SQL, horizon

PARENT = "analytics_generation"
DEFAULT = "analytics_generation_default"
_MONTHLY = re.compile(r"^analytics_generation_p(\d{4})_(\d{2})$")
_ADVISORY_KEY = 0x7467_0009  # one upkeep or retention run at a time
LOCK_TIMEOUT = "5s"


def month_start(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def month_add(month: date, months: int) -> date:
    year, index = divmod(month.year * 12 + month.month - 1 + months, 12)
    return date(year, index + 1, 1)


def partition_name(month: date) -> str:
    return f"{PARENT}_p{month:%Y_%m}"


def _bound(month: date) -> str:
    return f"'{month:%Y-%m-%d} 00:00:00+00'"


def is_partitioned() -> bool:
    """True when the generation table is partitioned (after migration 0007)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [PARENT])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def partition_months() -> list[date]:
    """The months that have a partition, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                       " WHERE i.inhparent = to_regclass(%s)", [PARENT])
        names = [name for (name,) in cursor.fetchall()]
    return sorted(date(int(m[1]), int(m[2]), 1) for name in names if (m := _MONTHLY.match(name)))


def _lock_timed_out(error: OperationalError) -> bool:
    return getattr(error.__cause__, "sqlstate", None) == "55P03"  # lock_not_available


def _claim(cursor) -> bool:
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_ADVISORY_KEY])
    return cursor.fetchone()[0]


def _month_attach(cursor, month: date) -> int:
    """Build one month's partition from the default partition's rows of that month and attach it.

    Runs in the caller's transaction. SHARE on the parent first: it waits for the chunk
    transactions that are inserting and holds new ones back until commit (reads go on). Without it
    a chunk that planned its insert before the ATTACH would route a row of this month to the
    default partition afterwards and fail its partition check; and rows could arrive between the
    move and the attach. ATTACH then scans the default partition (small) under ACCESS EXCLUSIVE.
    Returns the rows moved.
    """
    name, start, end = partition_name(month), _bound(month), _bound(month_add(month, 1))
    cursor.execute(f"LOCK TABLE {PARENT} IN SHARE MODE")
    cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    cursor.execute(f"WITH moved AS (DELETE FROM {DEFAULT} WHERE created_at >= {start} AND created_at < {end}"
                   f" RETURNING *) INSERT INTO {name} SELECT * FROM moved")
    moved = cursor.rowcount
    # The check lets ATTACH skip scanning the new table; the parent's index is built on it here.
    cursor.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_range"
                   f" CHECK (created_at >= {start} AND created_at < {end})")
    cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ({start}) TO ({end})")
    cursor.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_range")
    return moved


@dataclass(frozen=True)
class Upkeep:
    created: list[date]
    moved_rows: int
    skipped: bool = False


def partitions_ensure(*, months_ahead: int, now: datetime | None = None) -> Upkeep:
    """Create the partitions of this month and `months_ahead` months after it, and give every month
    that has rows in the default partition (at or past the horizon) a partition of its own.

    One transaction per month, so a lock that cannot be had within LOCK_TIMEOUT costs one month's
    work, not the run's. Idempotent.
    """
    if not is_partitioned():
        return Upkeep(created=[], moved_rows=0)
    current = month_start(now or datetime.now(UTC))
    wanted = {month_add(current, n) for n in range(months_ahead + 1)}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC')::date FROM {DEFAULT}"
                       f" WHERE created_at >= {HORIZON_SQL}")
        wanted |= {row[0] for row in cursor.fetchall()}
    created, moved = [], 0
    for month in sorted(wanted - set(partition_months())):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                if not _claim(cursor):
                    return Upkeep(created=created, moved_rows=moved, skipped=True)
                if month in partition_months():  # another run made it meanwhile
                    continue
                moved += _month_attach(cursor, month)
                created.append(month)
        except OperationalError as error:
            if not _lock_timed_out(error):
                raise
            _default_vacuum(moved)
            return Upkeep(created=created, moved_rows=moved, skipped=True)  # the next run goes on
    _default_vacuum(moved)
    return Upkeep(created=created, moved_rows=moved)


def _default_vacuum(removed: int) -> None:
    """Vacuum the default partition after rows left it.

    The generation log reads the default partition's account index on every unpruned page: left to
    autovacuum, the dead entries of moved rows cost each page a walk over them (docs/scaling.md, "Found
    at 10M and fixed", has the figures). VACUUM takes SHARE UPDATE EXCLUSIVE on it only;
    inserts and reads go on. It cannot run inside a transaction (tests); autovacuum does it then.
    """
    if removed and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (ANALYZE) {DEFAULT}")


@dataclass(frozen=True)
class Retention:
    horizon: datetime | None
    dropped: list[date]
    keys_deleted: int
    skipped: bool = False


def retention_horizon(*, months: int, now: datetime | None = None) -> date | None:
    """The start of the oldest month to keep: months that ended more than `months` ago go."""
    if months <= 0:
        return None
    return month_add(month_start(now or datetime.now(UTC)), -months)


def retention_apply(*, months: int, now: datetime | None = None) -> Retention:
    """Drop the raw partitions wholly older than `months` months, and their keys; rollups stay.

    In one transaction under ACCESS EXCLUSIVE on the parent: drop the monthly partitions that end
    at or before the horizon, delete the default partition's rows below it, and replace the expired
    partition by one reaching the new horizon. Then, in a second transaction that locks nothing but
    the rows, delete the keys below the horizon (ingestion already ignores records below it, so the
    keys are not needed in between). `months` 0 keeps everything.
    """
    target = retention_horizon(months=months, now=now)
    if target is None or not is_partitioned():
        return Retention(horizon=None, dropped=[], keys_deleted=0)
    bound = _bound(target)
    current = horizon()
    if current is not None and current.date() >= target:
        return Retention(horizon=current, dropped=[], keys_deleted=0)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if not _claim(cursor):
                return Retention(horizon=current, dropped=[], keys_deleted=0, skipped=True)
            cursor.execute(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
            dropped = [month for month in partition_months() if month_add(month, 1) <= target]
            for month in dropped:
                cursor.execute(f"DROP TABLE {partition_name(month)}")
            cursor.execute(f"DELETE FROM {DEFAULT} WHERE created_at < {bound}")
            strays = cursor.rowcount
            cursor.execute(f"DROP TABLE IF EXISTS {EXPIRED}")
            cursor.execute(f"CREATE TABLE {EXPIRED} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS,"
                           " CONSTRAINT generation_expired CHECK (false))")
            cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {EXPIRED} FOR VALUES FROM (MINVALUE) TO ({bound})")
    except OperationalError as error:
        if not _lock_timed_out(error):
            raise
        return Retention(horizon=current, dropped=[], keys_deleted=0, skipped=True)  # the next run retries
    _default_vacuum(strays)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM analytics_generationkey WHERE created_at < {bound}")
        keys_deleted = cursor.rowcount
    return Retention(horizon=horizon(), dropped=dropped, keys_deleted=keys_deleted)
