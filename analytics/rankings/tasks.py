"""Celery tasks of the rankings: the rate-limited refresh that moves the version and prewarms.

Named after its module; the name it had when one module held every analytics task
(`analytics.tasks.*`) still runs for one release, so that
messages already queued find it (core.celery_names).
"""
from time import time_ns

from django.core.cache import cache

from core.cache import VERSION_BUMPS
from core.celery_names import shared_task_renamed
from core.replica import replica_prewarm

from .cache import batches_mark_ranked, rankings_invalidate
from .catalog import model_weeks_refresh
from .prewarm import rankings_prewarm

RANKINGS_MAX_AGE_SECONDS = VERSION_BUMPS.seconds
MARKS_SECONDS = 24 * 3600  # when the version last moved, and until when a catch-up run is queued


@shared_task_renamed(old_name="analytics.tasks.rollup_rankings_refresh", ignore_result=True)
def rollup_rankings_refresh(*, batch_end: bool = False) -> None:
    """Bump the rankings version at most once every 40 s (VERSION_BUMPS), then compute the new rankings ahead.

    Under continuous ingestion every chunk asks; the rate limit keeps pages served from the cache
    (at most 41 s stale), and the prewarm means visitors never wait for a cold computation.
    A request inside the window leaves one catch-up run behind, so no chunk is left out for long (the
    one rate limit of version moves, core.cache.VERSION_BUMPS, which the usage pages' versions follow too).
    The last chunk of a batch (`batch_end`) moves the version at once: the limit is for chunks in the
    middle of a stream, never for its end, so a finished file is in the rankings within seconds and
    `ingest --wait` can wait for it (the batch's `ranked_at`). The catalog's week table is refreshed
    here too, off the ingest path.
    """
    now_ms = time_ns() // 1_000_000
    marks = cache.get_many(["rankings:bumped", "rankings:pending"])
    due, later = VERSION_BUMPS.split(["rankings"], moved_at_ms={"rankings": marks.get("rankings:bumped")},
                                     pending_until_ms={"rankings": marks.get("rankings:pending")}, now_ms=now_ms,
                                     force=batch_end)
    if due:
        cache.set("rankings:bumped", now_ms, MARKS_SECONDS)
        model_weeks_refresh()
        rankings_invalidate()
        batches_mark_ranked()
        # From the replica once it has replayed every chunk the new version stands for (core.replica).
        with replica_prewarm():
            rankings_prewarm()
    elif later:
        # Queued before its mark is written, so that no mark exists without its run.
        rollup_rankings_refresh.apply_async(countdown=VERSION_BUMPS.countdown)
        cache.set("rankings:pending", VERSION_BUMPS.pending_mark(now_ms), MARKS_SECONDS)
