"""Ingestion's files: the folder every worker reads, uploads and copies written there, gzip made plain."""
from __future__ import annotations

import gzip
import shutil
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings

from analytics.models import IngestBatch

GZIP_MAGIC = b"\x1f\x8b"
BLOCK = 1 << 20


class IngestError(Exception):
    """A file that cannot be ingested at all (unreadable, undetectable format)."""


class TooLarge(Exception):
    """An uploaded body past INGEST_MAX_BODY_BYTES, or inflating past INGEST_MAX_DECOMPRESSED_BYTES."""


def ingest_dir() -> Path:
    folder = Path(settings.VAR_DIR) / "ingest"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _stamp() -> str:
    return datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S%f")


def plain_copy(batch: IngestBatch) -> Path:
    """Return a path to the batch's uncompressed bytes, decompressing a gzip file once."""
    source = Path(batch.path)
    with source.open("rb") as handle:
        magic = handle.read(2)
    if magic != GZIP_MAGIC:
        return source
    target = ingest_dir() / f"batch-{batch.pk}.plain"
    limit = settings.INGEST_MAX_DECOMPRESSED_BYTES
    written = 0
    try:
        with gzip.open(source, "rb") as compressed, target.open("wb") as plain:
            while block := compressed.read(1 << 20):
                written += len(block)
                if written > limit:
                    raise IngestError(f"decompressed size exceeds {limit} bytes")
                plain.write(block)
    except BaseException:
        target.unlink(missing_ok=True)  # a bad or oversized gzip leaves no partial copy behind
        raise
    return target



def owned(path: Path) -> bool:
    """True for a file Tokengrid wrote (an upload, a copy, a decompressed batch); a user's own file is never removed."""
    return path.parent == ingest_dir()


def superseded_remove(*, source: Path, plain: Path) -> None:
    """Remove an upload once its decompressed copy replaced it as the batch's file (call after commit)."""
    if plain != source and owned(source):
        source.unlink(missing_ok=True)


def batch_files_remove(*, path: str) -> None:
    """Remove a finished batch's file if Tokengrid wrote it (call after the commit that finished the batch)."""
    if path and owned(Path(path)):
        Path(path).unlink(missing_ok=True)


def files_expire(*, older_than: timedelta) -> list[str]:
    """Remove files of the ingest folder older than `older_than` that no queued or running batch reads.

    What a finished batch leaves is removed when it finishes; this takes what a failed batch (kept for a retry
    until then), a refused upload or a crashed worker left. Returns the names removed.
    """
    cutoff = time.time() - older_than.total_seconds()
    reading = set(IngestBatch.objects.filter(status__in=(IngestBatch.Status.QUEUED, IngestBatch.Status.RUNNING))
                  .values_list("path", flat=True))
    removed = []
    for path in sorted(ingest_dir().iterdir()):
        if path.is_file() and path.stat().st_mtime < cutoff and str(path) not in reading:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def upload_store(*, chunks: Iterator[bytes], suffix: str = ".ndjson") -> Path:
    """Write an uploaded body to the ingest folder, where every worker can read it."""
    target = ingest_dir() / f"upload-{_stamp()}{suffix}"
    try:
        with target.open("wb") as handle:
            for block in chunks:
                handle.write(block)
    except BaseException:
        target.unlink(missing_ok=True)  # a refused or broken upload leaves nothing behind
        raise
    return target


def file_store(*, source: Path) -> Path:
    """Copy a file into the ingest folder (so a batch survives the source being moved)."""
    target = ingest_dir() / f"file-{_stamp()}-{source.name}"
    shutil.copyfile(source, target)
    return target


def body_store(*, stream, declared: int, gzipped: bool) -> tuple[int, Path]:
    """Stream a request body (`stream`, None for none) to the ingest folder, inflating gzip, within the
    configured limits; returns its plain size and its path. Raises TooLarge, or zlib.error for bad gzip.
    """
    if declared > settings.INGEST_MAX_BODY_BYTES:
        raise TooLarge(f"body of {declared} bytes exceeds the limit of {settings.INGEST_MAX_BODY_BYTES} bytes")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    limit = settings.INGEST_MAX_DECOMPRESSED_BYTES
    counts = {"raw": 0, "plain": 0}

    def blocks():
        while stream is not None and (block := stream.read(BLOCK)):
            counts["raw"] += len(block)
            if counts["raw"] > settings.INGEST_MAX_BODY_BYTES:
                raise TooLarge(f"body exceeds the limit of {settings.INGEST_MAX_BODY_BYTES} bytes")
            if inflater is None:
                counts["plain"] += len(block)
                yield block
                continue
            data = block
            while data:
                # Inflate in bounded steps so a zip bomb never holds more than BLOCK in memory.
                out = inflater.decompress(data, BLOCK)
                counts["plain"] += len(out)
                if counts["plain"] > limit:
                    raise TooLarge(f"decompressed body exceeds the limit of {limit} bytes")
                yield out
                data = inflater.unconsumed_tail
        if inflater is not None:
            tail = inflater.flush()
            counts["plain"] += len(tail)
            if counts["plain"] > limit:
                raise TooLarge(f"decompressed body exceeds the limit of {limit} bytes")
            yield tail

    path = upload_store(chunks=blocks(), suffix=".ndjson")
    return counts["plain"], path
