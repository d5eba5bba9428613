"""The account overview: totals against the previous period, spend and tokens by model over time, the
top tables, and the daily spend its forecast reads; each cached under the account's usage version."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo

from django.db.models import Min, Q
from django.utils import timezone

from analytics.models import AccountDay
from billing.selectors import spend_days
from core.charts import Series
from core.money import units_to_usd
from core.timerange import TimeRange

from .buckets import bucket_label, bucket_labels
from .cache import account_cached, usage_cached
from .grouping import counter_sums, grouped_sums, rollup_rows, tags_fan_out
from .names import dimension_names
from .params import DIMENSIONS, OVERVIEW_TOPS
from .totals import Totals


@account_cached
def usage_totals(*, account_id: int, period: TimeRange) -> tuple[Totals, Totals]:
    """The period's totals and the preceding period's, in one query."""
    previous = period.previous
    rows, column = rollup_rows(account_id, previous.start, period.end, hourly=not period.daily_rollup)
    boundary = period.start if column == "hour" else period.start.date()
    row = rows.aggregate(**counter_sums("now_", Q(**{f"{column}__gte": boundary})),
                         **counter_sums("before_", Q(**{f"{column}__lt": boundary})))
    return Totals.of(row, "now_"), Totals.of(row, "before_")



@dataclass(frozen=True)
class TopRow:
    id: int | str  # an id; a user's or a tag's text
    name: str
    totals: Totals
    share: float  # of the period's spend, or of its tokens when nothing was spent



def _top_rows(grouped: dict[tuple, Totals], dimension: str, *, account_id: int, limit: int,
              whole: Totals) -> list[TopRow]:
    """The top `limit` of `grouped` by spend, then tokens; shares of `whole` (the period, not a sum of
    the rows: tags overlap)."""
    totals = [(key[0], t) for key, t in grouped.items()]
    totals.sort(key=lambda item: (-item[1].spend_units, -item[1].tokens, item[0]))
    spend, tokens = whole.spend_units, whole.tokens
    names = dimension_names(dimension, (i for i, _ in totals[:limit]), account_id=account_id)
    return [TopRow(i, names[i], t, (t.spend_units / spend) if spend else (t.tokens / tokens if tokens else 0.0))
            for i, t in totals[:limit]]



def _by_day_series(grouped: dict[tuple, Totals], period: TimeRange, *, account_id: int, top: int) -> tuple[Series, Series]:
    granularity = "hour" if not period.by_day else "day"
    spend: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    tokens: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    bucket_of: dict = {}
    for (at, model_id), totals in grouped.items():
        bucket = bucket_of.get(at) or bucket_of.setdefault(at, bucket_label(at, granularity, period.zone))
        spend[model_id][bucket] += totals.spend_units
        tokens[model_id][bucket] += totals.tokens
    periods = bucket_labels(period, granularity)
    names = dimension_names("model", spend.keys(), account_id=account_id)

    def stacked(values: dict[int, dict[str, int]], to_value) -> Series:
        ordered = sorted(values, key=lambda m: (-sum(values[m].values()), names[m]))
        series = {names[m]: [to_value(values[m].get(p, 0)) for p in periods] for m in ordered[:top]}
        if len(ordered) > top:
            series["Others"] = [to_value(sum(values[m].get(p, 0) for m in ordered[top:])) for p in periods]
        return Series(periods=periods, series=series)

    return stacked(spend, units_to_usd), stacked(tokens, int)



def _by_day_set(period: TimeRange) -> tuple[str, str]:
    return ("day" if period.daily_rollup else "hour", "model_id")



@dataclass(frozen=True)
class Overview:
    totals: Totals
    previous: Totals
    spend: Series  # per day (hour) by model
    tokens: Series
    tops: dict[str, list[TopRow]]  # dimension -> top rows
    first_day: date | None = None  # the account's first UTC day with traffic (the previous period may predate it)



@account_cached
def usage_overview(*, account_id: int, period: TimeRange, top: int = 8) -> Overview:
    """What the overview shows: totals against the previous period, spend and tokens by model over
    time, and the top models, keys, apps, providers, users and tags; two queries (one pass over the
    period's rows feeds the chart and the six tables) and one cache entry.
    """
    now, before = usage_totals(account_id=account_id, period=period)
    by_day = _by_day_set(period)
    sets = [by_day, *((DIMENSIONS[d],) for d in OVERVIEW_TOPS)]
    grouped = grouped_sums(account_id, period.start, period.end, hourly=not period.daily_rollup, sets=sets)
    spend, tokens = _by_day_series(grouped[by_day], period, account_id=account_id, top=top)
    # Tags: the same pass grouped by tag set (an account has few), split here into tags.
    grouped[("tags",)] = tags_fan_out(grouped[("tags",)], 0)
    tops = {d: _top_rows(grouped[(DIMENSIONS[d],)], d, account_id=account_id, limit=top, whole=now)
            for d in OVERVIEW_TOPS}
    first_day = AccountDay.objects.filter(account_id=account_id).aggregate(first=Min("day"))["first"]
    return Overview(totals=now, previous=before, spend=spend, tokens=tokens, tops=tops, first_day=first_day)



def forecast_days(*, account_id: int, now: datetime | None = None, zone: tzinfo = UTC) -> dict[date, int]:
    """The daily spend the overview's forecast reads (billing.selectors.spend_days), cached like the overview."""
    today = (now or timezone.now()).astimezone(zone).date()
    return usage_cached(account_id, f"spend-days:{today}:{getattr(zone, 'key', 'UTC')}",
                        lambda: spend_days(account_id=account_id, now=now, zone=zone))

