"""The rate limits of version moves: the rankings' (core.cache.VERSION_BUMPS) and every watched account's
usage (core.cache.USAGE_BUMPS)."""
from core.cache import USAGE_BUMPS, VERSION_BUMPS, BumpLimit

NOW = 1_800_000_000_000  # ms since the epoch


def test_a_version_moves_at_most_once_a_window_and_leaves_one_catch_up_run():
    limit = BumpLimit(seconds=60, pending_seconds=50)
    moved = {"old": NOW - 60_000, "fresh": NOW - 10_000, "waiting": NOW - 10_000, "lapsed": NOW - 10_000}
    pending = {"waiting": NOW + 1, "lapsed": NOW}
    names = ["never", "old", "fresh", "waiting", "lapsed"]
    assert limit.split(names, moved_at_ms=moved, pending_until_ms=pending, now_ms=NOW) == (
        ["never", "old"], ["fresh", "lapsed"])  # "waiting" has its catch-up run queued already
    assert limit.split(names, moved_at_ms=moved, pending_until_ms=pending, now_ms=NOW, catch_up=True) == (
        ["never", "old"], ["fresh", "waiting", "lapsed"])  # the catch-up run moves or passes on each
    assert limit.split(names, moved_at_ms=moved, pending_until_ms=pending, now_ms=NOW, force=True) == (names, [])
    assert (limit.countdown, limit.pending_mark(NOW)) == (61, NOW + 50_000)


def test_the_rankings_and_the_usage_pages_queue_their_catch_up_runs_by_their_limits(monkeypatch):
    from django.core.cache import cache

    from analytics.rankings.tasks import rollup_rankings_refresh
    from analytics.usage import cache as usage_cache
    from analytics.usage import tasks as usage_tasks

    cache.clear()
    countdowns = []
    monkeypatch.setattr(rollup_rankings_refresh, "apply_async", lambda **kw: countdowns.append(kw["countdown"]))
    monkeypatch.setattr(usage_tasks.usage_refresh_later, "apply_async", lambda **kw: countdowns.append(kw["countdown"]))
    monkeypatch.setattr(usage_tasks.usage_prewarm, "delay", lambda ids: None)
    monkeypatch.setattr("analytics.rankings.tasks.rankings_prewarm", lambda: None)
    monkeypatch.setattr("analytics.rankings.tasks.model_weeks_refresh", lambda: None)
    monkeypatch.setattr("analytics.rankings.tasks.batches_mark_ranked", lambda: 0)
    rollup_rankings_refresh.run()
    rollup_rankings_refresh.run()  # inside the window: one catch-up run
    usage_cache.usage_watch(account_id=7)
    usage_tasks.usage_refresh(account_ids=[7])
    usage_tasks.usage_refresh(account_ids=[7])  # inside the window: one catch-up run
    assert countdowns == [VERSION_BUMPS.countdown, USAGE_BUMPS.countdown] == [41, 11]
