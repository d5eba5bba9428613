#!/usr/bin/env python
"""Where a prewarmed public page's server time goes: its SQL and a cProfile of its requests.

    .venv/bin/python bench/page_profile.py --database tokengrid_bench [--url /rankings/?window=month]
        [--iterations 10] [--cold] [--top 30] [--sort cumulative|tottime]

Runs `rankings_prewarm` (as the rollups task leaves the cache; `--cold` empties the cache before
each request instead), then requests the page `--iterations` times with the rendered page not
cached, and prints each statement one request ran (with its time), the median request time and
the functions with the most cumulative time over all requests. The default URL is the rankings
page's month window; `model` names the busiest model's page.
"""
import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from production_env import production_env  # noqa: E402  (bench/, the script's own folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="tokengrid_bench")
    parser.add_argument("--url", default="/rankings/?window=month")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="cumulative", help="a pstats sort key: cumulative, tottime")
    options = parser.parse_args()
    os.environ.update(production_env(options.database))

    import django

    django.setup()
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from analytics.models import EndpointHour
    from analytics.rankings.prewarm import rankings_prewarm

    url = options.url
    if url == "model":
        top = (EndpointHour.objects.values("model__author__slug", "model__route_name")
               .order_by("-tokens_completion").first())
        url = f"/models/{top['model__author__slug']}/{top['model__route_name']}/"
    client = Client()
    cache.clear()
    if not options.cold:
        rankings_prewarm()
    separator = "&" if "?" in url else "?"
    with CaptureQueriesContext(connection) as queries:
        if options.cold:
            cache.clear()
        size = len(client.get(f"{url}{separator}nocache=first").content)
    print(f"{url}: {size:,} bytes, {len(queries)} statements")
    for query in queries.captured_queries:
        print(f"  {float(query['time']) * 1000:7.1f} ms  {query['sql'][:200]}")
    profile, times = cProfile.Profile(), []
    for i in range(options.iterations):
        if options.cold:
            cache.clear()
        started = time.perf_counter()
        profile.enable()
        client.get(f"{url}{separator}nocache={i}")
        profile.disable()
        times.append(time.perf_counter() - started)
    print(f"median {statistics.median(times) * 1000:.1f} ms over {options.iterations} (profiled)")
    pstats.Stats(profile).sort_stats(options.sort).print_stats(options.top)


if __name__ == "__main__":
    main()
