"""Public rankings: models, providers and apps by tokens or spend over a window, read from rollups.

Definitions (DESIGN.md): tokens = prompt + completion; spend = total cost (BYOK excluded);
`day` = the last 24 h, `week` = 7 days, `month` = 30 days, `all`; change is against the preceding
window of equal length. Only listed models and public apps appear. Results are cached under the
rankings version that every ingested chunk bumps (`analytics.tasks.rollup_rankings_refresh`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.models import F, Sum
from django.utils import timezone

from marketplace.models import App, Model, Provider

from .models import AppDay, EndpointHour

WINDOWS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30), "all": None}
METRICS = ("tokens", "spend")
CACHE_SECONDS = 600


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
    if window.start is not None:
        queryset = queryset.filter(**{f"{_time_field(queryset)}__gte": _bound(queryset, window.start)})
    if queryset.model is EndpointHour:
        queryset = queryset.filter(hour__lt=window.end)
    else:  # day rollups: the day holding the window's last moment is in
        queryset = queryset.filter(day__lte=(window.end - timedelta(microseconds=1)).date())
    rows = queryset.values(key).annotate(value=Sum(_expression(metric))).values_list(key, "value")
    return {k: v or 0 for k, v in rows}


def _time_field(queryset) -> str:
    return "hour" if queryset.model is EndpointHour else "day"


def _bound(queryset, moment: datetime):
    return moment if queryset.model is EndpointHour else moment.date()


def _version() -> int:
    return cache.get("rankings:version") or 0


def _cached(key: str, compute):
    full_key = f"rankings:{_version()}:{key}"
    value = cache.get(full_key)
    if value is None:
        value = compute()
        cache.set(full_key, value, CACHE_SECONDS)
    return value


def ranking_models(*, window: Window, metric: str, limit: int = 100) -> list[RankRow]:
    """Listed models ranked by tokens or spend in the window, with change and share."""

    def compute() -> list[RankRow]:
        listed = EndpointHour.objects.filter(model__listed=True)
        current = _totals(listed, "model_id", metric, window)
        previous = _totals(listed, "model_id", metric, window.previous)
        total = sum(current.values())
        top = sorted((item for item in current.items() if item[1] > 0), key=lambda kv: (-kv[1], kv[0]))[:limit]
        models = Model.objects.select_related("author").in_bulk([model_id for model_id, _ in top])
        return [
            RankRow(rank=i, id=model_id, name=models[model_id].name, slug=models[model_id].slug,
                    url=models[model_id].get_absolute_url(), author=models[model_id].author.name,
                    author_url=models[model_id].author.get_absolute_url(), value=value,
                    previous=previous.get(model_id) if window.previous else None,
                    share=value / total if total else 0.0)
            for i, (model_id, value) in enumerate(top, start=1)
        ]

    return _cached(f"models:{window.name}:{window.end:%Y%m%d%H}:{metric}:{limit}", compute)


def ranking_providers(*, window: Window, metric: str, limit: int = 20) -> list[RankRow]:
    """Providers ranked by what they served of listed models."""

    def compute() -> list[RankRow]:
        served = EndpointHour.objects.filter(model__listed=True)
        current = _totals(served, "provider_id", metric, window)
        previous = _totals(served, "provider_id", metric, window.previous)
        total = sum(current.values())
        top = sorted((item for item in current.items() if item[1] > 0), key=lambda kv: (-kv[1], kv[0]))[:limit]
        providers = Provider.objects.in_bulk([provider_id for provider_id, _ in top])
        return [
            RankRow(rank=i, id=pid, name=providers[pid].name, slug=providers[pid].slug,
                    url=providers[pid].get_absolute_url(), author="", author_url="", value=value,
                    previous=previous.get(pid) if window.previous else None, share=value / total if total else 0.0)
            for i, (pid, value) in enumerate(top, start=1)
        ]

    return _cached(f"providers:{window.name}:{window.end:%Y%m%d%H}:{metric}:{limit}", compute)


def ranking_apps(*, window: Window, metric: str, limit: int = 20) -> list[RankRow]:
    """Public apps ranked by their use of listed models (by day: apps roll up per day)."""

    def compute() -> list[RankRow]:
        used = AppDay.objects.filter(app__public=True, model__listed=True)
        current = _totals(used, "app_id", metric, window)
        previous = _totals(used, "app_id", metric, window.previous)
        total = sum(current.values())
        top = sorted((item for item in current.items() if item[1] > 0), key=lambda kv: (-kv[1], kv[0]))[:limit]
        apps = App.objects.in_bulk([app_id for app_id, _ in top])
        return [
            RankRow(rank=i, id=aid, name=apps[aid].name, slug=apps[aid].slug, url=apps[aid].get_absolute_url(),
                    author=apps[aid].origin, author_url="", value=value,
                    previous=previous.get(aid) if window.previous else None, share=value / total if total else 0.0)
            for i, (aid, value) in enumerate(top, start=1)
        ]

    return _cached(f"apps:{window.name}:{window.end:%Y%m%d%H}:{metric}:{limit}", compute)


@dataclass(frozen=True)
class Series:
    """Values per period for named series (a stacked chart and its table)."""

    periods: list[str]
    series: dict[str, list[int]]

    @property
    def rows(self) -> list[tuple[str, list[int]]]:
        return list(self.series.items())


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
        rows = (EndpointHour.objects.filter(model__listed=True, hour__gte=start)
                .annotate(week=TruncWeek("hour")).values("week", key)
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

        listed = EndpointHour.objects.filter(model__listed=True)
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
