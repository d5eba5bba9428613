#!/usr/bin/env python
"""Ingest throughput against the plain-COPY ceiling, in one run, on PostgreSQL.

    .venv/bin/python bench/ingest.py [--events 1000000] [--workers 1] [--file F] [--keep]
    .venv/bin/python bench/ingest.py --accounts [N] [--events 1000000]

Creates (or reuses) the database `tokengrid_bench`, migrates it and loads the catalog, generates
`--events` records with `generate_traffic` (or takes `--file`), runs bench/copy_ceiling.py
on the file, empties the generation and rollup tables, then ingests the same file through the real
path (`manage.py ingest --wait`, Celery workers on Redis, COPY + set-based rollups + usage debits)
and prints both rates, their ratio, each worker's peak memory (VmHWM) and the CPU time each run took
(the machine's busy time, and the workers' own share of it).

`--accounts N` (N = 100,000 when omitted) measures a router's cardinality: it generates two files
of `--events` records, one over the default 12 accounts and one over N accounts (Zipf: about 70k of
100k accounts appear in 1M records, 1-4 keys each, end users, apps), and measures the ceiling and
the ingest of each, one after the other, each on a database emptied of accounts too (so both
register the accounts they touch, as a first ingest does). It prints both results and the ingest
rate at N accounts over the rate at 12 (the target: at least 0.8).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CEILING = ROOT / "bench" / "copy_ceiling.py"
PG = "postgres://postgres@127.0.0.1:5432"
DB = "tokengrid_bench"
PY = sys.executable
CELERY = str(Path(PY).parent / "celery")
TABLES = ("analytics_generation", "analytics_generationkey", "analytics_endpointhour", "analytics_endpointday", "analytics_endpointhistogram",
          "analytics_appday", "analytics_accountday", "analytics_accounthour", "analytics_accountuserday", "analytics_accounttagday",
          "analytics_reject", "analytics_ingestchunk", "analytics_ingestbatch",
          "billing_ledgerentry")


def run(args: list[str], env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, check=True, text=True, **kwargs)


def psql(sql: str, database: str = "postgres") -> str:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-tAc", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def busy_seconds() -> float:
    """CPU time the whole machine spent busy (all cores, every process), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def traffic_file(*, events: int, accounts: int | None, env: dict) -> Path:
    """var/bench/traffic-<events>[-a<accounts>].jsonl, generated with seed 1 unless it exists."""
    folder = ROOT / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"traffic-{events}.jsonl" if accounts is None else f"traffic-{events}-a{accounts}.jsonl")
    if not path.exists():
        started = time.perf_counter()
        extra = [] if accounts is None else ["--accounts", str(accounts)]
        summary = run([PY, "manage.py", "generate_traffic", "--events", str(events), "--out", str(path),
                       "--seed", "1", *extra], env, capture_output=True).stdout.strip()
        print(f"generated {path.name} in {time.perf_counter() - started:.1f} s: {summary}", file=sys.stderr)
    return path


def measure(path: Path, *, env: dict, db: str, workers: int, fresh_accounts: bool = False) -> dict:
    """The plain-COPY ceiling of the file, then its real ingest on emptied tables: rates, CPU, memory."""
    size = path.stat().st_size
    busy = busy_seconds()
    ceiling = json.loads(run([PY, str(CEILING), str(path), f"{PG}/{db}"], env, capture_output=True).stdout)
    ceiling_cpu = busy_seconds() - busy

    psql(f"TRUNCATE {', '.join(TABLES)}", db)
    if fresh_accounts:  # and everything that hangs off them: keys, end users, ledger, payments
        psql("TRUNCATE billing_account CASCADE", db)
        subprocess.run(["redis-cli", "-u", env["REDIS_URL"], "FLUSHDB"], check=True, capture_output=True)
    else:
        psql("UPDATE billing_account SET balance_units = 0", db)
    subprocess.run([CELERY, "-A", "config", "purge", "-f"], cwd=ROOT, env=env, capture_output=True)
    procs = []
    for n in range(workers):
        procs.append(subprocess.Popen(
            # Every queue a chunk feeds (billing: the after-debit checks), so the rate pays for all of it.
            [CELERY, "-A", "config", "worker", "-P", "solo", "-Q", "ingest,rollups,billing,default", "-n", f"bench{n}@%h",
             "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(4)
    try:
        started, busy = time.perf_counter(), busy_seconds()
        workers_cpu = sum(cpu_seconds(p.pid) for p in procs)
        run([PY, "manage.py", "ingest", str(path), "--wait"], env, capture_output=True)
        wall = time.perf_counter() - started
        ingest_cpu = busy_seconds() - busy
        workers_cpu = sum(cpu_seconds(p.pid) for p in procs) - workers_cpu
        peaks = [peak_kib(p.pid) for p in procs]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    stats = psql("SELECT accepted, duplicates, rejected, extract(epoch FROM finished_at - created_at) "
                 "FROM analytics_ingestbatch ORDER BY id DESC LIMIT 1", db).split("|")
    accepted, seconds = int(stats[0]), float(stats[3])
    rate = accepted / seconds
    result = {
        "file": path.name, "records": ceiling["rows"], "bytes": size, "workers": workers,
        "ceiling_rows_per_s": ceiling["rows_per_s"], "tokengrid_rows_per_s": round(rate),
        "ratio": round(rate / ceiling["rows_per_s"], 3), "tokengrid_seconds": round(seconds, 2),
        "command_wall_seconds": round(wall, 2), "accepted": accepted, "duplicates": int(stats[1]),
        "rejected": int(stats[2]), "worker_peak_mib": [round(p / 1024) for p in peaks],
        # Where the CPU went (the machine's busy time while each ran, all processes): the two rates
        # are bounded by these on a machine with few cores.
        "ceiling_cpu_seconds": round(ceiling_cpu, 1), "tokengrid_cpu_seconds": round(ingest_cpu, 1),
        "tokengrid_workers_cpu_seconds": round(workers_cpu, 1),
        # The ratio this machine allows at this CPU cost: every core busy with ingestion.
        "ratio_cpu_bound": round((os.cpu_count() or 1) * accepted / ingest_cpu / ceiling["rows_per_s"], 3),
    }
    if fresh_accounts:  # what the file registered: the cardinality this run paid for
        result["accounts"], result["api_keys"] = (int(v) for v in psql(
            "SELECT (SELECT count(*) FROM billing_account), (SELECT count(*) FROM billing_apikey)", db).split("|"))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes (each -P solo); 2 on 2 cores lets parsing overlap the database")
    parser.add_argument("--file", type=Path, help="an openrouter JSONL file to use instead of generating one")
    parser.add_argument("--accounts", type=int, nargs="?", const=100_000, metavar="N",
                        help="also generate and measure a file over N accounts (default 100000) against 12")
    parser.add_argument("--chunk-lines", type=int, default=50_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated files in var/bench/")
    parser.add_argument("--database", default=DB, help="PostgreSQL database to create or reuse")
    options = parser.parse_args()
    if options.accounts is not None and (options.file or options.accounts < 1):
        parser.error("--accounts takes a positive count and generates its files: no --file")
    db = options.database

    env = {**os.environ, "DATABASE_URL": f"{PG}/{db}", "CELERY_BROKER_URL": "redis://127.0.0.1:6379/13",
           "REDIS_URL": "redis://127.0.0.1:6379/12", "INGEST_CHUNK_LINES": str(options.chunk_lines),
           "DJANGO_SETTINGS_MODULE": "config.settings",
           # As in production: with DEBUG on, Django keeps every statement's SQL (up to 9,000 of
           # them, some of a chunk's 25,000 ids) and the workers' memory grows with every chunk.
           "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-" + "x" * 50)}
    if psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'") != "1":
        psql(f"CREATE DATABASE {db}")
    run([PY, "manage.py", "migrate", "-v", "0"], env)
    run([PY, "manage.py", "catalog_sync"], env, capture_output=True)

    if options.accounts is None:
        path = options.file or traffic_file(events=options.events, accounts=None, env=env)
        print(json.dumps(measure(path, env=env, db=db, workers=options.workers)))
        if not options.keep and not options.file:
            path.unlink(missing_ok=True)
        return

    paths = {12: traffic_file(events=options.events, accounts=None, env=env),
             options.accounts: traffic_file(events=options.events, accounts=options.accounts, env=env)}
    runs = {n: measure(path, env=env, db=db, workers=options.workers, fresh_accounts=True)
            for n, path in paths.items()}
    few, many = runs[12], runs[options.accounts]
    print(json.dumps({
        "records": few["records"], "accounts": [12, options.accounts], "workers": options.workers,
        "ceiling_rows_per_s": [few["ceiling_rows_per_s"], many["ceiling_rows_per_s"]],
        "tokengrid_rows_per_s": [few["tokengrid_rows_per_s"], many["tokengrid_rows_per_s"]],
        "ratio": [few["ratio"], many["ratio"]],
        # The target: the rate at N accounts within 0.8x of the rate at 12.
        "rate_many_over_12": round(many["tokengrid_rows_per_s"] / few["tokengrid_rows_per_s"], 3),
        "tokengrid_cpu_seconds": [few["tokengrid_cpu_seconds"], many["tokengrid_cpu_seconds"]],
        "worker_peak_mib": [few["worker_peak_mib"], many["worker_peak_mib"]],
        "runs": {str(n): result for n, result in runs.items()},
    }))
    if not options.keep:
        for path in paths.values():
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
