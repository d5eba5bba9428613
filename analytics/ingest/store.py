"""A batch's bytes where every worker reads them: in PostgreSQL by default, or in a Django Storage (S3).

Workers share nothing but the database and the broker, so the process that queues a batch (the
`ingest` command, the upload page, the ingest API) saves the file's bytes here, and the split and
the chunk tasks read them back by byte range on whatever host they run. A batch's name in the store
is `IngestBatch.path`.

- `INGEST_STORE=postgres` (the default): `analytics_ingestpiece` rows of INGEST_PIECE_BYTES each,
  written by one binary COPY while the file is read (never the whole file in memory), stored
  uncompressed out of line (STORAGE EXTERNAL), so `substring` reads only the TOAST chunks a range covers.
- `INGEST_STORE=storage`: the `ingest` entry of STORAGES, e.g. django-storages' S3Storage on any
  S3-compatible server (a range is one ranged GET) or FileSystemStorage on a shared folder.
"""
from __future__ import annotations

import io
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages
from django.db import connection, transaction
from django.utils import timezone

from analytics.models import IngestPiece

PIECES_COPY = "COPY analytics_ingestpiece (name, at, data, created_at) FROM STDIN (FORMAT BINARY)"
# The bytes of [start, end) from each piece that overlaps it, in order ("at" is the piece's first byte).
PIECES_RANGE = """
    COPY (SELECT substring(data FROM (greatest(%(start)s - at, 0) + 1)::int
                     FOR (least(%(end)s - at, octet_length(data)) - greatest(%(start)s - at, 0))::int)
    FROM analytics_ingestpiece
    WHERE name = %(name)s AND at < %(end)s AND at + octet_length(data) > %(start)s
    ORDER BY at) TO STDOUT (FORMAT BINARY)
"""


def _in_postgres() -> bool:
    return settings.INGEST_STORE == "postgres"


def _storage():
    return storages["ingest"]


def store_save(*, name: str, source: BinaryIO) -> str:
    """Save what `source` reads under `name`, streaming; returns the name it is stored under.

    An error while reading `source` (a bad gzip, a size past the limit) leaves nothing stored.
    """
    if _in_postgres():
        piece = settings.INGEST_PIECE_BYTES
        now = timezone.now()
        # A savepoint inside a caller's transaction: a failed read rolls the pieces back alone. One COPY a
        # piece, not one for the whole file: `source` may itself read the store (gzip made plain) on this
        # connection, which an open COPY holds.
        with transaction.atomic(), connection.cursor() as cursor:
            # Saving a name again replaces it (a split redelivered after it made the plain copy).
            IngestPiece.objects.filter(name=name).delete()
            at = 0
            while block := source.read(piece):
                with cursor.cursor.copy(PIECES_COPY) as copy:
                    copy.set_types(["text", "int8", "bytea", "timestamptz"])
                    copy.write_row((name, at, block, now))
                at += len(block)
        return name
    storage = _storage()
    try:
        return storage.save(name, File(source, name=name))
    except BaseException:
        storage.delete(name)  # a partial object or file
        raise


def store_range(*, name: str, start: int, end: int) -> bytes:
    """The stored bytes of `name` from `start` to `end` (exclusive)."""
    if end <= start:
        return b""
    if _in_postgres():
        # COPY in binary: bytea comes as its bytes, not as hex text twice its size to decode (Django's
        # client-side cursors return no binary results from a plain SELECT).
        params = {"name": name, "start": start, "end": end}
        with connection.cursor() as cursor, cursor.cursor.copy(PIECES_RANGE, params) as copy:
            copy.set_types(["bytea"])
            return b"".join(part for (part,) in copy.rows())
    storage = _storage()
    if hasattr(storage, "bucket"):
        # S3Storage's File downloads the whole object on its first read; a ranged GET fetches just this.
        from botocore.exceptions import ClientError

        key = storage._normalize_name(name)  # noqa: SLF001 - the object key under the storage's `location`
        try:
            return storage.bucket.Object(key).get(Range=f"bytes={start}-{end - 1}")["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""  # from the end of the object on, as a file reads past its end
            raise
    with storage.open(name, "rb") as handle:
        handle.seek(start)
        return handle.read(end - start)


class _StoredReader(io.RawIOBase):
    """A stored file read front to back (seekable) in ranges, for the split and gzip."""

    def __init__(self, name: str):
        self.name_in_store = name
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET and not (whence == io.SEEK_CUR and offset == 0):
            raise io.UnsupportedOperation("a stored file seeks from its start only")
        if whence == io.SEEK_SET:
            self.position = offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        data = store_range(name=self.name_in_store, start=self.position, end=self.position + len(buffer))
        buffer[:len(data)] = data
        self.position += len(data)
        return len(data)


def store_open(*, name: str) -> io.BufferedReader:
    """The stored file as a buffered, seekable binary file (read in INGEST_PIECE_BYTES ranges)."""
    return io.BufferedReader(_StoredReader(name), buffer_size=settings.INGEST_PIECE_BYTES)


def store_remove(*, name: str) -> None:
    """Remove a stored file (nothing happens for a name not stored)."""
    if not name:
        return
    if _in_postgres():
        IngestPiece.objects.filter(name=name).delete()
    else:
        _storage().delete(name)


def store_expire(*, older_than: timedelta, keep: set[str]) -> list[str]:
    """Remove stored files saved before `older_than` ago whose names are not in `keep`; returns their names."""
    cutoff = timezone.now() - older_than
    if _in_postgres():
        old = set(IngestPiece.objects.filter(created_at__lt=cutoff).values_list("name", flat=True).distinct())
    else:
        storage = _storage()
        try:
            names = storage.listdir("")[1]
        except FileNotFoundError:  # a folder nothing was saved in yet
            names = []
        old = {name for name in names if storage.get_modified_time(name) < cutoff}
    removed = sorted(old - keep)
    for name in removed:
        store_remove(name=name)
    return removed
