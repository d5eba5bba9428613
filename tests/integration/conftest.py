"""Real Celery worker processes against the test database and the configured broker."""
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or 5432
        user = db.get("USER") or "postgres"
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"
    return f"sqlite:///{Path(db['NAME']).resolve()}"


class Workers:
    """Start worker processes; stop (or kill) them; always clean up."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.procs: list[tuple[subprocess.Popen, Path]] = []

    def start(self, *, concurrency: int = 1, extra_env: dict | None = None, timeout: float = 60) -> subprocess.Popen:
        log = self.tmp_path / f"worker-{len(self.procs)}.log"
        env = {**os.environ, "DATABASE_URL": _database_url(), "DJANGO_SETTINGS_MODULE": "config.settings",
               "INGEST_CHUNK_LINES": str(settings.INGEST_CHUNK_LINES), **(extra_env or {})}
        env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        name = f"test-{uuid.uuid4().hex[:8]}@%h"
        handle = log.open("wb")
        proc = subprocess.Popen(
            [str(CELERY), "-A", "config", "worker", "-Q", "ingest,rollups,reports,billing,default", "-c",
             str(concurrency), "-n", name, "--without-gossip", "--without-mingle", "--loglevel=INFO"],
            cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((proc, log))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b" ready." in log.read_bytes():
                return proc
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready in {timeout} s:\n{log.read_text(errors='replace')[-4000:]}")

    def logs(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-3000:] for _, log in self.procs)

    def stop(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture
def workers(tmp_path, transactional_db):
    from config.celery import app

    # Messages left by an earlier run would name batches that no longer exist.
    with contextlib.suppress(Exception):
        app.control.purge()
    pool = Workers(tmp_path)
    yield pool
    pool.stop()
    connection.close()


def wait_for(predicate, *, timeout: float, message: str, workers: Workers | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"{message}\n{workers.logs() if workers else ''}")
