"""Faults of the rollup writer (INGEST_ROLLUPS=fold, analytics.ingest.fold), with the real `manage.py rollup_writer`
process on PostgreSQL: SIGKILLed mid-fold, and its database connection terminated mid-fold.

The fold is held open by a lock the test takes on the last rollup the fold writes (AccountTagDay): the writer's
transaction has deleted the delta and upserted the other rollups when the fault lands. After each, the delta
still holds every row (the fold rolled back), and once a writer folds again every rollup, balance and the
ledger equal the truth read from the file.
"""
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest
from django.core.management import call_command

from analytics import rollups
from analytics.ingest.fold import FOLD_LOCK, delta_rows
from analytics.models import Generation, IngestBatch
from tests.analytics.conftest import write_jsonl
from tests.conftest import database_url

from .conftest import ROOT, totals_assert_truth, traffic, wait_for

pytestmark = [pytest.mark.slow]

LAST_ROLLUP = rollups.ROLLUPS[-1].table  # the fold's last upsert (the loader's order)
FOLD_BACKEND = ("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")


class Writer:
    """`manage.py rollup_writer` processes against the test database; always stopped."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.procs: list[tuple[subprocess.Popen, object]] = []

    def start(self) -> subprocess.Popen:
        log = (self.tmp_path / f"writer-{len(self.procs)}.log").open("wb")
        env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "config.settings",
               "INGEST_ROLLUPS": "fold"}
        proc = subprocess.Popen([sys.executable, "manage.py", "rollup_writer", "--interval", "0.2"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((proc, log))
        return proc

    def log(self, index: int = -1) -> str:
        return (self.tmp_path / f"writer-{index % len(self.procs)}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)


@pytest.fixture
def writer(tmp_path, transactional_db, settings):
    settings.INGEST_ROLLUPS = "fold"
    pool = Writer(tmp_path)
    yield pool
    pool.stop()


def _probe(sql: str, params=()) -> list:
    with psycopg.connect(database_url(), autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def _delta_filled(tmp_path, workers, rows: int = 20_000):
    """Ingest a file through a real worker that folds nothing (no rollups queue, no writer): all in the delta."""
    path = write_jsonl(tmp_path / "fold.jsonl", traffic(range(rows)))
    workers.start(concurrency=1, extra_env={"INGEST_ROLLUPS": "fold"}, queues="ingest,billing,default")
    call_command("ingest", str(path))
    wait_for(lambda: IngestBatch.objects.filter(status=IngestBatch.Status.DONE).exists(), timeout=180,
             message="the batch did not finish", workers=workers)
    assert Generation.objects.count() == rows
    assert delta_rows() == rows + 0  # traffic() has no fallbacks: no attempt rows
    assert not any(r.model.objects.exists() for r in rollups.ROLLUPS)
    return path


def _fold_held_open(writer: Writer, blocker: psycopg.Connection) -> int:
    """Start a writer whose fold waits on the blocker's lock of the last rollup; return its backend's pid."""
    blocker.execute(f"LOCK TABLE {LAST_ROLLUP} IN SHARE ROW EXCLUSIVE MODE")
    proc = writer.start()
    waiting = ("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
               f" AND query LIKE 'INSERT INTO {LAST_ROLLUP}%%'")
    wait_for(lambda: proc.poll() is not None or bool(_probe(waiting)), timeout=60,
             message=f"the writer's fold never reached {LAST_ROLLUP}")
    assert proc.poll() is None, writer.log()
    [(pid,)] = _probe(waiting)
    assert _probe(FOLD_BACKEND, [FOLD_LOCK]) == [(pid,)]  # it holds the fold lock, its transaction open
    assert delta_rows() > 0  # its DELETE is not committed: others still see every row
    return pid


def _backend_gone(pid: int) -> None:
    wait_for(lambda: not _probe("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]), timeout=60,
             message=f"backend {pid} is still there")


def test_a_rollup_writer_sigkilled_mid_fold_folds_nothing_and_a_new_one_folds_it_all_once(tmp_path, workers, writer):
    path = _delta_filled(tmp_path, workers)
    rows = delta_rows()
    with psycopg.connect(database_url(), autocommit=False) as blocker:
        pid = _fold_held_open(writer, blocker)
        victim = writer.procs[-1][0]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        blocker.rollback()  # its backend finishes the upsert, finds its client gone and rolls back
    _backend_gone(pid)

    assert delta_rows() == rows  # nothing was folded, nothing lost
    assert not any(r.model.objects.exists() for r in rollups.ROLLUPS)

    writer.start()
    wait_for(lambda: delta_rows() == 0, timeout=120, message=f"the new writer did not fold\n{writer.log()}")
    totals_assert_truth(path)


def test_a_rollup_writer_whose_connection_is_terminated_mid_fold_folds_again_on_a_new_one(tmp_path, workers, writer):
    path = _delta_filled(tmp_path, workers)
    rows = delta_rows()
    with psycopg.connect(database_url(), autocommit=False) as blocker:
        pid = _fold_held_open(writer, blocker)
        assert _probe("SELECT pg_terminate_backend(%s)", [pid]) == [(True,)]
        _backend_gone(pid)
        assert delta_rows() == rows  # rolled back with the connection
        assert not any(r.model.objects.exists() for r in rollups.ROLLUPS)
        time.sleep(0.5)  # the writer retries on a new connection, and waits on the lock again
        blocker.rollback()

    wait_for(lambda: delta_rows() == 0, timeout=120, message=f"the writer did not fold again\n{writer.log()}")
    assert writer.procs[-1][0].poll() is None  # the same process, still running
    assert "fold failed, retrying" in writer.log() or "terminating connection" in writer.log()
    totals_assert_truth(path)
