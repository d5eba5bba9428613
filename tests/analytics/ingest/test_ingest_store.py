"""The ingest store: what is saved reads back exactly by byte range, across piece edges, in PostgreSQL
(the default), through a Django Storage on a folder (FileSystemStorage) and on an S3-compatible server
(moto's, over HTTP, through django-storages' S3Storage); a batch ingests from it and leaves nothing."""
import gzip
import io
import socket
import tracemalloc
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import time_machine
from django.core.files.storage import storages
from django.utils import timezone

from analytics.ingest import files
from analytics.ingest.store import store_expire, store_open, store_range, store_remove, store_save
from analytics.models import IngestBatch, IngestPiece
from tests.analytics.conftest import record, run_batch

pytestmark = pytest.mark.django_db

DATA = bytes(range(256)) * 40 + b"tail"  # 10,244 bytes: ten pieces of 1,000 and a short one


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on a port of its own, spoken to over HTTP like any S3-compatible server."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["postgres", "filesystem", "s3"])
def backend(request, settings, tmp_path, monkeypatch):
    settings.INGEST_PIECE_BYTES = 1000
    settings.VAR_DIR = tmp_path / "var"
    if request.param == "postgres":
        settings.INGEST_STORE = "postgres"
        return request.param
    settings.INGEST_STORE = "storage"
    if request.param == "filesystem":
        ingest = {"BACKEND": "django.core.files.storage.FileSystemStorage",
                  "OPTIONS": {"location": str(tmp_path / "store"), "allow_overwrite": True}}
    else:
        import boto3

        endpoint = request.getfixturevalue("s3_server")
        for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                            ("AWS_DEFAULT_REGION", "us-east-1")):
            monkeypatch.setenv(name, value)
        bucket = f"ingest-{tmp_path.name.lower().replace('_', '-')}"[:60]
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        ingest = {"BACKEND": "storages.backends.s3.S3Storage",
                  "OPTIONS": {"bucket_name": bucket, "endpoint_url": endpoint, "location": "ingest",
                              "file_overwrite": True}}
    settings.STORAGES = {**settings.STORAGES, "ingest": ingest}
    return request.param


def _stored_names(backend: str) -> list[str]:
    if backend == "postgres":
        return sorted(set(IngestPiece.objects.values_list("name", flat=True)))
    return sorted(storages["ingest"].listdir("")[1])


@pytest.mark.parametrize(("start", "end"), [(0, 1), (0, 1000), (999, 1001), (1500, 4321), (10_000, 10_244),
                                            (0, 10_244), (10_240, 20_000), (5, 5)])
def test_a_saved_file_reads_back_exactly_by_byte_range(backend, start, end):
    name = store_save(name="batch-1", source=io.BytesIO(DATA))
    assert name == "batch-1"
    if backend == "postgres":  # pieces of INGEST_PIECE_BYTES, the last one short
        assert list(IngestPiece.objects.order_by("at").values_list("at", flat=True)) == list(range(0, 10_001, 1000))
    assert store_range(name=name, start=start, end=end) == DATA[start:end]


def test_saving_a_name_again_replaces_it(backend):
    """A split redelivered after it made the plain copy saves it again: the second copy is the one read."""
    store_save(name="batch-3.plain", source=io.BytesIO(DATA))
    store_save(name="batch-3.plain", source=io.BytesIO(b"shorter"))
    assert store_range(name="batch-3.plain", start=0, end=20_000) == b"shorter"
    assert _stored_names(backend) == ["batch-3.plain"]


def test_a_stored_file_reads_as_a_seekable_file_and_is_removed(backend):
    store_save(name="batch-2", source=io.BytesIO(b"first line\nsecond\n" + DATA))
    with store_open(name="batch-2") as handle:
        assert next(iter(handle)) == b"first line\n"
        handle.seek(2500)
        assert handle.read(3000) == (b"first line\nsecond\n" + DATA)[2500:5500]
    assert _stored_names(backend) == ["batch-2"]
    store_remove(name="batch-2")
    assert _stored_names(backend) == []


def test_expiry_removes_old_files_that_no_open_batch_reads(backend, tmp_path):
    store_save(name="batch-old", source=io.BytesIO(DATA))
    store_save(name="batch-kept", source=io.BytesIO(DATA))
    probe = tmp_path / "probe"  # the real clock (a folder or S3 stamps it; the test's clock starts at NOW)
    probe.write_bytes(b"")
    stamps = (datetime.fromtimestamp(probe.stat().st_mtime, tz=UTC), timezone.now())  # NOW is fixed: days apart
    with time_machine.travel(min(stamps), tick=False):
        assert store_expire(older_than=timedelta(days=7), keep=set()) == []  # both younger than 7 days
    later = max(stamps) + timedelta(days=8)
    with time_machine.travel(later, tick=False):
        assert store_expire(older_than=timedelta(days=7), keep={"batch-kept"}) == ["batch-old"]
    assert _stored_names(backend) == ["batch-kept"]


def test_a_gzipped_batch_ingests_from_the_store_and_leaves_nothing(backend, settings, tmp_path,
                                                                    django_capture_on_commit_callbacks):
    settings.INGEST_CHUNK_LINES = 7  # 5 chunks of a 30-line file, most across a piece edge
    lines = b"".join(orjson.dumps(record(id=f"s{i}", account=f"acct_{i % 3}")) + b"\n" for i in range(30))
    assert len(lines) > 5 * settings.INGEST_PIECE_BYTES
    path = tmp_path / "traffic.jsonl.gz"
    path.write_bytes(gzip.compress(lines))
    with django_capture_on_commit_callbacks(execute=True):
        batch = run_batch(path)
    assert (batch.status, batch.accepted, batch.rejected, batch.chunks_total) == (IngestBatch.Status.DONE, 30, 0, 5)
    assert batch.path == f"batch-{batch.pk}.plain"
    assert _stored_names(backend) == []
    assert path.exists()  # the user's own file is never removed


def test_a_gzip_past_the_limit_fails_its_batch_and_stores_no_partial_copy(backend, settings, tmp_path,
                                                                          django_capture_on_commit_callbacks):
    settings.INGEST_MAX_DECOMPRESSED_BYTES = 5000
    path = tmp_path / "bomb.jsonl.gz"
    path.write_bytes(gzip.compress(b"0" * 20_000))
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(files.IngestError):
        run_batch(path)
    batch = IngestBatch.objects.get()
    assert (batch.status, batch.error) == (IngestBatch.Status.FAILED, "decompressed size exceeds 5000 bytes")
    assert _stored_names(backend) == [f"batch-{batch.pk}"]  # kept for a retry until INGEST_FILE_RETENTION_DAYS


def test_a_big_file_is_stored_and_read_back_in_flat_memory(settings):
    """A 32 MB file goes into PostgreSQL and a 3 MB range comes back holding a few pieces at most in memory."""
    settings.INGEST_STORE = "postgres"
    settings.INGEST_PIECE_BYTES = 1 << 20
    size = 32 << 20

    class Source(io.RawIOBase):  # 32 MB made on the fly: nothing holds the whole file
        position = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            n = min(len(buffer), size - self.position)
            buffer[:n] = bytes([self.position // (1 << 20) % 256]) * n if n else b""
            self.position += n
            return n

    tracemalloc.start()
    try:
        store_save(name="big", source=io.BufferedReader(Source(), buffer_size=1 << 20))
        _, saved_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        data = store_range(name="big", start=(5 << 20) - 10, end=(8 << 20) + 10)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert IngestPiece.objects.filter(name="big").count() == 32
    assert data == b"\x04" * 10 + b"\x05" * (1 << 20) + b"\x06" * (1 << 20) + b"\x07" * (1 << 20) + b"\x08" * 10
    assert saved_peak < 6 << 20, f"saving peaked at {saved_peak / 2**20:.1f} MiB"
    assert read_peak < 12 << 20, f"reading 3 MiB peaked at {read_peak / 2**20:.1f} MiB"
