"""Reads of ingestion state for the operator pages and the API."""
from collections.abc import Iterator

from django.db.models import QuerySet

from analytics.models import IngestBatch, Reject


def batches_recent() -> QuerySet[IngestBatch]:
    """Batches newest first."""
    return IngestBatch.objects.order_by("-id")


def rejects_of_batch(*, batch_id: int) -> QuerySet[Reject]:
    """A batch's rejected records in line order."""
    return Reject.objects.filter(batch_id=batch_id).order_by("line")


def rejects_rows(*, batch_id: int) -> Iterator[tuple]:
    """Rows of a batch's rejects CSV, streamed from the database in line order."""
    for reject in rejects_of_batch(batch_id=batch_id).iterator(chunk_size=2000):
        yield (reject.batch_id, reject.line, reject.reason, reject.raw)


def ingest_lag_recent(*, batches: int = 20) -> float | None:
    """Median seconds from a batch queued to its data in the rankings, over the latest ranked batches."""
    lags = sorted(b.lag_seconds for b in IngestBatch.objects.filter(ranked_at__isnull=False)
                  .order_by("-id").only("created_at", "ranked_at")[:batches])
    if not lags:
        return None
    middle = len(lags) // 2
    return lags[middle] if len(lags) % 2 else (lags[middle - 1] + lags[middle]) / 2
