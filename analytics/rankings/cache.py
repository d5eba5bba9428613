"""The rankings' cache: one version for the whole site, moved by ingestion (at most once every 40 s,
analytics.rankings.tasks) and at once when staff change what may appear publicly; every ranking,
series and rendered public page is cached under it (core.cache).
"""
from contextlib import contextmanager

from asgiref.local import Local
from django.utils import timezone

from analytics.models import IngestBatch
from core.cache import VersionCounter, versioned

CACHE_SECONDS = 24 * 3600  # keyed by the rankings version, so long-lived entries are never stale
CACHE_PAGE_SECONDS = 60  # whole rendered pages, as stale as the rankings version allows
VERSION = VersionCounter("rankings:version")
_pinned = Local()  # per thread (and per async task): the version a request read first


def version() -> int:
    """The rankings version: cached rankings and pages are keyed by it."""
    pinned = getattr(_pinned, "version", None)
    return VERSION.current() if pinned is None else pinned


@contextmanager
def version_pinned():
    """Read the version once for everything inside: one cache round trip instead of one per ranking a
    page reads, and a page whose parts all come from the same version (ingestion may move it meanwhile)."""
    previous = getattr(_pinned, "version", None)
    _pinned.version = VERSION.current() if previous is None else previous
    try:
        yield
    finally:
        _pinned.version = previous


def rankings_invalidate() -> None:
    """Move the version now (staff changed what may appear publicly)."""
    VERSION.bump()


def rankings_cached(key: str, compute):
    """A ranking computed once per rankings version."""
    return versioned("rankings", version(), key, compute, timeout=CACHE_SECONDS)


def page_cached(path: str, render):
    """A rendered public page's body once per rankings version; `render` gives the body, None not to keep it."""
    return versioned("page", version(), path, render, timeout=CACHE_PAGE_SECONDS, keep=lambda body: body is not None)


def batches_mark_ranked() -> int:
    """Stamp finished batches not yet in the rankings: the rankings version just moved past them."""
    return IngestBatch.objects.filter(status=IngestBatch.Status.DONE, ranked_at__isnull=True).update(
        ranked_at=timezone.now())
