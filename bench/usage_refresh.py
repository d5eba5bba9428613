#!/usr/bin/env python
"""The cache cost of one chunk's usage refresh (`analytics.usage.tasks.usage_refresh`) on Redis.

    .venv/bin/python bench/usage_refresh.py [--accounts 30000] [--watched 50] [--rounds 5]

A chunk at a router's cardinality touches tens of thousands of accounts, of which a few have their
pages open. This marks `--watched` of `--accounts` accounts watched (as their pages do), then times
`--rounds` refreshes of all of them, the clock moved past the minute before each so that every
watched account is due (the most a refresh writes), and prints the median and each round. The
tasks a refresh queues (prewarm, catch-up) are counted, not sent: only the cache round trips and
the Python around them are timed. Account ids from 900,000,000 up, so that nothing else's keys are
touched; they are deleted at the end (the cache is never cleared: tests may share the database).
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/7")

FIRST_ID = 900_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=30_000)
    parser.add_argument("--watched", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()

    import django

    django.setup()
    import time_machine
    from django.core.cache import cache, caches

    from analytics.usage import cache as usage
    from analytics.usage import tasks

    backend = caches["default"].__class__.__name__
    if backend != "RedisCache":
        sys.exit(f"not on Redis: the cache is {backend}")
    queued = {"prewarm": 0, "later": 0}
    tasks.usage_prewarm.delay = lambda ids: queued.__setitem__("prewarm", queued["prewarm"] + len(ids))
    tasks.usage_refresh_later.apply_async = lambda args, **kw: queued.__setitem__(
        "later", queued["later"] + len(args[0]))

    ids = list(range(FIRST_ID, FIRST_ID + options.accounts))
    step = max(1, options.accounts // max(1, options.watched))
    watched = ids[::step][:options.watched]
    keys = [k for i in ids for k in (f"usage:version:{i}", f"usage:pending:{i}", f"usage:watched:{i}")]
    cache.delete_many(keys)
    times = []
    try:
        with time_machine.travel(time.time(), tick=True) as clock:
            for account_id in watched:
                usage.usage_watch(account_id=account_id)
            tasks.usage_refresh(account_ids=ids)  # warm-up: connections, first versions
            for _ in range(options.rounds):
                clock.shift(61)  # past the minute: every watched account is due again
                started = time.perf_counter()
                tasks.usage_refresh(account_ids=ids)
                times.append(time.perf_counter() - started)
    finally:
        cache.delete_many(keys)
    print(f"usage_refresh of {options.accounts:,} accounts ({len(watched)} watched) on {os.environ['REDIS_URL']}")
    print(f"  median {statistics.median(times) * 1000:.1f} ms over {len(times)} rounds: "
          + ", ".join(f"{t * 1000:.1f}" for t in times) + " ms")
    print(f"  {statistics.median(times) / options.accounts * 1e6:.2f} µs per account;"
          f" queued per round: {queued['prewarm'] // (options.rounds + 1)} prewarmed,"
          f" {queued['later'] // (options.rounds + 1)} for catch-up")


if __name__ == "__main__":
    main()
