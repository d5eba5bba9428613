"""Celery tasks of ingestion, and the entry points that queue them (`batch_queue`, `batch_split`,
`batch_retry`).

Every message of ingestion is sent from this module: the services (`batches`, `chunk`) never import
it, so it can import them without a cycle. Tasks take ids, load, call a service, and decide about
retries: ingest tasks ack late (a worker killed mid-chunk leaves the message to be redelivered)
and retry only errors that a second try can cure (core.retry.TRANSIENT). Names follow the module
(`analytics.ingest.tasks.*`); the names they had when one module held every analytics task
(`analytics.tasks.*`) still run, for one release,
so that messages already queued do (core.celery_names).
"""
import logging
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction

from analytics.models import IngestBatch
from core.celery_names import shared_task_renamed
from core.retry import TRANSIENT

from . import batches, chunk, files, partitions
from .files import IngestError

log = logging.getLogger(__name__)


def batch_queue(*, path: Path, source: str, fmt: str = "auto") -> IngestBatch:
    """Record a batch for a readable file and queue its split after commit (IngestError otherwise)."""
    with transaction.atomic():
        batch = batches.batch_create(path=path, source=source, fmt=fmt)
        transaction.on_commit(lambda: ingest_batch_split.delay(batch.pk))
    return batch


def batch_split(*, batch_id: int) -> IngestBatch:
    """Cut a batch's file into chunks and queue one task per chunk after commit (`batches.batch_split`)."""
    return batches.batch_split(batch_id=batch_id, queue_chunk=lambda index: ingest_chunk.delay(batch_id, index))


def batch_retry(*, batch_id: int) -> int:
    """Queue again the chunks of a batch that are not done (its split when it has none); returns how many."""
    pending = batches.batch_reopen(batch_id=batch_id)
    if pending is None:
        ingest_batch_split.delay(batch_id)
        return 1
    for index in pending:
        ingest_chunk.delay(batch_id, index)
    return len(pending)


def batches_stalled_requeue(*, idle_seconds: int) -> list[int]:
    """Queue again the undone chunks of batches that made no progress for `idle_seconds`.

    Re-queued chunks are safe: a chunk already done is skipped, and one runs exactly once.
    Returns the ids of the batches queued again.
    """
    stalled = batches.batches_stalled(idle_seconds=idle_seconds)
    for batch_id in stalled:
        batch_retry(batch_id=batch_id)
    if stalled:
        log.warning("re-queued stalled batches %s", stalled)
    return stalled


@shared_task_renamed(old_name="analytics.tasks.ingest_batch_split", acks_late=True, autoretry_for=TRANSIENT,
             retry_backoff=True, max_retries=8)
def ingest_batch_split(batch_id: int) -> int:
    """Cut a batch's file into chunks and queue them; returns the number of chunks."""
    try:
        return batch_split(batch_id=batch_id).chunks_total
    except IngestError:
        return 0  # recorded on the batch as failed; nothing a retry would change


@shared_task_renamed(old_name="analytics.tasks.ingest_chunk", bind=True, acks_late=True, autoretry_for=TRANSIENT,
             retry_backoff=True, retry_backoff_max=60, max_retries=10)
def ingest_chunk(self, batch_id: int, index: int) -> dict:
    """Apply one chunk of a batch exactly once."""
    try:
        result = chunk.chunk_ingest(batch_id=batch_id, index=index)
    except TRANSIENT:
        raise
    except Exception as error:
        # Not transient: a bug or a broken file. Record it on the batch, keep the message for the log.
        batches.batch_fail(batch_id=batch_id, error=f"chunk {index}: {type(error).__name__}: {error}")
        raise
    return {"accepted": result.accepted, "duplicates": result.duplicates, "rejected": result.rejected,
            "skipped": result.skipped}


@shared_task_renamed(old_name="analytics.tasks.ingest_stalled_requeue", ignore_result=True)
def ingest_stalled_requeue() -> list[int]:
    """Queue again the chunks of batches with no progress for INGEST_STALLED_SECONDS (lost broker messages)."""
    return batches_stalled_requeue(idle_seconds=settings.INGEST_STALLED_SECONDS)


@shared_task_renamed(old_name="analytics.tasks.ingest_files_expire", ignore_result=True)
def ingest_files_expire() -> list[str]:
    """Remove what failed batches and refused uploads left in the ingest folder after INGEST_FILE_RETENTION_DAYS."""
    return files.files_expire(older_than=timedelta(days=settings.INGEST_FILE_RETENTION_DAYS))


@shared_task_renamed(old_name="analytics.tasks.partitions_upkeep", ignore_result=True)
def partitions_upkeep() -> list[str]:
    """Create the generation partitions of this month and the next ones; empty the default partition."""
    done = partitions.partitions_ensure(months_ahead=settings.GENERATION_PARTITIONS_AHEAD)
    return [f"{month:%Y-%m}" for month in done.created]


@shared_task_renamed(old_name="analytics.tasks.partitions_retention", ignore_result=True)
def partitions_retention() -> list[str]:
    """Drop the raw generation partitions past GENERATION_RETENTION_MONTHS (rollups stay)."""
    done = partitions.retention_apply(months=settings.GENERATION_RETENTION_MONTHS)
    return [f"{month:%Y-%m}" for month in done.dropped]
