"""Rankings over time: tokens per week and per day of models, authors, providers and apps, and the
daily dataset; cached under the rankings version like the leaderboards.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F, Min, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from analytics.models import AppDay, EndpointDay
from core.charts import Series
from core.timerange import hour_end
from marketplace.models import Author, Model

from .cache import rankings_cached
from .endpoint_stats import uptime
from .price_index import price_per_million


def _weeks(now: datetime, weeks: int) -> tuple[datetime, list[datetime]]:
    end = hour_end(now)
    monday = (end - timedelta(days=end.weekday())).replace(hour=0)
    starts = [monday - timedelta(weeks=i) for i in range(weeks - 1, -1, -1)]
    return starts[0], starts


def weekly_tokens(*, by: str, weeks: int = 8, top: int = 8, now: datetime | None = None) -> Series:
    """Tokens per week of the top models (by="model") or authors (by="author"), the rest as Others."""
    now = now or timezone.now()

    def compute() -> Series:
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

    return rankings_cached(f"weekly:{by}:{weeks}:{top}:{now:%Y%m%d%H}", compute)


def _names(by: str, ids: list[int]) -> dict[int, str]:
    if by == "model":
        return {pk: m.name for pk, m in Model.objects.in_bulk(ids).items()}
    return {pk: a.name for pk, a in Author.objects.in_bulk(ids).items()}



@dataclass(frozen=True)
class DailyRow:
    date: str
    rank: int | None  # None for the `other` row
    model: str
    tokens_prompt: int
    tokens_completion: int
    spend_units: int = 0  # BYOK excluded
    byok_tokens: int = 0
    unpriced_tokens: int = 0  # not BYOK

    @property
    def tokens(self) -> int:
        return self.tokens_prompt + self.tokens_completion

    @property
    def price_per_million(self):
        """USD per 1M priced tokens not BYOK (the token price index's ingredient); None without such tokens."""
        return price_per_million(self.spend_units, self.tokens - self.byok_tokens - self.unpriced_tokens)


def daily_top_models(*, start, end, top: int = 50) -> list[DailyRow]:
    """Per UTC day from start to end (inclusive): the top listed models by tokens, then `other`."""

    rows = (EndpointDay.objects.filter(model__listed=True, day__gte=start, day__lte=end)
            .values("day", "model__slug")
            .annotate(p=Sum("tokens_prompt"), c=Sum("tokens_completion"), s=Sum("spend_units"), b=Sum("byok_tokens"),
                      u=Sum("unpriced_tokens"))
            .values_list("day", "model__slug", "p", "c", "s", "b", "u"))
    per_day: dict = {}
    for day, slug, *sums in rows:
        per_day.setdefault(day, []).append((slug, *(int(v or 0) for v in sums)))
    out = []
    for day in sorted(per_day):
        ranked = sorted(per_day[day], key=lambda r: (-(r[1] + r[2]), r[0]))
        label = day.isoformat()
        out += [DailyRow(label, i, *row) for i, row in enumerate(ranked[:top], start=1)]
        rest = ranked[top:]
        if rest:
            out.append(DailyRow(label, None, "other", *(sum(r[i] for r in rest) for i in range(1, 6))))
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
    return rankings_cached(f"daily:{group}:{days}:{key}:{end}", compute)



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

    return rankings_cached(f"app-daily:{app_id}:{days}:{end}", compute)


def provider_daily_health(*, provider_id: int, days: int = 30, now: datetime | None = None) -> list[tuple]:
    """Per day: (date, tokens, uptime, mean latency ms) of a provider over listed models."""

    now = now or timezone.now()
    start = now.date() - timedelta(days=days - 1)

    def compute() -> list[tuple]:
        rows = (EndpointDay.objects.filter(provider_id=provider_id, day__gte=start, model__listed=True)
                .values("day")
                .annotate(tokens=Sum(F("tokens_prompt") + F("tokens_completion")), attempts=Sum("attempts"),
                          failed=Sum("failed_attempts"), limited=Sum("rate_limited_attempts"),
                          latency=Sum("latency_sum"), n=Sum("latency_count"))
                .order_by("day"))
        return [(r["day"].isoformat(), r["tokens"] or 0,
                 uptime(r["attempts"] or 0, r["failed"] or 0, r["limited"] or 0),
                 r["latency"] / r["n"] if r["n"] else None) for r in rows]

    return rankings_cached(f"provider-health:{provider_id}:{days}:{start}", compute)



def first_traffic_day():
    """The first UTC day with any traffic (None: none yet), for windows that reach back before it."""
    return rankings_cached("first-traffic-day", lambda: EndpointDay.objects.aggregate(first=Min("day"))["first"])
