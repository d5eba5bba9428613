"""Tasks are named after their modules; a message sent under a task's old name still runs, for one release."""
import pytest

from analytics.ingest import batches
from analytics.models import Generation, IngestBatch
from config.celery import app
from tests.analytics.conftest import write_jsonl

from .conftest import traffic

pytestmark = [pytest.mark.slow]


def test_a_batch_split_sent_under_its_old_name_runs_on_a_real_worker(tmp_path, workers):
    """A message queued before the rename (`analytics.tasks.ingest_batch_split`, on the ingest queue) is
    taken by a worker of the new code, which splits the batch and ingests its chunks."""
    path = write_jsonl(tmp_path / "old.jsonl", traffic(range(40)))
    batch = batches.batch_create(path=path, source="old-name test")  # recorded; no message sent yet
    workers.start()

    app.send_task("analytics.tasks.ingest_batch_split", args=[batch.pk])

    [batch] = batches.batch_wait(batch_ids=[batch.pk], timeout=90, interval=0.2)
    assert batch.status == IngestBatch.Status.DONE, workers.logs()
    assert (batch.accepted, batch.duplicates, batch.rejected) == (40, 0, 0)
    assert Generation.objects.count() == 40
    assert "analytics.tasks.ingest_batch_split" in workers.logs(tail=100_000)  # the worker ran the old name
