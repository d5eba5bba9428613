"""Ids of registered names (accounts, API keys, models, providers, apps) kept in the process between chunks.

Ingestion registers what each chunk names (`analytics.ingest.stage`): at a router's cardinality that is a
lookup of tens of thousands of accounts and keys a chunk, nearly all seen before. An `IdCache` answers
those from a dict and sends only the misses to the database, in one round trip as before.

When a cached id can become wrong, and how every worker notices
--------------------------------------------------------------
A name's id never changes while its row lives: ids are not reused and registration only inserts. A
cached id is wrong only when its row is deleted (an account, key, app removed; the catalog merge
deleting a duplicate model or provider, analytics.catalog_merge), when the row's name changes
(`external_id`, the key's account or id, a model's slug, a provider's name, an app's origin), or when
the tables are emptied (TRUNCATE: a test database's flush). A revoked or disabled key keeps its id:
registration returns it as before. Any of these, by any path (a service, the admin, SQL, a migration),
fires a trigger that sets `core_registryversion` to a new random number, in the same transaction
(`core_registry_bump()`, core migration 0002; the triggers: billing 0014, marketplace 0005). Registration
itself never fires them: it only inserts, and `api_keys_name` changes no name column they watch.

Each worker reads the version once per chunk before registering (`registry_check`): a new version
empties every cache of the process. The chunk's transaction then reads it again, share-locked
(`registry_confirm`): had it moved since, the chunk is retried (RegistryChanged is an OperationalError,
which the ingest task retries), so no chunk commits an id from before a deletion that committed first;
and a deletion's bump waits for the chunks that hold the version to commit. A deleting transaction must
therefore bump first, before taking row locks a chunk takes (accounts, budgets): the triggers on DELETE
are BEFORE the statement. A missing version row (a flushed table) counts as a new version.

Names an ingested chunk writes itself (`api_keys_name`) do not bump: the cache remembers the name it
wrote or read, and sends a name only when traffic names it differently.

Only registrations that committed are cached: inside an atomic block (a test's transaction, a caller's
that could still roll back) the cache is bypassed.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

from django.db import OperationalError, connection

# Entries of one cache: past it the oldest quarter goes (insertion order), so memory stays bounded at a
# router's cardinality (~70k accounts and ~90k keys in a million records at 100k accounts: all fit).
MAX_ENTRIES = 250_000

_CACHES: list[IdCache] = []
_version: int | None = None  # the version the caches hold ids of (None: unknown, nothing cached)

_READ_SQL = "SELECT version FROM core_registryversion WHERE id = 1"
# A new epoch when the row is missing (first use, a flushed table): a random number, never 1, 2, …, so a
# flushed and recreated row cannot come back with the version a worker holds.
_CREATE_SQL = ("INSERT INTO core_registryversion (id, version) VALUES (1, (random() * 9e18)::bigint)"
               " ON CONFLICT (id) DO NOTHING")


class RegistryChanged(OperationalError):
    """A name's id may have changed since the chunk registered its names: apply the chunk again."""


class IdCache:
    """{key: id} of one kind of registered name, bounded; emptied with every other when the version moves."""

    def __init__(self, name: str, max_entries: int = MAX_ENTRIES) -> None:
        self.name, self.max_entries = name, max_entries
        self._ids: dict[Hashable, object] = {}
        _CACHES.append(self)

    def __len__(self) -> int:
        return len(self._ids)

    def clear(self) -> None:
        self._ids.clear()

    def ids(self, wanted: Iterable[Hashable], register: Callable[[set], dict]) -> dict:
        """{key: id} for every wanted key: the cached ones from the dict, the rest from `register(missing)`
        (one call, whatever their number), cached when it committed."""
        cached = self._ids
        wanted = set(wanted)
        found = {key: cached[key] for key in wanted if key in cached}
        if len(found) < len(wanted):
            fresh = register(wanted - found.keys())
            found.update(fresh)
            self.remember(fresh)
        return found

    def remember(self, ids: dict) -> None:
        """Cache these ids (or names) if they are committed and the version is known."""
        if _version is None or connection.in_atomic_block:
            return
        cached = self._ids
        if len(cached) + len(ids) > self.max_entries:
            for key in list(cached)[:max(len(cached) // 4, len(cached) + len(ids) - self.max_entries)]:
                del cached[key]
        cached.update(ids)

    def get(self, key: Hashable):
        return self._ids.get(key)


def _read(cursor, *, lock: bool) -> int:
    cursor.execute(_READ_SQL + (" FOR SHARE" if lock else ""))
    row = cursor.fetchone()
    if row is None:
        cursor.execute(_CREATE_SQL)
        cursor.execute(_READ_SQL + (" FOR SHARE" if lock else ""))
        row = cursor.fetchone()
    return row[0]


def _caches_clear() -> None:
    for cache in _CACHES:
        cache.clear()


def registry_check() -> None:
    """Once per chunk, before registering: empty every cache if the registry's version moved (one query)."""
    global _version
    with connection.cursor() as cursor:
        version = _read(cursor, lock=False)
    if version != _version:
        _caches_clear()
        _version = version


def registry_confirm() -> None:
    """In the chunk's transaction, before it writes: hold the version (share lock, to the commit) and raise
    RegistryChanged if it moved since `registry_check` (the ids the chunk staged may be stale)."""
    global _version
    with connection.cursor() as cursor:
        version = _read(cursor, lock=True)
    if version != _version:
        _caches_clear()
        _version = None
        raise RegistryChanged("a registered name was deleted or renamed since this chunk registered its names")


def registry_forget() -> None:
    """Empty every cache of this process (and forget the version)."""
    global _version
    _caches_clear()
    _version = None
