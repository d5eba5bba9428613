#!/usr/bin/env python
"""Public pages at the server, on a PostgreSQL database already filled by ingestion.

    .venv/bin/python bench/pages.py --database tokengrid_bench [--iterations 30] [--wrk-seconds 10]

Prints, as one JSON line: the number of generations and rollup rows; server time p50/p90 of the
rankings page (month window), of the busiest model's page and of the catalog (/models/, all of it
and filtered to models with traffic sorted by throughput): cold (cache emptied before each
request), prewarmed (after `rankings_prewarm`, as the rollups task leaves it, page not cached) and
page_cached (the rendered page cached); the time of the catalog's week-table refresh (the rollups
task's, run once first: "cold" empties the cache, the table is a rollup); and, when `wrk` is installed, requests/s of the rankings
page against a trivial view (/healthz) of the same gunicorn server in the same run.
Fill a database with `bench/ingest.py` (it keeps its data in `tokengrid_bench`).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from production_env import production_env  # noqa: E402  (bench/, the script's own folder)


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 1)}


def wrk(url: str, seconds: int) -> float | None:
    if not shutil.which("wrk"):
        return None
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", url], capture_output=True, text=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(match.group(1)) if match else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="tokengrid_bench")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--wrk-seconds", type=int, default=10)
    options = parser.parse_args()
    env = production_env(options.database)
    os.environ.update(env)

    import django

    django.setup()
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client

    from analytics.models import EndpointHour

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM analytics_generation")
        generations = cursor.fetchone()[0]
    top = (EndpointHour.objects.values("model__author__slug", "model__route_name", "model_id")
           .order_by("-tokens_completion").first())
    pages = {"rankings": "/rankings/?window=month",
             "model": f"/models/{top['model__author__slug']}/{top['model__route_name']}/" if top else "/models/",
             "catalog": "/models/", "catalog_filtered": "/models/?has_traffic=1&sort=throughput"}
    client = Client()
    result = {"database": options.database, "generations": generations,
              "endpointhour_rows": EndpointHour.objects.count()}
    from analytics.rankings.catalog import model_weeks_refresh
    from analytics.rankings.prewarm import rankings_prewarm

    started = time.perf_counter()
    model_weeks_refresh()  # the catalog's week table, as the rollups task leaves it after ingestion
    result["model_weeks_refresh_seconds"] = round(time.perf_counter() - started, 2)
    for name, url in pages.items():
        cold, prewarmed, warm = [], [], []
        for _ in range(options.iterations):
            cache.clear()
            started = time.perf_counter()
            assert client.get(url).status_code == 200
            cold.append(time.perf_counter() - started)
        cache.clear()
        started = time.perf_counter()
        rankings_prewarm()
        prewarm_seconds = time.perf_counter() - started
        separator = "&" if "?" in url else "?"
        for i in range(options.iterations):  # rankings cached by the prewarm, the rendered page not
            started = time.perf_counter()
            client.get(f"{url}{separator}nocache={i}")
            prewarmed.append(time.perf_counter() - started)
        for _ in range(options.iterations):
            started = time.perf_counter()
            client.get(url)
            warm.append(time.perf_counter() - started)
        result[name] = {"url": url, "cold": percentiles(cold), "prewarmed": percentiles(prewarmed),
                        "page_cached": percentiles(warm), "prewarm_seconds": round(prewarm_seconds, 2)}

    if shutil.which("wrk") and shutil.which(str(Path(sys.executable).parent / "gunicorn")):
        server_env = {**os.environ, **env, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "bench-" + "x" * 40,
                      "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "DJANGO_SECURE_SSL_REDIRECT": "0"}
        server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "-w", "2",
                                   "-b", "127.0.0.1:8011", "--log-level", "warning"], cwd=ROOT, env=server_env)
        try:
            time.sleep(3)
            wrk("http://127.0.0.1:8011/rankings/?window=month", 2)  # warm the cache
            ranking_rps = wrk("http://127.0.0.1:8011/rankings/?window=month", options.wrk_seconds)
            trivial_rps = wrk("http://127.0.0.1:8011/healthz", options.wrk_seconds)
            result["wrk"] = {"rankings_rps": ranking_rps, "healthz_rps": trivial_rps,
                             "ratio": round(ranking_rps / trivial_rps, 3) if ranking_rps and trivial_rps else None}
        finally:
            server.terminate()
            server.wait(timeout=20)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
