"""Celery tasks of ingestion: thin wrappers that load ids and call `analytics.ingest`.

Ingest tasks ack late (a worker killed mid-chunk leaves the message to be redelivered) and retry
only errors that a second try can cure: lost connections, deadlocks, serialization failures.
"""
import psycopg
from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError

from . import ingest, partitions, usage
from .rankings import rankings_invalidate, rankings_prewarm

# psycopg's own classes too: the COPY of a chunk runs on the raw psycopg cursor, outside Django's
# error wrapper, so a connection dropped mid-COPY raises psycopg.OperationalError (AdminShutdown,
# "terminating connection due to administrator command"), not django.db.OperationalError.
TRANSIENT = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError,
             ConnectionError, TimeoutError)


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=8)
def ingest_batch_split(batch_id: int) -> int:
    """Cut a batch's file into chunks and queue them; returns the number of chunks."""
    try:
        return ingest.batch_split(batch_id=batch_id).chunks_total
    except ingest.IngestError:
        return 0  # recorded on the batch as failed; nothing a retry would change


@shared_task(bind=True, acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, retry_backoff_max=60,
             max_retries=10)
def ingest_chunk(self, batch_id: int, index: int) -> dict:
    """Apply one chunk of a batch exactly once."""
    try:
        result = ingest.chunk_ingest(batch_id=batch_id, index=index)
    except TRANSIENT:
        raise
    except Exception as error:
        # Not transient: a bug or a broken file. Record it on the batch, keep the message for the log.
        ingest.batch_fail(batch_id=batch_id, error=f"chunk {index}: {type(error).__name__}: {error}")
        raise
    return {"accepted": result.accepted, "duplicates": result.duplicates, "rejected": result.rejected,
            "skipped": result.skipped}


RANKINGS_MAX_AGE_SECONDS = 60


@shared_task(ignore_result=True)
def rollup_rankings_refresh() -> None:
    """Bump the rankings version at most once a minute, then compute the new rankings ahead.

    Under continuous ingestion every chunk asks; the rate limit keeps pages served from the cache
    (at most a minute stale), and the prewarm means visitors never wait for a cold computation.
    A request inside the minute leaves one catch-up run behind, so the last chunk of a batch is
    never left out of the rankings.
    """
    if cache.add("rankings:bumped", 1, RANKINGS_MAX_AGE_SECONDS):
        rankings_invalidate()
        ingest.batches_mark_ranked()
        rankings_prewarm()
    elif cache.add("rankings:pending", 1, RANKINGS_MAX_AGE_SECONDS):
        rollup_rankings_refresh.apply_async(countdown=RANKINGS_MAX_AGE_SECONDS + 1)


@shared_task(ignore_result=True)
def ingest_stalled_requeue() -> list[int]:
    """Queue again the chunks of batches with no progress for INGEST_STALLED_SECONDS (lost broker messages)."""
    return ingest.batches_stalled_requeue(idle_seconds=settings.INGEST_STALLED_SECONDS)


@shared_task(ignore_result=True)
def usage_refresh_later(account_ids: list[int]) -> None:
    """The catch-up run of `usage.usage_refresh` for accounts whose version had moved less than a minute before."""
    usage.usage_refresh(account_ids=account_ids, catch_up=True)


@shared_task(ignore_result=True)
def usage_prewarm(account_ids: list[int]) -> None:
    """Compute the watched accounts' default overview and activity ahead, after their version moved."""
    for account_id in account_ids:
        usage.usage_prewarm(account_id=account_id)


@shared_task(ignore_result=True)
def partitions_upkeep() -> list[str]:
    """Create the generation partitions of this month and the next ones; empty the default partition."""
    done = partitions.partitions_ensure(months_ahead=settings.GENERATION_PARTITIONS_AHEAD)
    return [f"{month:%Y-%m}" for month in done.created]


@shared_task(ignore_result=True)
def partitions_retention() -> list[str]:
    """Drop the raw generation partitions past GENERATION_RETENTION_MONTHS (rollups stay)."""
    done = partitions.retention_apply(months=settings.GENERATION_RETENTION_MONTHS)
    return [f"{month:%Y-%m}" for month in done.dropped]
