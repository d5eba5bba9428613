#!/usr/bin/env python
"""Account pages and exports at the server, on a PostgreSQL database already filled by ingestion.

    .venv/bin/python bench/account.py --database tokengrid_bench [--iterations 30] [--rows 1000000]
        [--only pages|usage_csv|generations_csv] [--export-runs 3] [--account busiest|median|ID] [--zone NAME]

Signs in a bench user as a member of the busiest account (most requests; `--account median`: the
account in the middle of the ranking by requests, or an account id) and prints, as one JSON
line: server time p50/p90 of the overview (30 days, its six top tables: models, keys, apps,
providers, users, tags) and the activity page, the explorer with two group-bys and a filter (30 days
by day, grouped by end user and model, filtered to the account's most used tag: summed from its
generations; by model and key when its traffic has no tags) and `activity_rollup`, the explorer by
model and key filtered to its busiest provider (the daily rollup), cold (cache emptied before each request) and cached (after `usage_prewarm`, as
the refresh after each ingested chunk leaves them; the grouped activity view is cached by its
first visit); the time to download usage.csv for the busiest account's busiest calendar month
(day x model x key); and generations.csv over the newest days that hold `--rows` generations of
that account, `--export-runs` times: the median rows/s, every run's, and the process's peak memory
before the first and after the last (flat memory = no growth). `--zone America/New_York` measures
the account in that time zone (its pages then read the hourly rollup, and user or tag slices its
generations); its own zone is put back after.
Fill a database with `bench/ingest.py --events 10000000` (it keeps its data in `tokengrid_bench`).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from production_env import production_env  # noqa: E402  (bench/, the script's own folder)


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 1)}


def peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def generations_csv(client, account_id: int, rows_wanted: int, runs: int) -> dict:
    """Download generations.csv over the newest days holding `rows_wanted` of the account's rows."""
    from django.db.models import Sum

    from analytics.models import AccountDay

    per_day = list(AccountDay.objects.filter(account_id=account_id).values("day").annotate(n=Sum("requests"))
                   .order_by("-day").values_list("day", "n"))
    total, first_day = 0, per_day[-1][0]
    for day, n in per_day:
        total += n
        first_day = day
        if total >= rows_wanted:
            break
    end_day = per_day[0][0]
    memory_before = peak_mib()
    rates, seconds = [], []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(f"/account/reports/generations.csv?start={first_day}&end={end_day}")
        rows = sum(chunk.count(b"\n") for chunk in response.streaming_content) - 1
        seconds.append(time.perf_counter() - started)
        rates.append(rows / seconds[-1])
    return {"start": str(first_day), "end": str(end_day), "rows": rows,
            "seconds": round(statistics.median(seconds), 2), "rows_per_s": round(statistics.median(rates)),
            "runs_rows_per_s": [round(rate) for rate in rates],
            "peak_mib_before": memory_before, "peak_mib_after": peak_mib()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="tokengrid_bench")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--rows", type=int, default=1_000_000, help="generations in the generations.csv export")
    parser.add_argument("--only", choices=("pages", "usage_csv", "generations_csv"), help="measure only this")
    parser.add_argument("--export-runs", type=int, default=3, help="downloads of generations.csv (median)")
    parser.add_argument("--account", default="busiest", help="busiest, median or an account id")
    parser.add_argument("--zone", help="an IANA time zone to measure the account in (default: its own)")
    options = parser.parse_args()
    os.environ.update(production_env(options.database))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Sum

    from analytics.models import AccountDay
    from billing.models import Account

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # planner statistics, as autovacuum keeps them after a bulk load
    ranked = AccountDay.objects.values("account_id").annotate(n=Sum("requests")).order_by("-n", "account_id")
    if options.account == "median":
        busiest = ranked[ranked.count() // 2] if ranked.exists() else None
    elif options.account == "busiest":
        busiest = ranked.first()
    else:
        busiest = ranked.filter(account_id=int(options.account)).first()
    if busiest is None:
        sys.exit("the database holds no traffic (fill it with bench/ingest.py first) or not that account")
    account_id = busiest["account_id"]
    own_zone = Account.objects.get(pk=account_id).time_zone
    if options.zone:
        Account.objects.filter(pk=account_id).update(time_zone=options.zone)
    try:
        measure(options, client_for(account_id), account_id, busiest, result_base(options, account_id, busiest))
    finally:
        Account.objects.filter(pk=account_id).update(time_zone=own_zone)


def client_for(account_id: int):
    from django.contrib.auth import get_user_model
    from django.test import Client

    from billing.models import Membership

    # A user per account: the pages show a member's first account, so one user for several would
    # measure the wrong one.
    user, _ = get_user_model().objects.get_or_create(username=f"bench-account-{account_id}")
    Membership.objects.get_or_create(user=user, account_id=account_id, defaults={"role": "viewer"})
    client = Client()
    client.force_login(user)
    return client


def result_base(options, account_id: int, busiest: dict) -> dict:
    from django.db import connection

    from analytics.models import AccountDay, AccountHour, AccountTagDay, AccountUserDay

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM analytics_generation")
        generations = cursor.fetchone()[0]
    return {"database": options.database, "generations": generations, "account": options.account,
            "account_id": account_id, "account_requests": busiest["n"], "zone": options.zone or "its own",
            "accountday_rows": AccountDay.objects.filter(account_id=account_id).count(),
            "accounthour_rows": AccountHour.objects.filter(account_id=account_id).count(),
            "accountuserday_rows": AccountUserDay.objects.filter(account_id=account_id).count(),
            "accounttagday_rows": AccountTagDay.objects.filter(account_id=account_id).count()}


def measure(options, client, account_id: int, busiest: dict, result: dict) -> None:
    from django.core.cache import cache
    from django.db.models import Sum
    from django.db.models.functions import TruncMonth

    from analytics.models import AccountDay, AccountTagDay
    from analytics.usage import cache as usage_cache
    from analytics.usage import prewarm as usage_prewarm

    tagged = (AccountTagDay.objects.filter(account_id=account_id).exclude(tags="").values("tags")
              .annotate(n=Sum("requests")).order_by("-n").first())
    tag = tagged["tags"].strip(",").split(",")[0] if tagged else None
    explorer = (f"group_by=user&group_by=model&{urlencode({'tag': tag})}" if tag
                else "group_by=model&group_by=api_key")
    provider = (AccountDay.objects.filter(account_id=account_id).values("provider_id").annotate(n=Sum("requests"))
                .order_by("-n").first()["provider_id"])
    pages = {"overview": "/account/?period=30d",
             # a user crossed with a model under a tag filter: summed from the account's generations
             "activity": f"/account/activity/?metric=spend&{explorer}&granularity=day&period=30d",
             # two dimensions and a filter that the daily rollup holds
             "activity_rollup": f"/account/activity/?metric=spend&group_by=model&group_by=api_key&provider={provider}"
                                "&granularity=day&period=30d"}
    for name, url in pages.items() if options.only in (None, "pages") else ():
        client.get(url)  # connections, templates
        cold, cached = [], []
        for _ in range(options.iterations):
            cache.clear()
            started = time.perf_counter()
            assert client.get(url).status_code == 200
            cold.append(time.perf_counter() - started)
        cache.clear()
        usage_cache.usage_watch(account_id=account_id)  # a watched account: the one ingestion prewarms
        started = time.perf_counter()
        usage_prewarm.usage_prewarm(account_id=account_id)  # what ingestion's refresh task leaves behind
        prewarm_seconds = time.perf_counter() - started
        for _ in range(options.iterations):
            started = time.perf_counter()
            client.get(url)
            cached.append(time.perf_counter() - started)
        result[name] = {"url": url, "cold": percentiles(cold), "cached": percentiles(cached),
                        "prewarm_seconds": round(prewarm_seconds, 2)}

    if options.only in (None, "usage_csv"):
        month = (AccountDay.objects.filter(account_id=account_id).annotate(m=TruncMonth("day")).values("m")
                 .annotate(n=Sum("requests")).order_by("-n").first()["m"])
        last = (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        started = time.perf_counter()
        response = client.get(f"/account/reports/usage.csv?start={month}&end={last}")
        lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
        result["usage_csv_month"] = {"month": f"{month:%Y-%m}", "rows": lines - 1,
                                     "seconds": round(time.perf_counter() - started, 3)}

    if options.only in (None, "generations_csv"):
        result["generations_csv"] = generations_csv(client, account_id, options.rows, options.export_runs)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
