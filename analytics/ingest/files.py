"""Ingestion's files: the folder every worker reads, uploads and copies written there, gzip made plain."""
from __future__ import annotations

import gzip
import shutil
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
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
    with gzip.open(source, "rb") as compressed, target.open("wb") as plain:
        while block := compressed.read(1 << 20):
            written += len(block)
            if written > limit:
                raise IngestError(f"decompressed size exceeds {limit} bytes")
            plain.write(block)
    return target



def batch_cleanup(*, batch: IngestBatch) -> None:
    """Remove the decompressed copy of a finished batch (the source file is the user's)."""
    path = Path(batch.path)
    if path.parent == ingest_dir() and path.name.startswith("batch-") and path.exists():
        path.unlink()


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
