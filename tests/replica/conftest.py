"""A real streaming standby for the replica tests (scripts/standby.sh), reached through the `replica` alias.

Under pytest the alias is a test mirror of the primary (config/settings/services.py), so every other
test reads the primary. The `standby` fixture points it at the standby for one test: these tests
commit (transaction=True), since a standby only replays committed rows.
"""
import os
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connections

from core import replica

CONFIGURED = replica.REPLICA in settings.DATABASES
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "standby.sh"


class Standby:
    """The standby behind the replica alias: its replay paused or resumed, stopped or started."""

    def __init__(self, settings_dict: dict):
        self.port = str(settings_dict.get("PORT") or 5432)
        self._conninfo = {"host": settings_dict.get("HOST") or "127.0.0.1", "port": self.port,
                          "user": settings_dict.get("USER") or "postgres", "dbname": "postgres",
                          "autocommit": True}
        self._primary = connections["default"].settings_dict

    def sql(self, statement: str):
        with psycopg.connect(**self._conninfo) as conn:
            return conn.execute(statement).fetchone()[0]

    def _primary_lsn(self) -> str:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            return cursor.fetchone()[0]

    def sync(self, timeout: float = 30) -> None:
        """Wait until the standby has replayed everything the primary committed so far."""
        target = self._primary_lsn()
        deadline = time.monotonic() + timeout
        while not self.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"):
            assert time.monotonic() < deadline, f"the standby did not replay {target} in {timeout} s"
            time.sleep(0.05)

    def pause(self) -> None:
        self.sql("SELECT pg_wal_replay_pause()::text")

    def resume(self) -> None:
        self.sql("SELECT pg_wal_replay_resume()::text")

    def stop(self) -> None:
        subprocess.run([str(SCRIPT), "stop", self.port], check=True, capture_output=True)

    def start(self) -> None:
        subprocess.run([str(SCRIPT), "start", self.port], check=True, capture_output=True)

    def is_up(self) -> bool:
        return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", self.port]).returncode == 0


@pytest.fixture
def standby(settings):
    """The replica alias on the standby for this test, the standby streaming and caught up.

    Pages wait up to 10 s for its replay (0.5 s in production): on this shared machine the standby can
    lag a few tenths of a second, and these tests show which server a page read.
    """
    settings.DATABASE_REPLICA_PAGE_WAIT_SECONDS = 10
    if not CONFIGURED:
        pytest.fail("DATABASE_REPLICA_URL is not set: CI starts a standby (scripts/standby.sh) and sets it")
    conn = connections[replica.REPLICA]
    test_settings = conn.settings_dict["TEST"]
    mirror = test_settings.get("MIRROR")
    test_settings["MIRROR"] = None
    conn.close()
    replica._down_until = 0.0
    server = Standby(conn.settings_dict)
    if not server.is_up():
        server.start()
    server.resume()
    server.sync()
    yield server
    if not server.is_up():
        server.start()
    server.resume()
    conn.close()
    test_settings["MIRROR"] = mirror
    replica._down_until = 0.0


skip_without_replica = pytest.mark.skipif(
    not CONFIGURED and os.environ.get("CI") != "true",
    reason="needs DATABASE_REPLICA_URL, a streaming standby of DATABASE_URL (scripts/standby.sh start)")
on_the_standby = pytest.mark.django_db(transaction=True,
                                       databases=["default", replica.REPLICA] if CONFIGURED else ["default"])
