"""Faults during ingestion, with real worker processes on PostgreSQL: a database connection dropped
mid-chunk, and a broker killed while a file's chunks wait in its queue: Redis without persistence
(the queue is lost, the stalled-batch sweep queues the chunks again) or, when the suite runs on
RabbitMQ, a RabbitMQ node (its durable queue keeps the confirmed messages).

After each, generations, every rollup, each balance and the ledger equal the truth read from the
file, and `ledger_verify` passes.
"""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection

from analytics.models import IngestBatch, IngestChunk
from tests.analytics.conftest import write_jsonl
from tests.conftest import database_url

from .conftest import ROOT, totals_assert_truth, traffic, wait_for

pytestmark = [pytest.mark.slow]

# Backends of this test database (never this process's own) inside a chunk's transaction: the
# chunk's `select_for_update` holds a RowShareLock on the chunk table until commit or rollback.
CHUNK_BACKENDS = """
    SELECT a.pid FROM pg_stat_activity a
    WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
      AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.mode = 'RowShareLock'
                  AND l.relation = 'analytics_ingestchunk'::regclass)
"""


def _chunk_backends_terminate(delay: float, statement: str = "") -> int:
    """Wait for a chunk transaction (running `statement`...), let it run `delay` s more, terminate it."""
    query = CHUNK_BACKENDS + (" AND a.state = 'active' AND a.query LIKE %s" if statement else "")
    params = [f"{statement}%"] if statement else []
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        if not cursor.fetchall():
            return 0
        time.sleep(delay)
        # Only backends still inside a chunk's transaction count.
        cursor.execute(f"SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM ({query}) AS chunk", params)
        return cursor.fetchone()[0]


def test_database_connections_dropped_mid_chunk_roll_back_and_are_retried(tmp_path, workers, settings):
    # 16 chunks of a fraction of a second each (since the set-based debits a 2,000-line chunk's
    # transaction takes ~70 ms, and the whole batch ended before three faults could land).
    settings.INGEST_CHUNK_LINES = 5_000
    path = write_jsonl(tmp_path / "big.jsonl", traffic(range(80_000)))
    workers.start(concurrency=1)

    call_command("ingest", str(path))
    wait_for(lambda: IngestBatch.objects.get().chunks_total > 0, timeout=60, message="not split", workers=workers)
    # Twice in the COPY into the staging table (psycopg's own cursor, outside Django's error
    # wrapper), and at points further into the transaction: upserts, debits, the chunk's update.
    # A fault that finds no such moment in 3 s is dropped (the batch goes on); at least 3 must land.
    faults = [(0.0, "COPY"), (0.0, ""), (0.03, ""), (0.0, "COPY"), (0.05, "")]
    terminated = 0
    fault_deadline = time.monotonic() + 3
    while faults and IngestBatch.objects.get().status not in (IngestBatch.Status.DONE, IngestBatch.Status.FAILED):
        killed = _chunk_backends_terminate(*faults[0])
        terminated += killed
        if killed or time.monotonic() > fault_deadline:
            faults.pop(0)
            fault_deadline = time.monotonic() + 3
        if killed:
            time.sleep(0.3)  # the next one in another chunk (or this chunk's retry)
    assert terminated >= 3, f"only {terminated} chunk transactions terminated\n{workers.logs()}"

    wait_for(lambda: IngestBatch.objects.get().status != IngestBatch.Status.RUNNING, timeout=240,
             message="the batch did not finish", workers=workers)
    batch = IngestBatch.objects.get()
    assert batch.status == IngestBatch.Status.DONE, batch.error
    assert (batch.accepted, batch.duplicates, batch.rejected) == (80_000, 0, 0)
    # The terminated chunks ran again (attempts count every start of a chunk, before its transaction).
    retried = IngestChunk.objects.filter(attempts__gt=1).count()
    assert retried >= 1, workers.logs()
    totals_assert_truth(path)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OwnRedis:
    """A throwaway redis-server without persistence, on a port of its own (never the shared 6379)."""

    def __init__(self, directory):
        self.port = _free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        wait_for(lambda: self._pings(client), timeout=20, message="own redis-server did not start")

    @staticmethod
    def _pings(client) -> bool:
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def queued(self, queue: str) -> int:
        return redis.Redis(port=self.port).llen(queue)


@pytest.fixture
def own_redis(tmp_path):
    if not shutil.which("redis-server"):
        if os.environ.get("CI") == "true":  # .ci/run has Redis: a missing server is a broken run, not a skip
            pytest.fail("needs redis-server on the PATH")
        pytest.skip("needs redis-server")
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.kill()


QUEUE_AND_SPLIT = """
import sys
from pathlib import Path

import django

django.setup()
from analytics import ingest

batch = ingest.batch_queue(path=Path(sys.argv[1]), source="lost.jsonl")
print(ingest.batch_split(batch_id=batch.pk).chunks_total)
"""


ON_RABBITMQ = django_settings.CELERY_BROKER_URL.startswith(("amqp://", "pyamqp://"))


def test_a_broker_killed_while_chunks_wait_in_its_queue_loses_no_chunk(tmp_path, workers, settings, request):
    """On the suite's kind of broker (CI runs it on both): Redis loses the queue, RabbitMQ keeps it."""
    if ON_RABBITMQ:
        _rabbitmq_node_killed_keeps_the_chunks(tmp_path, workers, settings, request.getfixturevalue("own_rabbit"))
    else:
        _redis_restarted_without_its_queue_gets_the_chunks_queued_again(tmp_path, workers, settings,
                                                                          request.getfixturevalue("own_redis"))


def _redis_restarted_without_its_queue_gets_the_chunks_queued_again(tmp_path, workers, settings, own_redis):
    settings.INGEST_CHUNK_LINES = 1_000
    path = write_jsonl(tmp_path / "lost.jsonl", traffic(range(6_000)))
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "config.settings",
           "CELERY_BROKER_URL": own_redis.url, "INGEST_CHUNK_LINES": "1000"}
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)

    # No worker runs: the split and its 6 chunk tasks wait in the broker's ingest queue.
    queued = subprocess.run([sys.executable, "-c", QUEUE_AND_SPLIT, str(path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=True)
    assert queued.stdout.split()[-1] == "6"
    assert own_redis.queued("ingest") == 1 + 6

    own_redis.kill()  # kill -9: no persistence, the queue is gone
    own_redis.start()
    assert own_redis.queued("ingest") == 0

    # The worker runs beat too; with INGEST_STALLED_SECONDS=4 it sweeps every 2 s.
    stalled = {"CELERY_BROKER_URL": own_redis.url, "INGEST_STALLED_SECONDS": "4"}
    workers.start(concurrency=1, extra_env=stalled, extra_args=("-B", "--schedule", str(tmp_path / "beat")))
    wait_for(lambda: IngestBatch.objects.get().status != IngestBatch.Status.RUNNING, timeout=120,
             message="the stalled batch was not queued again", workers=workers)

    batch = IngestBatch.objects.get()
    assert batch.status == IngestBatch.Status.DONE, batch.error
    assert (batch.accepted, batch.duplicates, batch.rejected, batch.chunks_done) == (6_000, 0, 0, 6)
    assert f"re-queued stalled batches [{batch.pk}]" in workers.logs(tail=10**7)
    totals_assert_truth(path)


class OwnRabbit:
    """A throwaway RabbitMQ node on ports of its own, its data in a folder of its own (never the system's node)."""

    def __init__(self):
        # Not under pytest's tmp_path: the server runs as the `rabbitmq` user, which cannot enter it.
        self.directory = Path(tempfile.mkdtemp(prefix="tg-rabbit-"))
        (self.directory / "enabled_plugins").write_text("[].\n")  # no management plugin: no fixed port
        self.port = _free_port()
        (self.directory / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        for sub in ("mnesia", "log"):
            (self.directory / sub).mkdir()
        shutil.chown(self.directory, "rabbitmq")
        for item in self.directory.iterdir():
            shutil.chown(item, "rabbitmq")
        self.env = {**os.environ, "RABBITMQ_NODENAME": f"tg{uuid.uuid4().hex[:8]}@localhost",
                    "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(_free_port()),
                    "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
                    "RABBITMQ_LOG_BASE": str(self.directory / "log"),
                    "RABBITMQ_PID_FILE": str(self.directory / "pid"),
                    "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq.conf"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins")}
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        (self.directory / "pid").unlink(missing_ok=True)
        self.proc = subprocess.Popen(["rabbitmq-server"], env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(self._answers, timeout=90, message=f"own rabbitmq-server did not start: {self._log()}")

    def _answers(self) -> bool:
        from kombu import Connection

        try:
            with Connection(self.url, connect_timeout=1) as conn:
                conn.connect()
                return True
        except (OSError, *Connection(self.url).connection_errors):
            return False

    def _log(self) -> str:
        logs = sorted((self.directory / "log").glob("*.log"))
        return logs[0].read_text(errors="replace")[-3000:] if logs else "(no log)"

    def kill(self) -> None:
        """SIGKILL the node (its Erlang VM, whose pid it wrote) and wait until it is gone."""
        pid_file = self.directory / "pid"
        if pid_file.exists() and (pid := pid_file.read_text().strip()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        wait_for(lambda: not self._answers(), timeout=30, message="own rabbitmq-server still answers")

    def queued(self, queue: str) -> int:
        from kombu import Connection

        with Connection(self.url) as conn:
            return conn.default_channel.queue_declare(queue, passive=True).message_count

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def own_rabbit():
    if not shutil.which("rabbitmq-server"):
        if os.environ.get("CI") == "true":  # .ci/run runs this on RabbitMQ: a missing server is a broken run
            pytest.fail("needs rabbitmq-server on the PATH")
        pytest.skip("needs rabbitmq-server")
    server = OwnRabbit()
    try:
        server.start()
        yield server
    finally:
        server.remove()


def _rabbitmq_node_killed_keeps_the_chunks(tmp_path, workers, settings, own_rabbit):
    settings.INGEST_CHUNK_LINES = 1_000
    path = write_jsonl(tmp_path / "lost.jsonl", traffic(range(6_000)))
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "config.settings",
           "CELERY_BROKER_URL": own_rabbit.url, "INGEST_CHUNK_LINES": "1000"}
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)

    # No worker runs: the split and its 6 chunk tasks wait in the broker's ingest queue.
    queued = subprocess.run([sys.executable, "-c", QUEUE_AND_SPLIT, str(path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=True)
    assert queued.stdout.split()[-1] == "6"
    assert own_rabbit.queued("ingest") == 1 + 6

    own_rabbit.kill()  # kill -9: durable queue, persistent messages, each confirmed before delay() returned
    own_rabbit.start()
    assert own_rabbit.queued("ingest") == 1 + 6

    # No beat: nothing but the broker's own queue brings the chunks to the worker.
    workers.start(concurrency=1, extra_env={"CELERY_BROKER_URL": own_rabbit.url})
    wait_for(lambda: IngestBatch.objects.get().status != IngestBatch.Status.RUNNING, timeout=120,
             message="the batch did not finish after the broker came back", workers=workers)

    batch = IngestBatch.objects.get()
    assert batch.status == IngestBatch.Status.DONE, batch.error
    assert (batch.accepted, batch.duplicates, batch.rejected, batch.chunks_done) == (6_000, 0, 0, 6)
    assert IngestChunk.objects.filter(attempts=1).count() == 6  # each chunk ran once: none was lost or re-sent
    totals_assert_truth(path)
