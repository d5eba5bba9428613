"""Ingestion: a file becomes a batch of chunks; each chunk is parsed, registered, priced and applied
exactly once.

Flow: `tasks.batch_queue` (a batch row, then the split task after commit) -> `batches.batch_split`
(format, header, byte ranges of `INGEST_CHUNK_LINES` lines, one task per chunk) ->
`chunk.chunk_ingest` (parse with `formats`, build `stage` rows, then ONE transaction through
`loader`) -> after commit `fanout.chunk_fan_out`. `files` holds the ingest folder, `prices` the
price book, `partitions` the raw table's months. The demo traffic generator is `analytics.demo`.

The names below are the package's entry points, for callers that read `analytics.ingest.X`.
"""
from .batches import batch_fail, batch_wait
from .chunk import ChunkResult, chunk_ingest
from .fanout import chunk_fan_out
from .files import IngestError
from .prices import pricebook_reset
from .tasks import batch_queue, batch_retry, batch_split, batches_stalled_requeue

__all__ = ["ChunkResult", "IngestError", "batch_fail", "batch_queue", "batch_retry", "batch_split", "batch_wait",
           "batches_stalled_requeue", "chunk_fan_out", "chunk_ingest", "pricebook_reset"]
