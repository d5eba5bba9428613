"""Readers and the rollup delta (INGEST_ROLLUPS=fold): wait until an account's committed chunks are folded.

The account's pages and usage API read the rollups; in fold mode a committed chunk reaches them at the
rollup writer's next fold (analytics.ingest.fold, which says which readers wait and why). `delta_settle`
waits, bounded, for the fold of the account's delta rows committed before it was called, so that a page
computed after an ingest counts the whole ingest. Chunks committed while it waits are not waited for:
the account may be written to without end, and the page stands for the moment it was asked.

Its cost while nothing of the account waits: one probe of the delta's account index (migration 0021),
paid by every chunk's insert into the delta (figures in docs/ingest.md).
"""
from __future__ import annotations

import time

from django.conf import settings
from django.db import connections

from analytics.models import RollupDelta

_POLL_SECONDS = 0.05


def delta_settle(*, account_id: int, timeout: float | None = None) -> bool:
    """Wait until the account's delta rows committed before this call are folded (at most `timeout`
    seconds, ROLLUP_READ_WAIT_SECONDS by default); True when none is left. Chunk mode: True at once.

    Reads the primary (the delta is written there), before any replica is asked for the rollups.
    """
    if settings.INGEST_ROLLUPS != "fold":
        return True
    table = RollupDelta._meta.db_table
    deadline = time.monotonic() + (settings.ROLLUP_READ_WAIT_SECONDS if timeout is None else timeout)
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT chunk_id FROM {table} WHERE account_id = %s", [account_id])  # noqa: S608
        chunks = [row[0] for row in cursor.fetchall()]
        pause = _POLL_SECONDS
        while chunks and time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
            cursor.execute(f"SELECT DISTINCT chunk_id FROM {table} WHERE account_id = %s"  # noqa: S608
                           " AND chunk_id = ANY(%s)", [account_id, chunks])
            chunks = [row[0] for row in cursor.fetchall()]
    return not chunks
