"""Values cached under a version: moving the version retires every value computed before it.

The rankings move one counter for the whole site (`VersionCounter`); an account's usage pages move
a version of their own (analytics.usage.cache). Both read and fill through `versioned`, and the
public page cache keys rendered pages the same way; both move at most once every 40 s under ingestion,
by the one rule of `BumpLimit` (`VERSION_BUMPS`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from django.core.cache import cache

from core.replica import replica_sync_for_cache

T = TypeVar("T")

# Part of every key: moved when a cached value's class moves or changes shape, so that values pickled
# by an older deploy (analytics.rankings.Series before core.charts.Series, say) are never read.
CACHE_FORMAT = 2


@dataclass(frozen=True)
class VersionCounter:
    """A version that is a whole number in the cache under `key`; missing means 0."""

    key: str

    def current(self) -> int:
        return cache.get(self.key) or 0

    def bump(self) -> None:
        try:
            cache.incr(self.key)
        except ValueError:
            cache.set(self.key, 1, None)


@dataclass(frozen=True)
class BumpLimit:
    """A rate limit of version moves under ingestion: the rankings' (`VERSION_BUMPS`), each watched
    account's usage (`USAGE_BUMPS`).

    A version moves at most once per `seconds`; a move asked inside the window leaves one catch-up
    run behind, `countdown` seconds later (the caller queues it), so that nothing asked is left out
    for long, and marks it as queued until `pending_mark` (a catch-up mark counts for less than its
    run's countdown: a chunk that saw the mark commits before the run, even with the machines'
    clocks a few seconds apart). The catch-up run itself (`catch_up`) always moves or passes on.

    It decides on sets, from marks the caller read in one round trip: when each version last moved
    and until when a catch-up run is queued for it (ms since the epoch; 0 or missing for none).
    Reads and writes are not one atomic step: two refreshes at the same moment may both move a
    version, which costs one prewarm more and never serves a stale value.
    """

    seconds: int
    pending_seconds: int

    @property
    def countdown(self) -> int:
        return self.seconds + 1

    def pending_mark(self, now_ms: int) -> int:
        return now_ms + self.pending_seconds * 1000

    def split(self, names: Iterable, *, moved_at_ms: Mapping, pending_until_ms: Mapping, now_ms: int,
              catch_up: bool = False, force: bool = False) -> tuple[list, list]:
        """(the names whose version moves now, those left to a catch-up run); the others wait for one."""
        due, later = [], []
        for name in names:
            if force or (moved_at_ms.get(name) or 0) <= now_ms - self.seconds * 1000:
                due.append(name)
            elif catch_up or (pending_until_ms.get(name) or 0) <= now_ms:
                later.append(name)
        return due, later


# The public rankings: a move recomputes and prewarms every leaderboard (5-8 s of a worker), so at
# most once every 40 s under a stream: a request is in the rankings within a body's interval, 41 s
# and a refresh (issue 35's target: 75 s; with 60 s, bench/freshness.py measured a p99 of 94 s).
VERSION_BUMPS = BumpLimit(seconds=40, pending_seconds=33)
# A watched account's usage pages: a move prewarms one account's pages (a fraction of a second), and
# someone is looking at them, so at most every 10 s (target: on the account's pages within 15 s,
# bench/freshness.py). Only watched accounts move at all (analytics.usage.cache).
USAGE_BUMPS = BumpLimit(seconds=10, pending_seconds=8)


def versioned(namespace: str, version: object, key: str, compute: Callable[[], T], *, timeout: int,
              keep: Callable[[T], bool] | None = None) -> T:
    """The value cached under (namespace, version, key), computed and stored when missing.

    `keep` decides whether a computed value is stored (a page is kept only when it answered 200).
    Inside a replica scope, the value is computed from the replica only once it has caught up with
    the primary as of now (or else from the primary), so no stale number is kept under a new version.
    """
    full = f"{namespace}:{CACHE_FORMAT}.{version}:{key}"
    value = cache.get(full)
    if value is None:
        # On the read replica, first let it replay what the version stands for (core.replica).
        replica_sync_for_cache()
        value = compute()
        if keep is None or keep(value):
            cache.set(full, value, timeout)
    return value
