"""Values cached under a version: moving the version retires every value computed before it.

The rankings move one counter for the whole site (`VersionCounter`); an account's usage pages move
a version of their own (analytics.usage.cache). Both read and fill through `versioned`, and the
public page cache keys rendered pages the same way.
"""
from __future__ import annotations

from collections.abc import Callable
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
