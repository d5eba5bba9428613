"""A batch's lifecycle: recorded, split into chunks of whole lines, failed, reopened, waited for.

Nothing here sends a message: `tasks` queues the work (it imports this module, never the reverse).
"""
from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from analytics.models import IngestBatch, IngestChunk

from . import formats
from .files import IngestError, batch_files_remove, batch_store, plain_copy, superseded_remove
from .store import store_open

log = logging.getLogger(__name__)
FINISHED = (IngestBatch.Status.DONE, IngestBatch.Status.FAILED)


def batch_create(*, path: Path, source: str, fmt: str = "auto") -> IngestBatch:
    """Record a batch for a readable file and save its bytes in the store, where every worker reads them
    (IngestError for an unreadable file or an unknown format). Call it inside a transaction: the batch and
    its stored bytes commit together."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            handle.read(1)
        size = path.stat().st_size
    except OSError as error:
        raise IngestError(f"cannot read {path}: {error.strerror or error}") from error
    if fmt != "auto" and fmt not in formats.FORMATS:
        raise IngestError(f"unknown format {fmt!r}; expected auto or one of {', '.join(formats.FORMATS)}")
    batch = IngestBatch.objects.create(source=source[:500], format=fmt, bytes=size)
    batch.path = batch_store(batch=batch, path=path)
    batch.save(update_fields=["path"])
    return batch


def _first_record_line(handle) -> tuple[bytes, int, int]:
    """Return (first non-blank line, its 1-based number, byte offset after it)."""
    number = 0
    offset = 0
    for line in handle:
        number += 1
        offset += len(line)
        if line.strip(b" \t\r\n\xef\xbb\xbf"):
            return line, number, offset
    return b"", number, offset



def batch_split(*, batch_id: int, queue_chunk: Callable[[int], None] | None = None) -> IngestBatch:
    """Detect the format and cut the file into chunks of whole lines; after commit, `queue_chunk(index)`
    for each new chunk (a batch already split is left as it is)."""

    batch = IngestBatch.objects.get(pk=batch_id)
    if batch.chunks_total:
        return batch  # already split (a redelivered task)
    IngestBatch.objects.filter(pk=batch_id).update(status=IngestBatch.Status.RUNNING, started_at=timezone.now())
    try:
        plain = plain_copy(batch)
        with store_open(name=plain) as handle:
            first, first_number, after_first = _first_record_line(handle)
            fmt = batch.format
            if fmt == "auto":
                # An empty file has nothing to detect and nothing to ingest.
                fmt = formats.detect_format(first.lstrip(b"\xef\xbb\xbf")) if first else "openrouter"
            header = b""
            if fmt != "openrouter" and first:
                candidate = formats.read_header(fmt, first.lstrip(b"\xef\xbb\xbf"))
                header = candidate or b""
            # Chunks start after the header line (CSV) or at the file start (JSON Lines).
            if header:
                start, line_number = after_first, first_number + 1
            else:
                start, line_number = 0, 1
            chunks, total_lines = chunk_ranges(handle, start, line_number, settings.INGEST_CHUNK_LINES)
    except (OSError, EOFError, gzip.BadGzipFile, IngestError, formats.FormatError) as error:
        batch_fail(batch_id=batch_id, error=str(error))
        raise IngestError(str(error)) from error

    with transaction.atomic():
        IngestChunk.objects.bulk_create([
            IngestChunk(batch_id=batch_id, index=i, first_line=first_line, byte_start=a, byte_end=b)
            for i, (first_line, a, b) in enumerate(chunks)
        ])
        IngestBatch.objects.filter(pk=batch_id).update(
            format=fmt, header=header.decode("utf-8", errors="replace").rstrip("\r\n"), path=plain,
            lines=total_lines, chunks_total=len(chunks))
        source = batch.path
        transaction.on_commit(lambda: superseded_remove(source=source, plain=plain))
        if not chunks:
            IngestBatch.objects.filter(pk=batch_id).update(status=IngestBatch.Status.DONE,
                                                           finished_at=timezone.now())
            transaction.on_commit(lambda: batch_files_remove(path=plain))
        for index in range(len(chunks) if queue_chunk else 0):
            transaction.on_commit(lambda i=index: queue_chunk(i))
    batch.refresh_from_db()
    return batch


def chunk_ranges(handle, start: int, first_line: int, size: int, block_size: int = 8 << 20
                  ) -> tuple[list[tuple[int, int, int]], int]:
    """Cut the file from `start` into (first line, byte start, byte end) ranges of `size` lines.

    Reads 8 MB blocks and counts newlines in C (`bytes.count`): no Python step per line.
    """
    handle.seek(start)
    chunks: list[tuple[int, int, int]] = []
    chunk_start, chunk_first, in_chunk = start, first_line, 0
    position, line = start, first_line - 1
    while block := handle.read(block_size):
        at = 0
        newlines = block.count(b"\n")
        while in_chunk + newlines >= size:  # the chunk ends inside this block
            for _ in range(size - in_chunk):
                at = block.index(b"\n", at) + 1
            newlines -= size - in_chunk
            line += size - in_chunk
            chunks.append((chunk_first, chunk_start, position + at))
            chunk_start, chunk_first, in_chunk = position + at, line + 1, 0
        in_chunk += newlines
        line += newlines
        position += len(block)
        tail_without_newline = not block.endswith(b"\n")
    if position > chunk_start:
        if tail_without_newline:
            line += 1
        chunks.append((chunk_first, chunk_start, position))
    return chunks, line



def batch_fail(*, batch_id: int, error: str) -> None:
    """Mark a batch failed with its reason (its applied chunks stay applied)."""
    IngestBatch.objects.filter(pk=batch_id).update(status=IngestBatch.Status.FAILED, error=error[:5000],
                                                   finished_at=timezone.now())



def batch_reopen(*, batch_id: int) -> list[int] | None:
    """Mark a batch running again; returns the indexes of its chunks not done (None: not split yet)."""
    batch = IngestBatch.objects.get(pk=batch_id)
    IngestBatch.objects.filter(pk=batch_id).update(status=IngestBatch.Status.RUNNING, error="", finished_at=None)
    if not batch.chunks_total:
        return None
    return list(IngestChunk.objects.filter(batch_id=batch_id, done=False).values_list("index", flat=True))


def batches_stalled(*, idle_seconds: int) -> list[int]:
    """The open batches that made no progress for `idle_seconds`, each at most once per idle period.

    A broker that lost its queue (Redis restarted without persistence) or a filesystem broker
    whose worker died leaves chunk tasks that will never run; their batch would wait forever.
    A re-queue counts as activity (its cache mark), so a batch is named again at most once per idle period.
    """
    cutoff = timezone.now() - timedelta(seconds=idle_seconds)
    open_batches = IngestBatch.objects.filter(status__in=(IngestBatch.Status.QUEUED, IngestBatch.Status.RUNNING),
                                              created_at__lt=cutoff)
    stalled = []
    for batch in open_batches.annotate(last_chunk=Max("chunks__finished_at")).order_by("pk"):
        last = max(t for t in (batch.created_at, batch.started_at, batch.last_chunk) if t is not None)
        if last < cutoff and cache.add(f"ingest:requeued:{batch.pk}", 1, idle_seconds):
            stalled.append(batch.pk)
    return stalled


def batch_wait(*, batch_ids: list[int], timeout: float | None, interval: float, ranked: bool = False,
               progress: Callable[[list[IngestBatch]], None] | None = None) -> list[IngestBatch]:
    """Read the batches every `interval` seconds until each is done or failed (`ranked`: failed, or done
    and in the public rankings), or `timeout` seconds passed (None: no limit); returns them as last
    read, in id order. `progress` sees every reading.
    """
    def settled(batch: IngestBatch) -> bool:
        return batch.status == IngestBatch.Status.FAILED or (batch.in_rankings if ranked else batch.status in FINISHED)

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        current = list(IngestBatch.objects.filter(pk__in=batch_ids).order_by("pk"))
        if progress is not None:
            progress(current)
        if all(map(settled, current)) or (deadline is not None and time.monotonic() >= deadline):
            return current
        time.sleep(interval)
