#!/usr/bin/env python
"""The hourly alerts over all accounts, and the thresholds check of a chunk, on a database with traffic.

    .venv/bin/python bench/alerts.py --database h5 [--hour 2026-12-07T13:00:00Z] [--chunk 50000]

Prints the size of the hourly rollup and how many accounts spent in the hour, then times (median
of --runs) and EXPLAIN (ANALYZE, BUFFERS)-es the unusual-spend query (`billing.unusual._FIND_SQL`,
one query for all accounts), times the whole unusual-spend find (with the contributors of the
accounts it flags) and the pace alerts' candidate query, and the after-debit thresholds check
(`billing.thresholds.budget_thresholds_check`) for a chunk of --chunk accounts beside the cost of
passing their ids alone. Reads only: nothing is emitted (the checks that claim run in a
transaction that is rolled back). Traffic: `manage.py generate_traffic --accounts 100000 --days 56`
then `manage.py ingest FILE --wait` (bench/README or the main README).
"""
import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from production_env import production_env  # noqa: E402  (bench/, the script's own folder)


class Rollback(Exception):
    pass


def timed(work, runs: int) -> float:
    spent = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        spent.append(time.perf_counter() - start)
    return statistics.median(spent) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--hour", default="", help="the hour's start, ISO 8601 (default: the last hour with spend)")
    parser.add_argument("--chunk", type=int, default=50_000, help="accounts of the after-debit chunk")
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    os.environ.update(production_env(options.database))
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django
    django.setup()
    from django.db import connection, transaction

    from billing import pace, unusual
    from billing.models import Account
    from billing.thresholds import budget_thresholds_check

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), pg_size_pretty(pg_relation_size('analytics_accounthour')), max(hour)"
                       " FROM analytics_accounthour")
        rows, size, last = cursor.fetchone()
        hour = (datetime.fromisoformat(options.hour.replace("Z", "+00:00")) if options.hour else last).astimezone(UTC)
        cursor.execute("SELECT count(DISTINCT account_id) FROM analytics_accounthour WHERE hour = %s", [hour])
        active = cursor.fetchone()[0]
        print(f"{Account.objects.count():,} accounts; analytics_accounthour {rows:,} rows ({size}); "
              f"{active:,} accounts spent in {hour:%Y-%m-%d %H}:00 UTC")

        def find_only():
            cursor.execute(unusual._FIND_SQL, {"hour": hour})
            cursor.fetchall()

        print(f"unusual-spend query: {timed(find_only, options.runs):.0f} ms (median of {options.runs})")
        print(f"unusual-spend find with contributors: "
              f"{timed(lambda: unusual.unusual_spend_find(hour=hour), options.runs):.0f} ms")
        now = hour + timedelta(hours=1, minutes=7)

        def candidates():
            pace._candidates(now)

        print(f"pace candidates: {timed(candidates, options.runs):.0f} ms")
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + unusual._FIND_SQL, {"hour": hour})
        print("\n".join(row[0] for row in cursor.fetchall()))

    ids = sorted(Account.objects.values_list("pk", flat=True))[:options.chunk]

    def ids_alone():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 WHERE 0 = ANY(%s::bigint[])", [ids])
            cursor.fetchall()

    try:
        with transaction.atomic():
            checks = timed(lambda: budget_thresholds_check(account_ids=ids), options.runs)
            raise Rollback
    except Rollback:
        pass
    print(f"after-debit thresholds check, {len(ids):,} accounts: {checks:.1f} ms "
          f"(their ids alone: {timed(ids_alone, options.runs):.1f} ms)")


if __name__ == "__main__":
    main()
