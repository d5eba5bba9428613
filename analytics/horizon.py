"""Where the generation log starts once retention has dropped months (analytics.ingest.partitions):
what ingestion skips below, and what pages summed from generations cannot count before.

Retention attaches an empty partition `analytics_generation_expired` from MINVALUE up to the oldest
month kept; its upper bound is the horizon.
"""
from __future__ import annotations

from datetime import datetime

from core.replica import read_connection

EXPIRED = "analytics_generation_expired"
# The horizon in SQL: the upper bound of the expired partition, or -infinity without one. Read in
# the statement that inserts, after it has locked the parent, so retention cannot move it between.
HORIZON_OR_NULL_SQL = (
    "(SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']*)''\\)'))[1]::timestamptz"
    f" FROM pg_class c WHERE c.oid = to_regclass('{EXPIRED}'))")
HORIZON_SQL = f"COALESCE({HORIZON_OR_NULL_SQL}, '-infinity'::timestamptz)"


def horizon() -> datetime | None:
    """The start of the oldest month kept, once retention has dropped something; else None."""
    with read_connection().cursor() as cursor:
        cursor.execute(f"SELECT {HORIZON_OR_NULL_SQL}")
        return cursor.fetchone()[0]
