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

    .venv/bin/python bench/ingest.py --orders live,shuffled [--accounts [N]] [--rate 8000] [--events 1000000]

`--orders` measures the same content in other orders, each file against its own ceiling, in one
run (with `--accounts`, each order at 12 and at N accounts: four runs for two orders):
- `month` (what the runs without `--orders` measure): a month of traffic written in time order
  (`generate_traffic --events E`); a 50k-record chunk covers about a day and a half;
- `shuffled`: the same month with its timestamps scattered at random through the file
  (`generate_traffic --events E --shuffle`): every chunk touches every hour of the month;
- `live`: a router's live stream, Poisson arrivals at `--rate` requests/s (default 8,000, about
  OpenRouter's average) over the hours that make `--events` records, ending now
  (`generate_traffic --live --rate R --hours E/(R × 3600)`): a chunk covers a few seconds.
Each run starts on a database emptied of accounts too. The JSON on stdout has one entry per run
under `runs`, keyed `<order>/<accounts>` (each carries `order` and `accounts`), and per order the
rate at N accounts over the rate at 12; a table of the same runs goes to stderr.
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


ORDERS = ("month", "shuffled", "live")
LIVE_RATE = 8_000  # requests/s: about OpenRouter's average


def traffic_file(*, events: int, accounts: int | None, env: dict, order: str = "month",
                 rate: float = LIVE_RATE) -> Path:
    """var/bench/traffic-<events>[-a<accounts>][-shuffled|-live<rate>].jsonl, generated with seed 1 unless it exists.

    A live stream has the same `events` records, at `rate` requests/s: over events / rate seconds.
    """
    folder = ROOT / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    suffix = {"month": "", "shuffled": "-shuffled", "live": f"-live{rate:g}"}[order]
    path = folder / (f"traffic-{events}{suffix}.jsonl" if accounts is None
                     else f"traffic-{events}-a{accounts}{suffix}.jsonl")
    if not path.exists():
        started = time.perf_counter()
        extra = [] if accounts is None else ["--accounts", str(accounts)]
        extra += {"month": ["--events", str(events)], "shuffled": ["--events", str(events), "--shuffle"],
                  "live": ["--live", "--rate", repr(float(rate)), "--hours", repr(events / rate / 3600)]}[order]
        summary = run([PY, "manage.py", "generate_traffic", "--out", str(path), "--seed", "1", *extra], env,
                      capture_output=True).stdout.strip()
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
    parser.add_argument("--orders", type=orders_list, metavar="ORDER,…",
                        help="measure these orders of the traffic, each against its own ceiling: "
                             "month (the default file, in time order), shuffled, live (e.g. live,shuffled)")
    parser.add_argument("--rate", type=float, default=LIVE_RATE,
                        help="the live stream's requests/s (its hours: --events / rate / 3600)")
    parser.add_argument("--chunk-lines", type=int, default=50_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated files in var/bench/")
    parser.add_argument("--database", default=DB, help="PostgreSQL database to create or reuse")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12",
                        help="the workers' cache (flushed before a run at fresh accounts)")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/13", help="the Celery broker (purged)")
    options = parser.parse_args()
    if options.accounts is not None and (options.file or options.accounts < 1):
        parser.error("--accounts takes a positive count and generates its files: no --file")
    if options.orders and options.file:
        parser.error("--orders generates its files: no --file")
    if options.rate <= 0:
        parser.error("--rate must be positive")
    db = options.database

    env = {**os.environ, "DATABASE_URL": f"{PG}/{db}", "CELERY_BROKER_URL": options.broker_url,
           "REDIS_URL": options.redis_url, "INGEST_CHUNK_LINES": str(options.chunk_lines),
           "DJANGO_SETTINGS_MODULE": "config.settings",
           # As in production: with DEBUG on, Django keeps every statement's SQL (up to 9,000 of
           # them, some of a chunk's 25,000 ids) and the workers' memory grows with every chunk.
           "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-" + "x" * 50)}
    if psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'") != "1":
        psql(f"CREATE DATABASE {db}")
    run([PY, "manage.py", "migrate", "-v", "0"], env)
    run([PY, "manage.py", "catalog_sync"], env, capture_output=True)

    if options.orders:
        orders_measure(options, env=env, db=db)
        return

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


def orders_list(text: str) -> list[str]:
    orders = [order.strip() for order in text.split(",") if order.strip()]
    unknown = sorted(set(orders) - set(ORDERS))
    if unknown or not orders:
        raise argparse.ArgumentTypeError(f"orders are {', '.join(ORDERS)}, not {', '.join(unknown) or 'nothing'}")
    return list(dict.fromkeys(orders))


def orders_measure(options: argparse.Namespace, *, env: dict, db: str) -> None:
    """Each order of the traffic at 12 accounts (and at N with --accounts), each against its own ceiling."""
    cardinalities = [12] if options.accounts is None else [12, options.accounts]
    runs, paths = {}, []
    for order in options.orders:
        for accounts in cardinalities:
            path = traffic_file(events=options.events, accounts=None if accounts == 12 else accounts, env=env,
                                order=order, rate=options.rate)
            paths.append(path)
            result = measure(path, env=env, db=db, workers=options.workers, fresh_accounts=True)
            runs[f"{order}/{accounts}"] = {"order": order, "accounts_configured": accounts, **result}
    summary = {
        "records": options.events, "orders": options.orders, "accounts": cardinalities, "workers": options.workers,
        "live_rate": options.rate if "live" in options.orders else None,
        "live_seconds": round(options.events / options.rate, 1) if "live" in options.orders else None,
        "ratio": {name: run["ratio"] for name, run in runs.items()},
        "runs": runs,
    }
    if options.accounts is not None:  # per order, the target: the rate at N accounts within 0.8x of 12
        summary["rate_many_over_12"] = {
            order: round(runs[f"{order}/{options.accounts}"]["tokengrid_rows_per_s"]
                         / runs[f"{order}/12"]["tokengrid_rows_per_s"], 3) for order in options.orders}
    print(f"{'order':<9} {'accounts':>8} {'records':>9} {'ceiling/s':>10} {'tokengrid/s':>11} {'ratio':>6} "
          f"{'cpu s':>6}", file=sys.stderr)
    for run in runs.values():
        print(f"{run['order']:<9} {run['accounts_configured']:>8,} {run['records']:>9,} "
              f"{run['ceiling_rows_per_s']:>10,} {run['tokengrid_rows_per_s']:>11,} {run['ratio']:>6.3f} "
              f"{run['tokengrid_cpu_seconds']:>6.1f}", file=sys.stderr)
    print(json.dumps(summary))
    if not options.keep:
        for path in paths:
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
