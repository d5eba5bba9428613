"""Celery tasks of the rankings: the rate-limited refresh that moves the version and prewarms.

The name is pinned to the one it had when one module held every analytics task (`analytics.tasks.*`),
so that messages already queued and the beat schedule still find it.
"""
from celery import shared_task
from django.core.cache import cache

from .cache import batches_mark_ranked, rankings_invalidate
from .catalog import model_weeks_refresh
from .prewarm import rankings_prewarm

RANKINGS_MAX_AGE_SECONDS = 60


@shared_task(name="analytics.tasks.rollup_rankings_refresh", ignore_result=True)
def rollup_rankings_refresh(*, batch_end: bool = False) -> None:
    """Bump the rankings version at most once a minute, then compute the new rankings ahead.

    Under continuous ingestion every chunk asks; the rate limit keeps pages served from the cache
    (at most a minute stale), and the prewarm means visitors never wait for a cold computation.
    A request inside the minute leaves one catch-up run behind, so no chunk is left out for long.
    The last chunk of a batch (`batch_end`) moves the version at once: the limit is for chunks in the
    middle of a stream, never for its end, so a finished file is in the rankings within seconds and
    `ingest --wait` can wait for it (the batch's `ranked_at`). The catalog's week table is refreshed
    here too, off the ingest path.
    """
    if cache.add("rankings:bumped", 1, RANKINGS_MAX_AGE_SECONDS) or batch_end:
        if batch_end:
            cache.set("rankings:bumped", 1, RANKINGS_MAX_AGE_SECONDS)
        model_weeks_refresh()
        rankings_invalidate()
        batches_mark_ranked()
        rankings_prewarm()
    elif cache.add("rankings:pending", 1, RANKINGS_MAX_AGE_SECONDS):
        rollup_rankings_refresh.apply_async(countdown=RANKINGS_MAX_AGE_SECONDS + 1)
