"""Reads that may go to the streaming read replica (DATABASE_REPLICA_URL), and what keeps them honest.

Nothing reads the replica unless asked: a read path enters `replica_reads()` (the public pages, the
account analytics pages and APIs, their prewarm tasks), and inside it the router (`ReplicaRouter`)
sends the reads of the analytics and catalog models there, and raw SQL takes `read_connection()`.
Everything else, inside or outside such a scope, reads and writes the primary: billing (balances,
budgets, the gateway check, the ledger), sessions and users, and every write.

Three rules keep a lagging or missing replica from showing a wrong number:
- a request that wrote (any unsafe method), and the requests of the same browser for
  REPLICA_PIN_SECONDS after it (a cookie), read the primary: read-your-writes (`ReplicaPinMiddleware`);
- a value computed to be cached under a version that moved is computed only once the replica has
  replayed the primary's WAL up to where it was when the computation began (`replica_sync`):
  the version moved after the chunk committed, so its rows are below that point; past the wait, the
  scope reads the primary, with a warning;
- a replica that refuses a connection or fails a query is left alone for REPLICA_RETRY_SECONDS (a
  circuit breaker, per process) and the request is answered from the primary, with a warning.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

REPLICA = "replica"
# Apps whose reads may be served by the replica inside a scope: the rollups, the generation log and
# the catalog. Billing (money, limits) and Django's own apps always read the primary.
REPLICA_APPS = frozenset({"analytics", "marketplace"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PIN_COOKIE = "tg_primary"
POLL_SECONDS = 0.02


@dataclass
class _Scope:
    alias: str
    synced: bool = False  # replica_sync has run (or need not: the scope reads the primary)


_scope: ContextVar[_Scope | None] = ContextVar("replica_scope", default=None)
_pinned: ContextVar[bool] = ContextVar("replica_pinned", default=False)
_down_until = 0.0  # the circuit breaker: monotonic time before which the replica is not tried


def replica_configured() -> bool:
    """Whether a replica is configured and is a server of its own (in tests it is a mirror of the
    primary's test database until a test points it at the standby: tests/replica)."""
    if REPLICA not in settings.DATABASES:
        return False
    return not connections[REPLICA].settings_dict.get("TEST", {}).get("MIRROR")


def read_alias() -> str:
    """The database this scope reads: the replica inside a healthy `replica_reads()`, else the primary."""
    scope = _scope.get()
    return scope.alias if scope is not None else DEFAULT_DB_ALIAS


def read_connection():
    """The connection for a read path's raw SQL (the router only sees the ORM's queries)."""
    return connections[read_alias()]


def _replica_down(exc: BaseException, *, doing: str) -> None:
    global _down_until
    _down_until = time.monotonic() + settings.DATABASE_REPLICA_RETRY_SECONDS
    logger.warning("read replica unavailable (%s: %s): reading the primary for the next %s s",
                   doing, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                   settings.DATABASE_REPLICA_RETRY_SECONDS)
    with suppress(DatabaseError):
        connections[REPLICA].close()


def _replica_usable() -> bool:
    if not replica_configured() or _pinned.get() or time.monotonic() < _down_until:
        return False
    try:
        connections[REPLICA].ensure_connection()
    except DatabaseError as exc:
        _replica_down(exc, doing="connect")
        return False
    return True


@contextmanager
def replica_reads() -> Iterator[None]:
    """Let the analytics and catalog reads inside go to the replica, when it is configured and up."""
    if _scope.get() is not None:  # nested: the outer scope decides
        yield
        return
    token = _scope.set(_Scope(REPLICA if _replica_usable() else DEFAULT_DB_ALIAS))
    try:
        yield
    finally:
        _scope.reset(token)


@contextmanager
def primary_reads() -> Iterator[None]:
    """Read the primary inside, whatever an outer scope chose (a retry after the replica failed)."""
    token = _scope.set(_Scope(DEFAULT_DB_ALIAS, synced=True))
    try:
        yield
    finally:
        _scope.reset(token)


def _lsn(alias: str, sql: str) -> int | None:
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT ({sql}) - '0/0'::pg_lsn")  # a pg_lsn as a number of bytes
        value = cursor.fetchone()[0]
    return None if value is None else int(value)


def replica_sync(*, timeout: float) -> bool:
    """Wait until the replica has replayed the primary's WAL as of now; past `timeout`, read the primary.

    Once per scope; returns whether the scope still reads the replica. The primary's position is
    read after the cache versions moved, so every commit those versions stand for is below it.
    """
    scope = _scope.get()
    if scope is None or scope.synced or scope.alias == DEFAULT_DB_ALIAS:
        return scope is not None and scope.alias != DEFAULT_DB_ALIAS
    scope.synced = True
    target = _lsn(DEFAULT_DB_ALIAS, "pg_current_wal_lsn()")
    deadline = time.monotonic() + timeout
    try:
        while True:
            replayed = _lsn(REPLICA, "pg_last_wal_replay_lsn()")
            if replayed is None or replayed >= target:  # None: not a standby (nothing to wait for)
                return True
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
    except DatabaseError as exc:
        _replica_down(exc, doing="replay position")
        scope.alias = DEFAULT_DB_ALIAS
        return False
    logger.warning("read replica %d bytes behind the primary after %.2f s: reading the primary",
                   target - replayed, timeout)
    scope.alias = DEFAULT_DB_ALIAS
    return False


def replica_sync_for_cache() -> None:
    """Before computing a value to cache under the current version (core.cache.versioned): the short wait."""
    scope = _scope.get()
    if scope is not None and not scope.synced:
        replica_sync(timeout=settings.DATABASE_REPLICA_PAGE_WAIT_SECONDS)


@contextmanager
def replica_prewarm() -> Iterator[None]:
    """A prewarm task's scope: on the replica once it has replayed everything committed so far."""
    with replica_reads():
        replica_sync(timeout=settings.DATABASE_REPLICA_WAIT_SECONDS)
        yield


def replica_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Serve a read-only page or API view from the replica; on a replica failure, again from the primary.

    Only safe methods of requests not pinned to the primary (`ReplicaPinMiddleware`) use it.
    """
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method not in SAFE_METHODS or not replica_configured():
            return view(request, *args, **kwargs)
        with replica_reads():
            if read_alias() == DEFAULT_DB_ALIAS:
                return view(request, *args, **kwargs)
            try:
                response = view(request, *args, **kwargs)
                if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                    response.render()  # DRF and template responses query while rendering
                return response
            except DatabaseError as exc:
                if _recovery_conflict(exc):
                    # Replay removed rows the query still needed: this request only, the replica stays.
                    logger.warning("read replica cancelled a query of %s (conflict with recovery): reading the primary",
                                   request.path)
                elif _replica_failed():
                    _replica_down(exc, doing=request.path)
                else:
                    raise
        with primary_reads():
            return view(request, *args, **kwargs)
    return wrapped


def _recovery_conflict(exc: DatabaseError) -> bool:
    """Whether a standby cancelled the query to go on replaying (SQLSTATE 40001 on a hot standby)."""
    return getattr(exc.__cause__, "sqlstate", None) == "40001"


def _replica_failed() -> bool:
    """Whether the replica's connection is the one that broke (not an error of the query itself)."""
    connection = connections[REPLICA]
    if connection.connection is None:
        return True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return True
    return False


class ReplicaRouter:
    """The analytics and catalog reads of a `replica_reads()` scope to its database; all else to the primary."""

    def db_for_read(self, model, **hints) -> str:
        if model._meta.app_label in REPLICA_APPS:
            return read_alias()
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # one database, two servers

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS


class ReplicaPinMiddleware:
    """Read-your-writes: a request that may write, and the same browser's requests for a few seconds
    after, read the primary (the replica may not have replayed the write yet)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        writes = request.method not in SAFE_METHODS
        token = _pinned.set(writes or PIN_COOKIE in request.COOKIES)
        try:
            response = self.get_response(request)
        finally:
            _pinned.reset(token)
        if writes and replica_configured():
            response.set_cookie(PIN_COOKIE, "1", max_age=settings.DATABASE_REPLICA_PIN_SECONDS,
                                httponly=True, samesite="Lax")
        return response
