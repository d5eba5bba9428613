"""Ingestion's files: uploads received into var/ingest/ on the host that takes them, the batch's bytes
moved into the store (`store`, where every worker reads them), gzip made plain there, and removal."""
from __future__ import annotations

import gzip
import io
import shutil
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import transaction

from analytics.models import IngestBatch

from . import store

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


class _Limited(io.RawIOBase):
    """Read `source` (a gzip stream) and raise IngestError past `limit` bytes: a bomb is refused, not stored."""

    def __init__(self, source: BinaryIO, limit: int):
        self.source, self.limit, self.total = source, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.source.read(len(buffer))
        self.total += len(data)
        if self.total > self.limit:
            raise IngestError(f"decompressed size exceeds {self.limit} bytes")
        buffer[:len(data)] = data
        return len(data)


def plain_copy(batch: IngestBatch) -> str:
    """Return the store name of the batch's uncompressed bytes, decompressing a gzip file once (in the store)."""
    if store.store_range(name=batch.path, start=0, end=len(GZIP_MAGIC)) != GZIP_MAGIC:
        return batch.path
    limit = settings.INGEST_MAX_DECOMPRESSED_BYTES
    with store.store_open(name=batch.path) as stored, gzip.GzipFile(fileobj=stored) as compressed:
        # A bad or oversized gzip leaves no partial copy behind (store_save).
        return store.store_save(name=f"batch-{batch.pk}.plain", source=io.BufferedReader(_Limited(compressed, limit)))


def batch_store(*, batch: IngestBatch, path: Path) -> str:
    """Save a batch's file into the store, where every worker reads it; returns its name there.

    An upload Tokengrid wrote to var/ingest/ goes once the transaction that recorded the batch commits.
    """
    with path.open("rb") as handle:
        name = store.store_save(name=f"batch-{batch.pk}", source=handle)
    if owned(path):
        transaction.on_commit(lambda: path.unlink(missing_ok=True))
    return name



def owned(path: Path) -> bool:
    """True for a file Tokengrid wrote (an upload, a copy, a decompressed batch); a user's own file is never removed."""
    return path.parent == ingest_dir()


def superseded_remove(*, source: str, plain: str) -> None:
    """Remove a stored gzip file once its decompressed copy replaced it as the batch's file (call after commit)."""
    if plain != source:
        store.store_remove(name=source)


def batch_files_remove(*, path: str) -> None:
    """Remove a finished batch's stored file (call after the commit that finished the batch)."""
    store.store_remove(name=path)


def files_expire(*, older_than: timedelta) -> list[str]:
    """Remove stored files and files of the ingest folder older than `older_than` that no queued or running
    batch reads.

    What a finished batch leaves is removed when it finishes; this takes what a failed batch (kept for a retry
    until then), a refused upload or a crashed worker left. Returns the names removed.
    """
    cutoff = time.time() - older_than.total_seconds()
    reading = set(IngestBatch.objects.filter(status__in=(IngestBatch.Status.QUEUED, IngestBatch.Status.RUNNING))
                  .values_list("path", flat=True))
    removed = []
    for path in sorted(ingest_dir().iterdir()):
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    # A batch's own name and its decompressed copy's.
    reading |= {f"{name}.plain" for name in reading}
    return removed + store.store_expire(older_than=older_than, keep=reading)


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
