"""An account's usage cache: its version, the watch mark of its pages, and the refresh after a chunk.

An account's computed usage is cached under its usage version (core.cache): until its next ingested
chunk while watched, or its next view once it is no longer watched. `usage_watch` marks an account
as looked at; `refresh_plan` decides, for a committed chunk's accounts, whose version moves now and
whose USAGE_BUMPS.seconds later (analytics.usage.tasks.usage_refresh sends the messages).
"""
from __future__ import annotations

import functools
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from time import time_ns

from django.conf import settings
from django.core.cache import cache

from core.cache import USAGE_BUMPS, versioned
from core.timerange import TimeRange

_SAFE_KEY = re.compile(r"[\w:=+.-]*", re.ASCII)
CACHE_SECONDS = 3600  # keyed by the account's usage version, which ingestion moves while it is watched
VERSION_SECONDS = 24 * 3600  # longer than any page it keys; a lost version is simply made anew


def _version_key(account_id: int) -> str:
    return f"usage:version:{account_id}"


def _pending_key(account_id: int) -> str:
    return f"usage:pending:{account_id}"


def _watched_key(account_id: int) -> str:
    return f"usage:watched:{account_id}"


def _version_new(moved_at_ms: int) -> str:
    """A version never used before: when it moved (ms since the epoch, hex) and 64 random bits."""
    return f"{moved_at_ms:x}.{secrets.token_hex(8)}"


def _version_moved_at_ms(version) -> int:
    """When a version moved; 0 (long ago) for none, one a page made, or one of an older form."""
    try:
        return int(str(version).split(".", 1)[0], 16)
    except ValueError:
        return 0


def usage_version(account_id: int) -> str:
    """The account's usage version; a missing one (no chunk yet, or evicted) is made anew, never reused.

    A page makes it as moved "long ago", so the next chunk of the account moves it at once.
    """
    key = _version_key(account_id)
    version = cache.get(key)
    if version is None:
        fresh = _version_new(0)
        version = fresh if cache.add(key, fresh, VERSION_SECONDS) else cache.get(key, fresh)
    return str(version)


def usage_watch(*, account_id: int) -> None:
    """Note that someone looks at the account's usage pages (call before reading them): its chunks move
    its version and prewarm the pages for the next USAGE_WATCH_SECONDS.

    Chunks move the version of watched accounts only, so a page cached while the account was watched
    (a prewarm shortly before the mark expired, say) may have missed chunks that came after the
    mark expired. Hence a view that finds the account unwatched starts a new version (as moved "long
    ago": the next chunk moves it at once) in the same write as the mark, one MSET on Redis: whoever
    sees the mark afterwards sees that version or a later one, and whatever was cached before under
    an earlier version is never read again. A view that finds the mark refreshes its time to live in
    the same command (`touch`, EXPIRE on Redis), so the mark never lapses between finding it and
    reading the pages it keeps up to date; the version stays.
    """
    mark = _watched_key(account_id)
    if cache.touch(mark, settings.USAGE_WATCH_SECONDS):
        return
    # The version's time to live is the mark's: once both expire, the next view starts a new one
    # anyway, and the next chunk of a watched account writes it for VERSION_SECONDS.
    cache.set_many({mark: 1, _version_key(account_id): _version_new(0)}, settings.USAGE_WATCH_SECONDS)



@dataclass
class RefreshPlan:
    """What one refresh does: the accounts whose version moves now (`due`, then prewarmed), those left
    to a catch-up run seconds later (`later`), and the cache writes of both (`write`)."""

    due: list[int] = field(default_factory=list)
    later: list[int] = field(default_factory=list)
    writes: dict = field(default_factory=dict)
    now_ms: int = 0

    def write(self) -> None:
        if self.later:
            self.writes.update(dict.fromkeys(map(_pending_key, self.later), USAGE_BUMPS.pending_mark(self.now_ms)))
        if self.writes:
            cache.set_many(self.writes, VERSION_SECONDS)


def refresh_plan(*, account_ids: Iterable[int], catch_up: bool = False) -> RefreshPlan:
    """Which of a chunk's accounts are watched and whose version is due to move (two `get_many` at most)."""
    ids = sorted(set(account_ids))
    if not ids:
        return RefreshPlan()
    marks = cache.get_many([_watched_key(i) for i in ids])
    if not marks:
        return RefreshPlan()
    watched = [i for i in ids if _watched_key(i) in marks]
    now_ms = time_ns() // 1_000_000
    found = cache.get_many([k for i in watched for k in (_version_key(i), _pending_key(i))])
    due, later = USAGE_BUMPS.split(
        watched, moved_at_ms={i: _version_moved_at_ms(found.get(_version_key(i))) for i in watched},
        pending_until_ms={i: int(found.get(_pending_key(i)) or 0) for i in watched}, now_ms=now_ms,
        catch_up=catch_up)
    return RefreshPlan(due=due, later=later, writes=dict.fromkeys(map(_version_key, due), _version_new(now_ms)),
                       now_ms=now_ms)


def account_cached(func):
    """Cache a selector's result per account, period and arguments, until the account's next chunk."""
    @functools.wraps(func)
    def wrapper(*, account_id: int, period: TimeRange, **kwargs):
        arguments = ":".join(f"{k}={'+'.join(v) if isinstance(v, tuple) else v}" for k, v in sorted(kwargs.items()))
        if len(arguments) > 120 or not _SAFE_KEY.fullmatch(arguments):
            # Filters carry users' and tags' own text: a digest keeps the key short and memcached-safe.
            arguments = hashlib.sha256(arguments.encode()).hexdigest()
        key = f"{func.__name__}:{period.key}:{arguments}"
        return usage_cached(account_id, key, lambda: func(account_id=account_id, period=period, **kwargs))
    return wrapper


def usage_cached(account_id: int, key: str, compute):
    """An account's computed usage, cached under its usage version: until its next ingested chunk while
    watched, or its next view once it is no longer watched (`usage_watch`, `refresh_plan`)."""
    return versioned(f"usage:{account_id}", usage_version(account_id), key, compute, timeout=CACHE_SECONDS)
