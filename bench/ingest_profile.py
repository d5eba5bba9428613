#!/usr/bin/env python
"""Where one chunk's time goes: ingestion's stages in microseconds per record, on PostgreSQL.

    .venv/bin/python bench/ingest_profile.py [--file F] [--chunks 6] [--database tokengrid_bench]
    .venv/bin/python bench/ingest_profile.py --accounts [N] [--events 1000000]

Runs the real chunk path (`analytics.ingest.chunk.chunk_ingest`) in this process, one chunk after
another on an emptied database, and times each stage: parsing, building stage rows, the COPY into
staging, every SQL statement of the apply (keys, generations, each rollup, the usage sums) and the
rest (the chunk's bookkeeping and ledger debits). One process alone, so the stages never overlap
and their times add up to the chunk's; a statement's wall time is the server's work on an otherwise
idle machine. It then prints what that costs against the ceiling on this machine: with every core
busy, `cores / (seconds per record)` is the most ingestion can reach, and the same without the
rollups shows what the rest alone allows. Run `bench/ingest.py --keep` first: it makes the file
and the database. `--accounts N` (100,000 when omitted) profiles the router-shaped file of
`bench/ingest.py --accounts N --keep` (var/bench/traffic-<events>-a<N>.jsonl, generated here when
missing) on a database emptied of accounts too, so each chunk registers the accounts it is the
first to touch, as in that benchmark.

    .venv/bin/python bench/ingest_profile.py --orders live,shuffled [--accounts [N]] [--rate 8000]

`--orders` profiles each order of the traffic of `bench/ingest.py --orders` (month, shuffled, live:
the same files, generated here when missing) at 12 accounts, and at N with `--accounts`, one after
the other in this process, each on a database emptied of accounts too. Each prints its stages and
its own bound (cores / µs per record), under a heading naming the order and the accounts; a table
of the totals, rollups and bounds of every run closes the report.
"""
import argparse
import gc
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, help="default: var/bench/traffic-<events>[-a<accounts>].jsonl")
    parser.add_argument("--accounts", type=int, nargs="?", const=100_000, metavar="N",
                        help="profile the file over N accounts (default 100000), generating it if missing")
    parser.add_argument("--events", type=int, default=1_000_000, help="records of the default file")
    parser.add_argument("--database", default="tokengrid_bench")
    parser.add_argument("--chunks", type=int, default=6, help="chunks to ingest (the first is not counted)")
    parser.add_argument("--chunk-lines", type=int, default=50_000)
    parser.add_argument("--orders", metavar="ORDER,…",
                        help="profile these orders of the traffic: month, shuffled, live (e.g. live,shuffled)")
    parser.add_argument("--rate", type=float, default=None, help="the live stream's requests/s (default 8000)")
    options = parser.parse_args()
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{options.database}"
    os.environ["INGEST_CHUNK_LINES"] = str(options.chunk_lines)
    # Redis as in bench/ingest.py (its cache and broker db numbers): without REDIS_URL the settings'
    # file cache (20,000 entries) culls on every write once a chunk's accounts fill it.
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/13")
    sys.path.append(str(ROOT / "bench"))
    # The tables bench/ingest.py empties, the files it makes.
    from ingest import LIVE_RATE, TABLES, orders_list, traffic_file

    rate = options.rate or LIVE_RATE
    if options.orders:
        if options.file:
            parser.error("--orders generates its files: no --file")
        try:
            orders = orders_list(options.orders)
        except argparse.ArgumentTypeError as error:
            parser.error(str(error))
        cardinalities = [12] if options.accounts is None else [12, options.accounts]
        runs = [(f"{order}, {accounts:,} accounts",
                 traffic_file(events=options.events, accounts=None if accounts == 12 else accounts,
                              env=dict(os.environ), order=order, rate=rate), True)
                for order in orders for accounts in cardinalities]
    elif options.file is None:
        folder = ROOT / "var" / "bench"
        runs = [("", traffic_file(events=options.events, accounts=options.accounts, env=dict(os.environ))
                 if options.accounts is not None else folder / f"traffic-{options.events}.jsonl",
                 options.accounts is not None)]
    else:
        runs = [("", options.file, options.accounts is not None)]

    import django

    django.setup()
    from django.core.cache import cache
    from django.db import connection

    from analytics import ingest
    from analytics.ingest import chunk, formats, loader
    from analytics.ingest.tasks import ingest_batch_split, ingest_chunk
    from analytics.models import IngestChunk
    from analytics.rankings.tasks import rollup_rankings_refresh

    for task in (ingest_chunk, ingest_batch_split, rollup_rankings_refresh):
        task.delay = lambda *args, **kwargs: None  # this process runs the chunks itself
    spent: dict[str, float] = defaultdict(float)

    def timed(name, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - started
        return wrapper

    def parse_timed(*args, **kwargs):
        items = formats.parse_lines.__wrapped__(*args, **kwargs)
        while True:
            started = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                spent["parse and validate (Python)"] += time.perf_counter() - started
                return
            spent["parse and validate (Python)"] += time.perf_counter() - started
            yield item

    def statement_name(sql: str) -> str:  # the statements of analytics.ingest.loader by name, the rest together
        if sql.startswith("INSERT INTO analytics_"):
            table = sql.split()[2].removeprefix("analytics_")
            return f"SQL insert {table}" if table in ("generation", "generationkey") else f"SQL rollup {table}"
        if sql.startswith("WITH k AS"):
            return "SQL insert generationkey"
        if sql.startswith("SELECT account_id, SUM"):
            return "SQL usage sums"
        if sql.startswith("WITH e AS (INSERT INTO billing_ledgerentry"):
            return "SQL ledger: every entry and balance"
        if sql.startswith("SELECT count(*) FROM (SELECT id FROM billing_account"):
            return "SQL ledger: lock the accounts"
        if sql.startswith(("SELECT external_id, id FROM billing_account", "SELECT k.account_id, k.external_id")):
            return "SQL register: look up accounts and keys"
        if sql.startswith(("INSERT INTO billing_account ", "INSERT INTO billing_apikey ")):
            return "SQL register: insert accounts and keys"
        return "SQL: catalog, chunk and ledger rows, savepoints"

    def sql_timer(execute, sql, params, many, context):
        name = statement_name(sql)
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent[name] += time.perf_counter() - started

    parse_timed.__wrapped__ = formats.parse_lines
    formats.parse_lines = parse_timed
    chunk.stage_rows = timed("register, price, build stage rows (Python)", chunk.stage_rows)
    # After the commit: usage versions (cache round trips) and the task messages of the fan-out.
    chunk.chunk_fan_out = timed("after commit: the fan-out (cache, task messages)", chunk.chunk_fan_out)
    loader._load = timed("_load", loader._load)
    loader._generations_insert = timed("_insert", loader._generations_insert)

    connection.ensure_connection()
    connection.connection.commit = timed("COMMIT (the WAL flushed to disk)", connection.connection.commit)
    collecting = []

    def gc_timer(phase, info):
        if phase == "start":
            collecting.append(time.perf_counter())
        elif collecting:
            spent["cyclic garbage collector"] += time.perf_counter() - collecting.pop()

    gc.callbacks.append(gc_timer)

    def profile(path: Path, *, fresh_accounts: bool) -> tuple[float, float]:
        """Run and time the chunks of one file on emptied tables; print its stages; its µs per record and rollups."""
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(TABLES)}")
            if fresh_accounts:  # as bench/ingest.py: no cached state of the accounts just removed
                cursor.execute("TRUNCATE billing_account CASCADE")
                cache.clear()
            else:
                cursor.execute("UPDATE billing_account SET balance_units = 0")
        batch = ingest.batch_queue(path=path, source="profile")
        ingest.batch_split(batch_id=batch.pk)
        chunks = list(IngestChunk.objects.filter(batch=batch).order_by("index").values_list("index", flat=True))
        per_record: dict[str, list[float]] = defaultdict(list)
        with connection.execute_wrapper(sql_timer):
            for index in chunks[:options.chunks]:
                spent.clear()
                started = time.perf_counter()
                result = ingest.chunk_ingest(batch_id=batch.pk, index=index)
                total = time.perf_counter() - started
                spent["COPY into staging (client and server)"] = spent.pop("_load") - spent.pop("_insert")
                # SQL inside the Python stage (registration's look-ups) is counted once, as SQL.
                spent["register, price, build stage rows (Python)"] -= (
                    spent.get("SQL register: look up accounts and keys", 0)
                    + spent.get("SQL register: insert accounts and keys", 0))
                spent["Python: chunk bookkeeping, rejects, ledger debits"] = total - sum(spent.values())
                if index == chunks[0]:
                    continue  # warms the catalog registration and the caches
                for name, seconds in list(spent.items()):
                    per_record[name].append(seconds / result.lines * 1e6)
                per_record["total"].append(total / result.lines * 1e6)

        rows = {name: statistics.median(values) for name, values in per_record.items()}
        total = rows.pop("total")
        print(f"median of {len(per_record['total'])} chunks of {options.chunk_lines:,} records, µs per record:")
        for name, value in sorted(rows.items(), key=lambda item: -item[1]):
            print(f"  {value:6.2f}  {value / total:5.1%}  {name}")
        rollups = sum(value for name, value in rows.items() if name.startswith("SQL rollup"))
        cores = os.cpu_count() or 1
        print(f"  {total:6.2f}  total (one process, nothing overlapping); rollups {rollups:.2f}")
        print(f"with {cores} cores all busy: at most {cores / total * 1e6:,.0f} records/s; "
              f"without any rollup at most {cores / (total - rollups) * 1e6:,.0f} records/s")
        return total, rollups

    cores = os.cpu_count() or 1
    bounds = []
    for heading, path, fresh_accounts in runs:
        if heading:
            print(f"\n{heading} ({path.name}):")
        total, rollups = profile(path, fresh_accounts=fresh_accounts)
        bounds.append((heading, total, rollups))
    if len(runs) > 1:
        print(f"\n{'run':<32} {'µs/record':>9} {'rollups':>7} {'bound/s':>9} {'no rollups/s':>12}")
        for heading, total, rollups in bounds:
            print(f"{heading:<32} {total:>9.1f} {rollups:>7.1f} {cores / total * 1e6:>9,.0f} "
                  f"{cores / (total - rollups) * 1e6:>12,.0f}")


if __name__ == "__main__":
    main()
