#!/usr/bin/env python
"""The read replica under an ingest: its lag, and the public pages' times with and without it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h8 .venv/bin/python bench/replica_lag.py \
        --file var/bench/replica-200k.jsonl [--replica postgres://postgres@127.0.0.1:5439/h8] [--seconds 60]

Uses DATABASE_URL's database as it is (migrated, catalog loaded: it empties its generations,
rollups and ledger first), the filesystem broker in var/bench-broker and the file cache (no Redis:
nothing shared with other work). Starts one Celery worker (solo) and gunicorn (2 workers, DEBUG off),
both with `DATABASE_REPLICA_URL` when `--replica` is given, queues the file and, until it is done or
`--seconds` pass, samples `pg_stat_replication` on the primary every 0.25 s and requests the public
pages from 2 client threads. Prints one JSON line: the ingest rate, the replica's replay lag (s) and
byte lag (p50, p99, max), the pages' p50 and p99 in ms, non-200 answers, and core.replica's
warnings in the worker (prewarms that gave up waiting) and in the web server (pages that did). Takes /tmp/bench.lock like the other benchmarks.
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(PY).parent
TABLES = ("analytics_generation", "analytics_generationkey", "analytics_endpointhour", "analytics_endpointday",
          "analytics_endpointhistogram", "analytics_appday", "analytics_accountday", "analytics_accounthour",
          "analytics_accountuserday", "analytics_accounttagday", "analytics_reject", "analytics_ingestchunk",
          "analytics_ingestbatch", "billing_ledgerentry")
PAGES = ("/rankings/?window=day", "/rankings/?window=week", "/rankings/?window=month&metric=spend", "/models/",
         "/rankings/price-index/")


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--replica", default="", help="DATABASE_REPLICA_URL for the worker and the web server")
    parser.add_argument("--seconds", type=int, default=120)
    options = parser.parse_args()
    if os.environ.get("TOKENGRID_BENCH_LOCKED") != "1":
        os.execvpe("flock", ["flock", "/tmp/bench.lock", PY, *sys.argv], {**os.environ, "TOKENGRID_BENCH_LOCKED": "1"})

    logs = Path(tempfile.mkdtemp(prefix="tokengrid-replica-"))
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL", "DATABASE_REPLICA_URL")}
    env |= {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "bench-only", "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0", "CELERY_FILESYSTEM_DIR": str(ROOT / "var" / "bench-broker"),
            "DJANGO_SETTINGS_MODULE": "config.settings"}
    if options.replica:
        env["DATABASE_REPLICA_URL"] = options.replica
    primary = psycopg.connect(env["DATABASE_URL"], autocommit=True)
    primary.execute(f"TRUNCATE {', '.join(TABLES)}")
    subprocess.run(["rm", "-rf", str(ROOT / "var" / "bench-broker"), str(ROOT / "var" / "cache")], check=True)

    port = free_port()
    server = subprocess.Popen([str(BIN / "gunicorn"), "config.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}",
                               "--log-level", "warning", "--error-logfile", str(logs / "gunicorn.log")],
                              cwd=ROOT, env=env, stderr=(logs / "web.err").open("w"))
    worker = subprocess.Popen([str(BIN / "celery"), "-A", "config", "worker", "-P", "solo",
                               "-Q", "ingest,rollups,reports,billing,default", "--without-gossip", "--without-mingle",
                               "--loglevel=WARNING", "--logfile", str(logs / "worker.log")],
                              cwd=ROOT, env=env, stderr=(logs / "worker.err").open("w"))
    times: list[float] = []
    failures = [0]
    lags: list[float] = []
    byte_lags: list[int] = []
    done = threading.Event()

    def client(offset: int) -> None:
        i = offset
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while not done.is_set():
            started = time.perf_counter()
            try:
                conn.request("GET", PAGES[i % len(PAGES)])
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failures[0] += 1
            except (OSError, http.client.HTTPException):
                failures[0] += 1
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                time.sleep(0.2)
                continue
            times.append((time.perf_counter() - started) * 1000)
            i += 1

    try:
        for _ in range(120):  # the server answers
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=60).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.5)
        started = time.monotonic()
        ingest = subprocess.Popen([PY, "manage.py", "ingest", str(options.file), "--wait"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        clients = [threading.Thread(target=client, args=(n,)) for n in range(2)]
        for thread in clients:
            thread.start()
        while ingest.poll() is None and time.monotonic() - started < options.seconds:
            row = primary.execute("SELECT extract(epoch FROM replay_lag), pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)"
                                  " FROM pg_stat_replication ORDER BY application_name LIMIT 1").fetchone()
            if row is not None and options.replica:
                lags.append(float(row[0] or 0))
                byte_lags.append(int(row[1] or 0))
            time.sleep(0.25)
        elapsed = time.monotonic() - started
        done.set()
        for thread in clients:
            thread.join()
        output = ingest.communicate(timeout=600)[0] if ingest.poll() is not None else "(still running)"
        rows = primary.execute("SELECT count(*) FROM analytics_generation").fetchone()[0]
    finally:
        done.set()
        for process in (server, worker):
            process.terminate()
        for process in (server, worker):
            process.wait(timeout=60)
    def warned(name: str) -> int:  # core.replica's warnings: a wait given up, or the replica unavailable
        return sum((logs / f).read_text().count("read replica") for f in (f"{name}.err", f"{name}.log")
                   if (logs / f).exists())
    print(json.dumps({
        "replica": bool(options.replica), "rows": rows, "seconds": round(elapsed, 1),
        "rows_per_s": round(rows / elapsed), "ingest": output.strip().splitlines()[-1:],
        "replay_lag_s": {"p50": round(pct(lags, 0.5), 3), "p99": round(pct(lags, 0.99), 3),
                         "max": round(max(lags, default=0), 3), "samples": len(lags)},
        "byte_lag": {"p50": pct(byte_lags, 0.5), "p99": pct(byte_lags, 0.99), "max": max(byte_lags, default=0)},
        "pages": {"requests": len(times), "p50_ms": round(statistics.median(times), 1) if times else None,
                  "p99_ms": round(pct(times, 0.99), 1), "failed": failures[0]},
        "replica_warnings": {"prewarm": warned("worker"), "pages": warned("web")}, "load_avg": [round(x, 2) for x in os.getloadavg()], "logs": str(logs)}))


if __name__ == "__main__":
    main()
