"""Public leaderboards: models, authors, providers and apps by tokens or spend over a window, from rollups.

Definitions: tokens = prompt + completion; spend = total cost (BYOK excluded);
`day` = the last 24 h, `week` = 7 days, `month` = 30 days, `all`; change is against the preceding
window of equal length. Only listed models and public apps appear. Results are cached under the
rankings version (`cache`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F, Sum

from analytics.models import AppDay, EndpointDay, EndpointHour
from core.timerange import TimeRange, hour_end
from marketplace.models import App, AppCategory, Author, Model, Provider

from .cache import rankings_cached

WINDOWS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30), "all": None}
METRICS = ("tokens", "spend")


def window_parse(name: str | None, *, now: datetime | None = None) -> TimeRange:
    """The window ending at the current hour's end (unknown names mean `week`)."""
    name = name if name in WINDOWS else "week"
    end = hour_end(now)
    length = WINDOWS[name]
    return TimeRange(name, end - length if length else None, end)


def metric_parse(name: str | None) -> str:
    return name if name in METRICS else "tokens"


@dataclass(frozen=True)
class RankRow:
    rank: int
    id: int
    name: str
    slug: str
    url: str
    author: str
    author_url: str
    value: int
    previous: int | None
    share: float
    trend: float | None = None

    @property
    def change(self) -> float | None:
        """Relative change against the preceding window; None when there was nothing before."""
        if self.previous is None or self.previous == 0:
            return None
        return (self.value - self.previous) / self.previous


def _expression(metric: str):
    return F("tokens_prompt") + F("tokens_completion") if metric == "tokens" else F("spend_units")


def windowed(queryset, window: TimeRange):
    """The rollup rows (hourly or daily) that fall in the window."""
    if queryset.model is EndpointHour:
        if window.start is not None:
            queryset = queryset.filter(hour__gte=window.start)
        return queryset.filter(hour__lt=window.end)
    if window.first_counted_day is not None:
        queryset = queryset.filter(day__gte=window.first_counted_day)
    return queryset.filter(day__lte=window.last_day)


def _totals(queryset, key: str, metric: str, window: TimeRange | None) -> dict[int, int]:
    if window is None:
        return {}
    rows = windowed(queryset, window).values(key).annotate(value=Sum(_expression(metric))).values_list(key, "value")
    return {k: v or 0 for k, v in rows}



Describe = dict[int, tuple[str, str, str, str, str]]  # id -> name, slug, url, author, author url


def _ranking(key: str, queryset, id_field: str, metric: str, window: TimeRange, limit: int,
             describe, trending: bool = False) -> list[RankRow]:
    """Rank ids of `queryset` by the metric in the window, with change (or trending) and share."""

    def compute() -> list[RankRow]:
        current = _totals(queryset, id_field, metric, window)
        if trending:
            earlier = [_totals(queryset, id_field, metric, w) for w in _preceding(window, 3)]
            baseline = {k: sum(e.get(k, 0) for e in earlier) / 3 for k in current}
            scores = {k: v - baseline[k] for k, v in current.items()}
        else:
            scores = current
        previous = _totals(queryset, id_field, metric, window.previous)
        total = sum(current.values())
        top = sorted((k for k, v in current.items() if v > 0), key=lambda k: (-scores[k], k))[:limit]
        described = describe(top)
        return [RankRow(i, k, *described[k], value=current[k],
                        previous=previous.get(k) if window.previous else None,
                        share=current[k] / total if total else 0.0,
                        trend=scores[k] if trending else None)
                for i, k in enumerate(top, start=1)]

    return rankings_cached(f"{key}:{window.name}:{window.end:%Y%m%d%H}:{metric}:{limit}:{int(trending)}", compute)


def _preceding(window: TimeRange, count: int) -> list[TimeRange]:
    windows, current = [], window
    for _ in range(count):
        current = current.previous
        if current is None:
            return []
        windows.append(current)
    return windows


def describe_models(ids: list[int]) -> Describe:
    models = Model.objects.select_related("author").in_bulk(ids)
    return {k: (m.name, m.slug, m.get_absolute_url(), m.author.name, m.author.get_absolute_url())
            for k, m in models.items()}


def _describe_authors(ids: list[int]) -> Describe:
    return {k: (a.name, a.slug, a.get_absolute_url(), "", "") for k, a in Author.objects.in_bulk(ids).items()}


def _describe_providers(ids: list[int]) -> Describe:
    return {k: (p.name, p.slug, p.get_absolute_url(), "", "") for k, p in Provider.objects.in_bulk(ids).items()}


def _describe_apps(ids: list[int]) -> Describe:
    return {k: (a.name, a.slug, a.get_absolute_url(), a.origin, "") for k, a in App.objects.in_bulk(ids).items()}


def endpoint_rollup(window: TimeRange):
    """The last 24 h needs hours; longer windows read the daily rollup (whole UTC dates)."""
    return EndpointHour if window.name == "day" else EndpointDay


def ranking_models(*, window: TimeRange, metric: str, limit: int = 100, category: str = "") -> list[RankRow]:
    """Listed models ranked by tokens or spend in the window, with change and share.

    With a category, only traffic from public apps of that category counts (apps roll up by day).
    """
    if category:
        used = AppDay.objects.filter(model__listed=True, app__public=True, app__categories__slug=category)
        # The category comes from the query string: hashed, the key stays short and safe for any backend.
        digest = hashlib.sha256(category.encode()).hexdigest()[:24]
        return _ranking(f"models-category-{digest}", used, "model_id", metric, window, limit, describe_models)
    listed = endpoint_rollup(window).objects.filter(model__listed=True)
    return _ranking("models", listed, "model_id", metric, window, limit, describe_models)


def ranking_authors(*, window: TimeRange, metric: str, limit: int = 20) -> list[RankRow]:
    """Authors (labs) ranked by their listed models' traffic."""
    listed = endpoint_rollup(window).objects.filter(model__listed=True)
    return _ranking("authors", listed, "model__author_id", metric, window, limit, _describe_authors)


def ranking_providers(*, window: TimeRange, metric: str, limit: int = 20) -> list[RankRow]:
    """Providers ranked by what they served of listed models."""
    served = endpoint_rollup(window).objects.filter(model__listed=True)
    return _ranking("providers", served, "provider_id", metric, window, limit, _describe_providers)


def ranking_apps(*, window: TimeRange, metric: str, limit: int = 20, trending: bool = False) -> list[RankRow]:
    """Public apps ranked by their use of listed models (apps roll up per day).

    `trending` ranks by tokens in the window minus the mean of the three preceding windows.
    """
    used = AppDay.objects.filter(app__public=True, model__listed=True)
    return _ranking("apps", used, "app_id", metric, window, limit, _describe_apps, trending=trending)


@dataclass(frozen=True)
class Coverage:
    """What a ranking by spend leaves out: its window's requests that Tokengrid could not price (they carry
    tokens but no spend), beside all of its requests."""

    requests: int
    unpriced_requests: int

    @property
    def unpriced_share(self) -> float:
        return self.unpriced_requests / self.requests if self.requests else 0.0



def ranking_coverage(*, window: TimeRange, of: str = "models", category: str = "") -> Coverage:
    """The unpriced requests among the requests a leaderboard ranks (`of`), in the window: the models,
    authors and providers leaderboards read the same endpoint rows; apps (and a category) their app rows."""
    if category:
        rows = AppDay.objects.filter(model__listed=True, app__public=True, app__categories__slug=category)
        key = f"coverage-category-{hashlib.sha256(category.encode()).hexdigest()[:24]}"
    elif of == "apps":
        rows, key = AppDay.objects.filter(app__public=True, model__listed=True), "coverage-apps"
    else:
        rows, key = endpoint_rollup(window).objects.filter(model__listed=True), "coverage-endpoints"

    def compute() -> Coverage:
        sums = windowed(rows, window).aggregate(requests=Sum("requests", default=0),
                                                unpriced=Sum("unpriced_requests", default=0))
        return Coverage(requests=sums["requests"], unpriced_requests=sums["unpriced"])

    return rankings_cached(f"{key}:{window.name}:{window.end:%Y%m%d%H}", compute)


def categories_in_use() -> list[tuple[str, str]]:
    """(slug, name) of the categories public apps declare, for the selector."""
    return rankings_cached("categories", lambda: list(AppCategory.objects.filter(apps__public=True).distinct()
                                              .order_by("name").values_list("slug", "name")))


@dataclass(frozen=True)
class VolumeMoney:
    author: str
    url: str
    token_share: float
    spend_share: float


def authors_volume_vs_money(*, window: TimeRange, top: int = 12) -> list[VolumeMoney]:
    """Each author's share of tokens beside its share of spend in the window."""

    def compute() -> list[VolumeMoney]:
        listed = endpoint_rollup(window).objects.filter(model__listed=True)
        tokens = _totals(listed, "model__author_id", "tokens", window)
        spend = _totals(listed, "model__author_id", "spend", window)
        total_tokens, total_spend = sum(tokens.values()), sum(spend.values())
        ranked = sorted(set(tokens) | set(spend), key=lambda a: -(tokens.get(a, 0) / (total_tokens or 1)
                                                                  + spend.get(a, 0) / (total_spend or 1)))[:top]
        authors = Author.objects.in_bulk(ranked)
        return [VolumeMoney(authors[a].name, authors[a].get_absolute_url(),
                            tokens.get(a, 0) / total_tokens if total_tokens else 0.0,
                            spend.get(a, 0) / total_spend if total_spend else 0.0) for a in ranked]

    return rankings_cached(f"volume-money:{window.name}:{window.end:%Y%m%d%H}:{top}", compute)



def top_apps_of_model(*, model_id: int, window: TimeRange, limit: int = 10) -> list[RankRow]:
    """Public apps using a model most in the window."""
    used = AppDay.objects.filter(app__public=True, model_id=model_id)
    return _ranking(f"apps-of-model-{model_id}", used, "app_id", "tokens", window, limit, _describe_apps)


def models_of(*, window: TimeRange, limit: int = 20, **filters) -> list[RankRow]:
    """Listed models by tokens in the window, restricted by filters (provider_id=…, model__author_id=…)."""
    key = ":".join(f"{k}={v}" for k, v in sorted(filters.items()))
    used = endpoint_rollup(window).objects.filter(model__listed=True, **filters)
    return _ranking(f"models-of-{key}", used, "model_id", "tokens", window, limit, describe_models)


def models_of_app(*, app_id: int, window: TimeRange, limit: int = 20) -> list[RankRow]:
    """Listed models an app used most in the window (apps roll up by day)."""
    used = AppDay.objects.filter(app_id=app_id, model__listed=True)
    return _ranking(f"models-of-app-{app_id}", used, "model_id", "tokens", window, limit, describe_models)

