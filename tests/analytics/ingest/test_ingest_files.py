"""What ingestion writes is removed: an upload in var/ingest/ once its bytes are in the store, the stored
file at once when its batch finishes, after INGEST_FILE_RETENTION_DAYS when it failed (kept meanwhile for
a retry); a user's own file never."""
import gzip
import os
import time
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from analytics.ingest import files
from analytics.ingest.tasks import ingest_files_expire
from analytics.models import IngestBatch, IngestPiece
from tests.analytics.conftest import record, run_batch, write_jsonl

pytestmark = pytest.mark.django_db

LINES = b"".join(orjson.dumps(record(id=f"g{i}", account=f"acct_{i % 3}")) + b"\n" for i in range(5))


@pytest.fixture
def folder(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.INGEST_CHUNK_LINES = 2  # three chunks: the file goes with the last one, not the first
    return files.ingest_dir()


def _names(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def _stored() -> list[str]:
    return sorted(set(IngestPiece.objects.values_list("name", flat=True)))


def test_a_gzipped_upload_and_its_plain_copy_go_when_the_batch_is_done(folder, django_capture_on_commit_callbacks):
    upload = files.upload_store(chunks=iter([gzip.compress(LINES)]), suffix=".gz")
    with django_capture_on_commit_callbacks(execute=True):
        batch = run_batch(upload)
    assert (batch.status, batch.accepted, batch.chunks_total) == (IngestBatch.Status.DONE, 5, 3)
    assert _names(folder) == []
    assert _stored() == []


def test_the_stored_file_stays_until_the_last_chunk(folder, django_capture_on_commit_callbacks):
    from analytics.ingest import tasks
    from analytics.ingest.chunk import chunk_ingest

    upload = files.upload_store(chunks=iter([LINES]), suffix=".ndjson")
    with django_capture_on_commit_callbacks(execute=True):
        batch = tasks.batch_queue(path=upload, source="api")
    assert _names(folder) == []  # the upload's bytes are in the store: no worker reads this host's folder
    assert _stored() == [f"batch-{batch.pk}"] == [batch.path]
    with django_capture_on_commit_callbacks(execute=True):
        tasks.batch_split(batch_id=batch.pk)
        chunk_ingest(batch_id=batch.pk, index=0)
        chunk_ingest(batch_id=batch.pk, index=2)
    assert _stored() == [f"batch-{batch.pk}"]  # chunk 1 still reads it
    with django_capture_on_commit_callbacks(execute=True):
        chunk_ingest(batch_id=batch.pk, index=1)
    assert _stored() == []


def test_a_users_own_file_is_never_removed(folder, tmp_path, django_capture_on_commit_callbacks):
    own = write_jsonl(tmp_path / "mine.jsonl", [record(id="m1")])
    with django_capture_on_commit_callbacks(execute=True):
        assert run_batch(own).status == IngestBatch.Status.DONE
    assert own.exists()


def test_a_failed_batchs_file_stays_for_a_retry_then_expires(folder, settings, django_capture_on_commit_callbacks):
    settings.INGEST_FILE_RETENTION_DAYS = 7
    upload = files.upload_store(chunks=iter([b"\x1f\x8b not gzip"]), suffix=".gz")
    leftover = files.upload_store(chunks=iter([b"half an upload"]), suffix=".ndjson")
    os.utime(leftover, (time.time(), time.time()))  # the file system stamps the real clock; the test's may be months away
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(files.IngestError, match="compression"):
        run_batch(upload)
    batch = IngestBatch.objects.get()
    assert batch.status == IngestBatch.Status.FAILED
    assert _stored() == [f"batch-{batch.pk}"]  # no partial decompressed copy
    assert ingest_files_expire() == []  # younger than 7 days: a retry can still read it
    week_ago = time.time() - timedelta(days=7, minutes=1).total_seconds()
    os.utime(leftover, (week_ago, week_ago))
    IngestPiece.objects.update(created_at=timezone.now() - timedelta(days=7, minutes=1))
    assert ingest_files_expire() == [leftover.name, f"batch-{batch.pk}"]
    assert _names(folder) == []
    assert _stored() == []


def test_expiry_spares_the_file_of_a_batch_still_running(folder, settings):
    from analytics.ingest import tasks

    upload = files.upload_store(chunks=iter([LINES]), suffix=".ndjson")
    os.utime(upload, (time.time(), time.time()))  # written now by the test's clock, not the real one (NOW is fixed)
    batch = tasks.batch_queue(path=upload, source="api")
    IngestBatch.objects.filter(pk=batch.pk).update(status=IngestBatch.Status.RUNNING)
    IngestPiece.objects.update(created_at=timezone.now() - timedelta(days=30))
    assert ingest_files_expire() == []
    assert _stored() == [f"batch-{batch.pk}"]


def test_a_chunk_redelivered_after_its_file_went_is_skipped(folder, django_capture_on_commit_callbacks):
    """Idempotency outlives the file: a done chunk answers from its row and never reads the removed copy."""
    from analytics.ingest.chunk import chunk_ingest

    upload = files.upload_store(chunks=iter([LINES]), suffix=".ndjson")
    with django_capture_on_commit_callbacks(execute=True):
        batch = run_batch(upload)
    assert not upload.exists()
    assert _stored() == []
    again = chunk_ingest(batch_id=batch.pk, index=0)
    assert (again.skipped, again.accepted) == (True, 2)
    assert IngestBatch.objects.get(pk=batch.pk).accepted == 5
