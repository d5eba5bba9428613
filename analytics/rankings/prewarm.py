"""The rankings page and the top model pages computed ahead, after the rankings version moved."""
from .capabilities import capability_rankings
from .endpoint_stats import STATS_WINDOWS, endpoint_stats, hourly_uptime
from .leaderboards import (
    METRICS,
    WINDOWS,
    authors_volume_vs_money,
    categories_in_use,
    ranking_apps,
    ranking_coverage,
    ranking_models,
    ranking_providers,
    top_apps_of_model,
    window_parse,
)
from .price_index import price_index
from .series import daily_series, weekly_tokens


def rankings_prewarm() -> int:
    """Compute every ranking and chart of the rankings page for the current version; returns how many.

    Runs on the rollups queue after the version moves, so visitors read them from the cache.
    """
    count = 0
    for name in WINDOWS:
        window = window_parse(name)
        for metric in METRICS:
            ranking_models(window=window, metric=metric, limit=100)
            ranking_providers(window=window, metric=metric, limit=10)
            ranking_apps(window=window, metric=metric, limit=10)
            count += 3
        ranking_coverage(window=window, of="providers")  # what the spend leaderboards leave out
        ranking_coverage(window=window, of="apps")
        count += 2
        if window.previous:
            ranking_apps(window=window, metric="tokens", limit=10, trending=True)
            count += 1
        authors_volume_vs_money(window=window)
        capability_rankings(window=window, limit=10)
        count += 2
    weekly_tokens(by="model")
    weekly_tokens(by="author", top=10)
    categories_in_use()
    price_index()
    return count + 4 + _model_pages_prewarm()


MODEL_PAGES_PREWARMED = 20


def _model_pages_prewarm() -> int:
    """The figures of the month's top model pages (most visitors follow the leaderboard)."""
    week = window_parse("week")
    top = ranking_models(window=window_parse("month"), metric="tokens", limit=MODEL_PAGES_PREWARMED)
    for row in top:
        for window in STATS_WINDOWS:
            endpoint_stats(model_id=row.id, window=window)
        hourly_uptime(model_id=row.id)
        daily_series(group="provider__name", model_id=row.id)
        top_apps_of_model(model_id=row.id, window=week)
    return (len(STATS_WINDOWS) + 3) * len(top)
