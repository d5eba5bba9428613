"""The embedded PostgreSQL (config/embedded_db): started, reused, recovered after a kill, stopped.

On a cluster of its own in a temporary folder, never the one in var/ the suite may be running on.
"""
import os
import signal
import time

import psycopg
import pytest

from config import embedded_db


@pytest.fixture(scope="module")
def pgdata(tmp_path_factory):
    """One cluster for the module (initdb takes seconds), each test starting from where the last left it."""
    path = tmp_path_factory.mktemp("embedded") / "pg"
    yield path
    embedded_db.stop(path)


def _answers(socket_dir) -> int:
    with psycopg.connect(host=str(socket_dir), user="postgres", dbname="tokengrid") as conn:
        return conn.execute("SELECT current_setting('server_version_num')::int").fetchone()[0]


def test_a_cluster_is_made_once_reused_and_stopped(pgdata):
    socket_dir = embedded_db.ensure(pgdata)
    assert (pgdata / "PG_VERSION").read_text().strip() == "18"
    assert _answers(socket_dir) >= 180000
    pid = embedded_db._running(pgdata).pid
    assert embedded_db.ensure(pgdata) == socket_dir
    assert embedded_db._running(pgdata).pid == pid  # reused, not started again
    assert embedded_db.stop(pgdata)
    assert embedded_db._running(pgdata) is None
    assert not embedded_db.stop(pgdata)


def test_a_killed_server_and_its_stale_lock_files_are_recovered_on_the_next_start(pgdata):
    embedded_db.ensure(pgdata)  # started again from the data the first test left
    os.kill(embedded_db._running(pgdata).pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while embedded_db._running(pgdata) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (pgdata / "postmaster.pid").exists()  # left behind, naming a dead process
    assert _answers(embedded_db.ensure(pgdata)) >= 180000


def test_a_pid_file_naming_another_process_is_not_taken_for_a_server(pgdata):
    embedded_db.ensure(pgdata)
    assert embedded_db.stop(pgdata)
    # As after a reboot: the pid file of a server that is gone names a pid some other program has now.
    (pgdata / "postmaster.pid").write_text(f"{os.getpid()}\n{pgdata}\n0\n5432\n{pgdata}\n\n  0 0\nready   \n")
    assert embedded_db._running(pgdata) is None
    assert _answers(embedded_db.ensure(pgdata)) >= 180000
