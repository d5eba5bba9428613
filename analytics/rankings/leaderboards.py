"""Public rankings: models, providers and apps by tokens or spend over a window, read from rollups.

Definitions (DESIGN.md): tokens = prompt + completion; spend = total cost (BYOK excluded);
`day` = the last 24 h, `week` = 7 days, `month` = 30 days, `all`; change is against the preceding
window of equal length. Only listed models and public apps appear. Results are cached under the
rankings version that every ingested chunk bumps (`analytics.tasks.rollup_rankings_refresh`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.core.cache import cache
from django.db.models import F, Sum
from django.utils import timezone

from marketplace.models import App, Model, Provider

from .models import AppDay, EndpointDay, EndpointHour

WINDOWS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30), "all": None}
METRICS = ("tokens", "spend")
CACHE_SECONDS = 24 * 3600  # keyed by the rankings version, so long-lived entries are never stale
CACHE_PAGE_SECONDS = 60  # whole rendered pages, as stale as the rankings version allows


@dataclass(frozen=True)
class Window:
    name: str
    start: datetime | None
    end: datetime

    @property
    def previous(self) -> Window | None:
        if self.start is None:
            return None
        return Window(self.name, self.start - (self.end - self.start), self.start)

    @property
    def days(self) -> int | None:
        return None if self.start is None else (self.end - self.start).days

    @property
    def first_day(self) -> date | None:
        """The first date the daily rollups count: the one after the date of the moment before the start.

        So `day` is today so far and `week` today and the six days before, without overlap between
        windows, also in the day's last hour, when the window starts at midnight.
        """
        return None if self.start is None else (self.start - timedelta(microseconds=1)).date() + timedelta(days=1)

    @property
    def last_day(self) -> date:
        """The last date the window touches (inclusive)."""
        return (self.end - timedelta(microseconds=1)).date()


def window_parse(name: str | None, *, now: datetime | None = None) -> Window:
    """The window ending at the current hour's end (unknown names mean `week`)."""
    name = name if name in WINDOWS else "week"
    now = now or timezone.now()
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    length = WINDOWS[name]
    return Window(name, end - length if length else None, end)


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


def _totals(queryset, key: str, metric: str, window: Window | None) -> dict[int, int]:
    if window is None:
        return {}
    if queryset.model is EndpointHour:
        if window.start is not None:
            queryset = queryset.filter(hour__gte=window.start)
        queryset = queryset.filter(hour__lt=window.end)
    else:
        if window.first_day is not None:
            queryset = queryset.filter(day__gte=window.first_day)
        queryset = queryset.filter(day__lte=window.last_day)
    rows = queryset.values(key).annotate(value=Sum(_expression(metric))).values_list(key, "value")
    return {k: v or 0 for k, v in rows}


def version() -> int:
    """The rankings version: cached rankings and pages are keyed by it."""
    return cache.get("rankings:version") or 0


def rankings_invalidate() -> None:
    """Move the version now (staff changed what may appear publicly)."""
    try:
        cache.incr("rankings:version")
    except ValueError:
        cache.set("rankings:version", 1, None)


def _cached(key: str, compute):
    full_key = f"rankings:{version()}:{key}"
    value = cache.get(full_key)
    if value is None:
        value = compute()
        cache.set(full_key, value, CACHE_SECONDS)
    return value


Describe = dict[int, tuple[str, str, str, str, str]]  # id -> name, slug, url, author, author url


def _ranking(key: str, queryset, id_field: str, metric: str, window: Window, limit: int,
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

    return _cached(f"{key}:{window.name}:{window.end:%Y%m%d%H}:{metric}:{limit}:{int(trending)}", compute)


def _preceding(window: Window, count: int) -> list[Window]:
    windows, current = [], window
    for _ in range(count):
        current = current.previous
        if current is None:
            return []
        windows.append(current)
    return windows


def _describe_models(ids: list[int]) -> Describe:
    models = Model.objects.select_related("author").in_bulk(ids)
    return {k: (m.name, m.slug, m.get_absolute_url(), m.author.name, m.author.get_absolute_url())
            for k, m in models.items()}


def _describe_authors(ids: list[int]) -> Describe:
    from marketplace.models import Author

    return {k: (a.name, a.slug, a.get_absolute_url(), "", "") for k, a in Author.objects.in_bulk(ids).items()}


def _describe_providers(ids: list[int]) -> Describe:
    return {k: (p.name, p.slug, p.get_absolute_url(), "", "") for k, p in Provider.objects.in_bulk(ids).items()}


def _describe_apps(ids: list[int]) -> Describe:
    return {k: (a.name, a.slug, a.get_absolute_url(), a.origin, "") for k, a in App.objects.in_bulk(ids).items()}


def _endpoint_rollup(window: Window):
    """The last 24 h needs hours; longer windows read the daily rollup (whole UTC dates)."""
    return EndpointHour if window.name == "day" else EndpointDay


def ranking_models(*, window: Window, metric: str, limit: int = 100, category: str = "") -> list[RankRow]:
    """Listed models ranked by tokens or spend in the window, with change and share.

    With a category, only traffic from public apps of that category counts (apps roll up by day).
    """
    if category:
        used = AppDay.objects.filter(model__listed=True, app__public=True, app__categories__slug=category)
        # The category comes from the query string: hashed, the key stays short and safe for any backend.
        digest = hashlib.sha256(category.encode()).hexdigest()[:24]
        return _ranking(f"models-category-{digest}", used, "model_id", metric, window, limit, _describe_models)
    listed = _endpoint_rollup(window).objects.filter(model__listed=True)
    return _ranking("models", listed, "model_id", metric, window, limit, _describe_models)


def ranking_authors(*, window: Window, metric: str, limit: int = 20) -> list[RankRow]:
    """Authors (labs) ranked by their listed models' traffic."""
    listed = _endpoint_rollup(window).objects.filter(model__listed=True)
    return _ranking("authors", listed, "model__author_id", metric, window, limit, _describe_authors)


def ranking_providers(*, window: Window, metric: str, limit: int = 20) -> list[RankRow]:
    """Providers ranked by what they served of listed models."""
    served = _endpoint_rollup(window).objects.filter(model__listed=True)
    return _ranking("providers", served, "provider_id", metric, window, limit, _describe_providers)


def ranking_apps(*, window: Window, metric: str, limit: int = 20, trending: bool = False) -> list[RankRow]:
    """Public apps ranked by their use of listed models (apps roll up per day).

    `trending` ranks by tokens in the window minus the mean of the three preceding windows.
    """
    used = AppDay.objects.filter(app__public=True, model__listed=True)
    return _ranking("apps", used, "app_id", metric, window, limit, _describe_apps, trending=trending)


def categories_in_use() -> list[tuple[str, str]]:
    """(slug, name) of the categories public apps declare, for the selector."""
    from marketplace.models import AppCategory

    return _cached("categories", lambda: list(AppCategory.objects.filter(apps__public=True).distinct()
                                              .order_by("name").values_list("slug", "name")))


@dataclass(frozen=True)
class Series:
    """Values per period for named series (a stacked chart and its table)."""

    periods: list[str]
    series: dict[str, list[int]]

    @property
    def rows(self) -> list[tuple[str, list[int]]]:
        return list(self.series.items())

    @property
    def table(self) -> list[tuple[str, list[int]]]:
        """One row per period with the value of each series (the chart's no-JS table)."""
        columns = list(self.series.values())
        return [(period, [values[i] for values in columns]) for i, period in enumerate(self.periods)]


def _weeks(now: datetime, weeks: int) -> tuple[datetime, list[datetime]]:
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    monday = (end - timedelta(days=end.weekday())).replace(hour=0)
    starts = [monday - timedelta(weeks=i) for i in range(weeks - 1, -1, -1)]
    return starts[0], starts


def weekly_tokens(*, by: str, weeks: int = 8, top: int = 8, now: datetime | None = None) -> Series:
    """Tokens per week of the top models (by="model") or authors (by="author"), the rest as Others."""
    now = now or timezone.now()

    def compute() -> Series:
        from django.db.models.functions import TruncWeek

        start, starts = _weeks(now, weeks)
        key = "model_id" if by == "model" else "model__author_id"
        rows = (EndpointDay.objects.filter(model__listed=True, day__gte=start.date())
                .annotate(week=TruncWeek("day")).values("week", key)
                .annotate(tokens=Sum(F("tokens_prompt") + F("tokens_completion"))).values_list("week", key, "tokens"))
        per_key: dict[int, dict[str, int]] = {}
        labels = [s.strftime("%Y-%m-%d") for s in starts]
        for week, ident, tokens in rows:
            label = (week.date() if hasattr(week, "date") else week).strftime("%Y-%m-%d")
            per_key.setdefault(ident, {})[label] = per_key.get(ident, {}).get(label, 0) + (tokens or 0)
        ranked = sorted(per_key, key=lambda k: -sum(per_key[k].values()))
        names = _names(by, ranked[:top])
        series = {names[k]: [per_key[k].get(label, 0) for label in labels] for k in ranked[:top]}
        rest = ranked[top:]
        if rest:
            series["Others"] = [sum(per_key[k].get(label, 0) for k in rest) for label in labels]
        return Series(labels, series)

    return _cached(f"weekly:{by}:{weeks}:{top}:{now:%Y%m%d%H}", compute)


def _names(by: str, ids: list[int]) -> dict[int, str]:
    from marketplace.models import Author

    if by == "model":
        return {pk: m.name for pk, m in Model.objects.in_bulk(ids).items()}
    return {pk: a.name for pk, a in Author.objects.in_bulk(ids).items()}


@dataclass(frozen=True)
class VolumeMoney:
    author: str
    url: str
    token_share: float
    spend_share: float


def authors_volume_vs_money(*, window: Window, top: int = 12) -> list[VolumeMoney]:
    """Each author's share of tokens beside its share of spend in the window."""

    def compute() -> list[VolumeMoney]:
        from marketplace.models import Author

        listed = _endpoint_rollup(window).objects.filter(model__listed=True)
        tokens = _totals(listed, "model__author_id", "tokens", window)
        spend = _totals(listed, "model__author_id", "spend", window)
        total_tokens, total_spend = sum(tokens.values()), sum(spend.values())
        ranked = sorted(set(tokens) | set(spend), key=lambda a: -(tokens.get(a, 0) / (total_tokens or 1)
                                                                  + spend.get(a, 0) / (total_spend or 1)))[:top]
        authors = Author.objects.in_bulk(ranked)
        return [VolumeMoney(authors[a].name, authors[a].get_absolute_url(),
                            tokens.get(a, 0) / total_tokens if total_tokens else 0.0,
                            spend.get(a, 0) / total_spend if total_spend else 0.0) for a in ranked]

    return _cached(f"volume-money:{window.name}:{window.end:%Y%m%d%H}:{top}", compute)


@dataclass(frozen=True)
class DailyRow:
    date: str
    rank: int | None  # None for the `other` row
    model: str
    tokens_prompt: int
    tokens_completion: int

    @property
    def tokens(self) -> int:
        return self.tokens_prompt + self.tokens_completion


def daily_top_models(*, start, end, top: int = 50) -> list[DailyRow]:
    """Per UTC day from start to end (inclusive): the top listed models by tokens, then `other`."""

    rows = (EndpointDay.objects.filter(model__listed=True, day__gte=start, day__lte=end)
            .values("day", "model__slug")
            .annotate(p=Sum("tokens_prompt"), c=Sum("tokens_completion")).values_list("day", "model__slug", "p", "c"))
    per_day: dict = {}
    for day, slug, prompt, completion in rows:
        per_day.setdefault(day, []).append((slug, prompt or 0, completion or 0))
    out = []
    for day in sorted(per_day):
        ranked = sorted(per_day[day], key=lambda r: (-(r[1] + r[2]), r[0]))
        label = day.isoformat()
        out += [DailyRow(label, i, slug, p, c) for i, (slug, p, c) in enumerate(ranked[:top], start=1)]
        rest = ranked[top:]
        if rest:
            out.append(DailyRow(label, None, "other", sum(r[1] for r in rest), sum(r[2] for r in rest)))
    return out


def daily_series(*, days: int = 30, group: str, now: datetime | None = None, **filters) -> Series:
    """Tokens per UTC day for the last `days`, one series per `group` (e.g. provider__name)."""

    now = now or timezone.now()
    end = now.date()
    start = end - timedelta(days=days - 1)

    def compute() -> Series:
        rows = (EndpointDay.objects.filter(day__gte=start, model__listed=True, **filters)
                .annotate(date=F("day")).values("date", group)
                .annotate(tokens=Sum(F("tokens_prompt") + F("tokens_completion"))).values_list("date", group, "tokens"))
        labels = [(start + timedelta(days=i)).isoformat() for i in range(days)]
        series: dict[str, list[int]] = {}
        for day, name, tokens in rows:
            index = (day - start).days
            if 0 <= index < days:
                series.setdefault(str(name), [0] * days)[index] += tokens or 0
        ordered = dict(sorted(series.items(), key=lambda kv: -sum(kv[1])))
        return Series(labels, ordered)

    key = ":".join(f"{k}={v}" for k, v in sorted(filters.items()))
    return _cached(f"daily:{group}:{days}:{key}:{end}", compute)


def top_apps_of_model(*, model_id: int, window: Window, limit: int = 10) -> list[RankRow]:
    """Public apps using a model most in the window."""
    used = AppDay.objects.filter(app__public=True, model_id=model_id)
    return _ranking(f"apps-of-model-{model_id}", used, "app_id", "tokens", window, limit, _describe_apps)


def models_of(*, window: Window, limit: int = 20, **filters) -> list[RankRow]:
    """Listed models by tokens in the window, restricted by filters (provider_id=…, model__author_id=…)."""
    key = ":".join(f"{k}={v}" for k, v in sorted(filters.items()))
    used = _endpoint_rollup(window).objects.filter(model__listed=True, **filters)
    return _ranking(f"models-of-{key}", used, "model_id", "tokens", window, limit, _describe_models)


def models_of_app(*, app_id: int, window: Window, limit: int = 20) -> list[RankRow]:
    """Listed models an app used most in the window (apps roll up by day)."""
    used = AppDay.objects.filter(app_id=app_id, model__listed=True)
    return _ranking(f"models-of-app-{app_id}", used, "model_id", "tokens", window, limit, _describe_models)


def app_daily_tokens(*, app_id: int, days: int = 30, now: datetime | None = None) -> Series:
    """An app's tokens per day, one series per model (top 6, then Others)."""
    now = now or timezone.now()
    end = now.date()
    start = end - timedelta(days=days - 1)

    def compute() -> Series:
        rows = (AppDay.objects.filter(app_id=app_id, day__gte=start, model__listed=True)
                .values_list("day", "model__name").annotate(tokens=Sum(F("tokens_prompt") + F("tokens_completion"))))
        labels = [(start + timedelta(days=i)).isoformat() for i in range(days)]
        series: dict[str, list[int]] = {}
        for day, name, tokens in rows:
            series.setdefault(name, [0] * days)[(day - start).days] += tokens or 0
        ranked = sorted(series, key=lambda k: -sum(series[k]))
        out = {k: series[k] for k in ranked[:6]}
        if len(ranked) > 6:
            out["Others"] = [sum(series[k][i] for k in ranked[6:]) for i in range(days)]
        return Series(labels, out)

    return _cached(f"app-daily:{app_id}:{days}:{end}", compute)


def provider_daily_health(*, provider_id: int, days: int = 30, now: datetime | None = None) -> list[tuple]:
    """Per day: (date, tokens, uptime, mean latency ms) of a provider over listed models."""

    now = now or timezone.now()
    start = now.date() - timedelta(days=days - 1)

    def compute() -> list[tuple]:
        rows = (EndpointDay.objects.filter(provider_id=provider_id, day__gte=start, model__listed=True)
                .values("day")
                .annotate(tokens=Sum(F("tokens_prompt") + F("tokens_completion")), attempts=Sum("attempts"),
                          failed=Sum("failed_attempts"), latency=Sum("latency_sum"), n=Sum("latency_count"))
                .order_by("day"))
        return [(r["day"].isoformat(), r["tokens"] or 0,
                 (r["attempts"] - r["failed"]) / r["attempts"] if r["attempts"] else None,
                 r["latency"] / r["n"] if r["n"] else None) for r in rows]

    return _cached(f"provider-health:{provider_id}:{days}:{start}", compute)


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
        if window.previous:
            ranking_apps(window=window, metric="tokens", limit=10, trending=True)
            count += 1
        authors_volume_vs_money(window=window)
        count += 1
    weekly_tokens(by="model")
    weekly_tokens(by="author", top=10)
    categories_in_use()
    return count + 3 + _model_pages_prewarm()


MODEL_PAGES_PREWARMED = 20


def _model_pages_prewarm() -> int:
    """The figures of the month's top model pages (most visitors follow the leaderboard)."""
    from .endpoint_stats import endpoint_stats

    week = window_parse("week")
    top = ranking_models(window=window_parse("month"), metric="tokens", limit=MODEL_PAGES_PREWARMED)
    for row in top:
        endpoint_stats(model_id=row.id)
        daily_series(group="provider__name", model_id=row.id)
        top_apps_of_model(model_id=row.id, window=week)
    return 3 * len(top)
