"""An account's own usage, read from the account rollups: AccountHour by hour, AccountDay by day.

Every function takes the account id first and reads only that account's rows; each selector's
result is cached under the account's usage version (`cache.account_cached`).
"""
from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection
from django.db.models import Q, Sum
from django.utils import timezone

from analytics.models import AccountDay, AccountHour
from billing.models import ApiKey
from billing.selectors import spend_days
from core.charts import Series
from core.money import units_to_usd
from core.timerange import TimeRange
from marketplace.models import App, Model, Provider

from . import savings
from .cache import account_cached, usage_cached
from .params import DIMENSION_LABELS, DIMENSIONS, OVERVIEW_TOPS, activity_granularity, period_parse
from .totals import COUNTERS, METRICS, Totals

TOP_SERIES = 10


def usage_prewarm(*, account_id: int) -> None:
    """Compute and cache what the overview and the activity page show by default."""
    period = period_parse(None)
    usage_overview(account_id=account_id, period=period)
    usage_activity(account_id=account_id, period=period, metric="spend", group_by=(),
                   granularity=activity_granularity(period, None))
    forecast_days(account_id=account_id)
    savings.account_savings(account_id=account_id)


def forecast_days(*, account_id: int, now: datetime | None = None) -> dict[date, int]:
    """The daily spend the overview's forecast reads (billing.selectors.spend_days), cached like the overview."""
    today = (now or timezone.now()).astimezone(UTC).date()
    return usage_cached(account_id, f"spend-days:{today}", lambda: spend_days(account_id=account_id, now=now))



def _source(account_id: int, start: datetime, end: datetime, *, hourly: bool):
    """Rollup rows of the account in [start, end) and the name of their time column."""
    if hourly:
        return AccountHour.objects.filter(account_id=account_id, hour__gte=start, hour__lt=end), "hour"
    return AccountDay.objects.filter(account_id=account_id, day__gte=start.date(), day__lt=end.date()), "day"


def _sums(prefix: str = "", condition: Q | None = None) -> dict:
    return {f"{prefix}{c}": Sum(c, filter=condition, default=0) for c in COUNTERS}


_SUMS_SQL = ", ".join(f"COALESCE(CAST(SUM({c}) AS BIGINT), 0)" for c in COUNTERS)


def _key_getter(positions: list[int]):
    """A function from a fetched row to the tuple of its values at `positions` (C speed where it can)."""
    if len(positions) > 1:
        return operator.itemgetter(*positions)
    if positions:
        at = positions[0]
        return lambda row: (row[at],)
    return lambda row: ()


def _grouped(account_id: int, start: datetime, end: datetime, *, hourly: bool,
             sets: Iterable[tuple[str, ...]]) -> dict[tuple[str, ...], dict[tuple, Totals]]:
    """The counters of the account's rollup rows in [start, end), summed per each set of columns.

    On PostgreSQL one pass over the rows feeds every set (GROUPING SETS): the busiest account's
    month is read once, not once per table of the page, and summed by the database. Elsewhere
    (SQLite) one GROUP BY over all the sets' columns, added up into each set in Python.
    Column names come from this module (DIMENSIONS and the time column), never from a request.
    """
    sets = list(dict.fromkeys(sets))
    columns = list(dict.fromkeys(c for cols in sets for c in cols))
    width = len(columns)
    positions = {cols: [columns.index(c) for c in cols] for cols in sets}
    out: dict[tuple[str, ...], dict[tuple, Totals]] = {cols: {} for cols in sets}
    rows, time_column = _source(account_id, start, end, hourly=hourly)
    if connection.vendor != "postgresql":
        # One GROUP BY over every column named, added up here into each set (the demo's SQLite).
        fetched = (rows.values_list(*columns).annotate(**_sums()).order_by() if columns
                   else [tuple(rows.aggregate(**_sums()).values())])
        for row in fetched:
            totals = Totals._make([int(v or 0) for v in row[width:]])
            for cols, at in positions.items():
                key = tuple(row[i] for i in at)
                previous = out[cols].get(key)
                out[cols][key] = previous + totals if previous else totals
        if () in out and not out[()]:
            out[()] = {(): Totals()}
        return out
    # GROUPING(a, b, …) has bit (width - 1 - i) set when column i is not in the row's set.
    by_mask = {sum(1 << (width - 1 - i) for i, c in enumerate(columns) if c not in cols): cols for cols in sets}
    table = (AccountHour if hourly else AccountDay)._meta.db_table
    select = ", ".join(columns)
    grouping = f"GROUPING({select})" if columns else "0"
    group_sets = ", ".join(f"({', '.join(cols)})" for cols in sets)
    sql = (f"SELECT {select + ', ' if columns else ''}{grouping}, {_SUMS_SQL} FROM {table}"
           f" WHERE account_id = %s AND {time_column} >= %s AND {time_column} < %s"
           f" GROUP BY GROUPING SETS ({group_sets})")
    bounds = (start, end) if hourly else (start.date(), end.date())
    with connection.cursor() as cursor:
        cursor.execute(sql, (account_id, *bounds))
        fetched = cursor.fetchall()
    # Tens of thousands of rows for the busiest account: no per-value work in Python.
    targets = {mask: (out[cols], _key_getter(positions[cols])) for mask, cols in by_mask.items()}
    make = Totals._make
    for row in fetched:
        target, key = targets[row[width]]
        target[key(row)] = make(row[width + 1:])
    if () in out and not out[()]:
        out[()] = {(): Totals()}
    return out



@account_cached
def usage_totals(*, account_id: int, period: TimeRange) -> tuple[Totals, Totals]:
    """The period's totals and the preceding period's, in one query."""
    previous = period.previous
    rows, column = _source(account_id, previous.start, period.end, hourly=not period.by_day)
    boundary = period.start if column == "hour" else period.start.date()
    row = rows.aggregate(**_sums("now_", Q(**{f"{column}__gte": boundary})),
                         **_sums("before_", Q(**{f"{column}__lt": boundary})))
    return Totals.of(row, "now_"), Totals.of(row, "before_")



def dimension_names(dimension: str, ids: Iterable[int], *, account_id: int) -> dict[int, str]:
    """Display names of model, key, provider or app ids (0 means none)."""
    wanted = {i for i in ids if i}
    names: dict[int, str] = {0: {"api_key": "(no key)", "app": "(no app)"}.get(dimension, "(none)")}
    if not wanted:
        return names
    if dimension == "model":
        names.update(Model.objects.filter(pk__in=wanted).values_list("pk", "slug"))
    elif dimension == "provider":
        names.update(Provider.objects.filter(pk__in=wanted).values_list("pk", "name"))
    elif dimension == "app":
        names.update((pk, name or origin) for pk, name, origin in
                     App.objects.filter(pk__in=wanted).values_list("pk", "name", "origin"))
    elif dimension == "api_key":
        names.update((pk, name or external) for pk, name, external in
                     ApiKey.objects.filter(pk__in=wanted, account_id=account_id)
                     .values_list("pk", "name", "external_id"))
    for missing in wanted - names.keys():
        names[missing] = f"#{missing}"
    return names


@dataclass(frozen=True)
class TopRow:
    id: int
    name: str
    totals: Totals
    share: float  # of the period's spend, or of its tokens when nothing was spent


def _top_rows(grouped: dict[tuple, Totals], dimension: str, *, account_id: int, limit: int) -> list[TopRow]:
    totals = [(key[0], t) for key, t in grouped.items()]
    totals.sort(key=lambda item: (-item[1].spend_units, -item[1].tokens, item[0]))
    spend = sum(t.spend_units for _, t in totals)
    tokens = sum(t.tokens for _, t in totals)
    names = dimension_names(dimension, (i for i, _ in totals[:limit]), account_id=account_id)
    return [TopRow(i, names[i], t, (t.spend_units / spend) if spend else (t.tokens / tokens if tokens else 0.0))
            for i, t in totals[:limit]]


def _bucket_labels(period: TimeRange, granularity: str) -> list[str]:
    if granularity == "hour":
        count = int((period.end - period.start) / timedelta(hours=1))
        return [f"{period.start + timedelta(hours=i):%Y-%m-%d %H:00}" for i in range(count)]
    days = [period.first_day + timedelta(days=i) for i in range((period.last_day - period.first_day).days + 1)]
    if granularity == "week":
        return list(dict.fromkeys(week_label(d) for d in days))
    return [d.isoformat() for d in days]


def week_label(day: date) -> str:
    return (day - timedelta(days=day.weekday())).isoformat()


def _bucket_of(value, granularity: str) -> str:
    if granularity == "hour":
        return f"{value.astimezone(UTC):%Y-%m-%d %H:00}"
    return week_label(value) if granularity == "week" else value.isoformat()


@dataclass(frozen=True)
class GroupRow:
    labels: tuple[str, ...]
    totals: Totals
    value: object
    share: float | None


@dataclass(frozen=True)
class Activity:
    period: TimeRange
    metric: str
    group_by: tuple[str, ...]
    granularity: str
    series: Series  # top groups per bucket, the rest as Others
    groups: list[GroupRow]  # every group over the whole period
    total: Totals

    @property
    def metric_label(self) -> str:
        return METRICS[self.metric][0]

    @property
    def additive(self) -> bool:
        return METRICS[self.metric][2] is None

    @property
    def group_labels(self) -> list[str]:
        return [DIMENSION_LABELS[d] for d in self.group_by]



@account_cached
def usage_activity(*, account_id: int, period: TimeRange, metric: str, group_by: tuple[str, ...],
                   granularity: str) -> Activity:
    """One metric per time bucket, grouped by up to two dimensions."""
    metric = metric if metric in METRICS else "spend"
    columns = tuple(DIMENSIONS[d] for d in group_by)
    hourly = granularity == "hour"
    time_column = "hour" if hourly else "day"
    # One pass: the cells (bucket x group), each group's totals and the whole period's.
    grouped = _grouped(account_id, period.start, period.end, hourly=hourly,
                       sets=[(time_column, *columns), columns, ()])
    cells: dict[tuple, dict[str, Totals]] = defaultdict(dict)
    bucket_of: dict = {}
    for key, totals in grouped[(time_column, *columns)].items():
        at, key = key[0], key[1:]
        bucket = bucket_of.get(at) or bucket_of.setdefault(at, _bucket_of(at, granularity))
        previous = cells[key].get(bucket)
        cells[key][bucket] = previous + totals if previous else totals
    names = [dimension_names(d, {key[i] for key in cells}, account_id=account_id) for i, d in enumerate(group_by)]
    group_totals = grouped[columns]
    total = grouped[()][()] if cells else Totals()
    additive = METRICS[metric][2] is None
    whole = total.value(metric) if additive else None

    def labels(key: tuple) -> tuple[str, ...]:
        return tuple(names[i][k] for i, k in enumerate(key)) or ("All",)

    def rank(key: tuple):
        value = group_totals[key].value(metric)
        return (-(value or 0), labels(key))

    ordered = sorted(cells, key=rank)
    groups = [GroupRow(labels(k), group_totals[k], group_totals[k].value(metric),
                       (group_totals[k].value(metric) / whole) if additive and whole else None) for k in ordered]
    periods = _bucket_labels(period, granularity)
    series: dict[str, list] = {}
    top, rest = ordered[:TOP_SERIES], ordered[TOP_SERIES:]
    for key in top:
        series[" · ".join(labels(key))] = [_chart_value(cells[key].get(p), metric) for p in periods]
    if rest:
        # Only the counters the metric reads are added up (the rest can be tens of thousands of cells).
        _, numerators, denominator = METRICS[metric]
        used = [COUNTERS.index(c) for c in (*numerators, *((denominator,) if denominator else ()))]
        merged = {p: [0] * len(COUNTERS) for p in periods}
        for key in rest:
            for p, totals in cells[key].items():
                counters = merged[p]
                for i in used:
                    counters[i] += totals[i]
        series["Others"] = [_chart_value(Totals._make(merged[p]), metric) for p in periods]
    return Activity(period=period, metric=metric, group_by=group_by, granularity=granularity,
                    series=Series(periods=periods, series=series), groups=groups, total=total)


def _chart_value(totals: Totals | None, metric: str):
    if totals is None:
        return 0 if METRICS[metric][2] is None else None
    value = totals.value(metric)
    return round(value, 1) if isinstance(value, float) else value


def _by_day_series(grouped: dict[tuple, Totals], period: TimeRange, *, account_id: int, top: int) -> tuple[Series, Series]:
    granularity = "hour" if not period.by_day else "day"
    spend: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    tokens: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    bucket_of: dict = {}
    for (at, model_id), totals in grouped.items():
        bucket = bucket_of.get(at) or bucket_of.setdefault(at, _bucket_of(at, granularity))
        spend[model_id][bucket] += totals.spend_units
        tokens[model_id][bucket] += totals.tokens
    periods = _bucket_labels(period, granularity)
    names = dimension_names("model", spend.keys(), account_id=account_id)

    def stacked(values: dict[int, dict[str, int]], to_value) -> Series:
        ordered = sorted(values, key=lambda m: (-sum(values[m].values()), names[m]))
        series = {names[m]: [to_value(values[m].get(p, 0)) for p in periods] for m in ordered[:top]}
        if len(ordered) > top:
            series["Others"] = [to_value(sum(values[m].get(p, 0) for m in ordered[top:])) for p in periods]
        return Series(periods=periods, series=series)

    return stacked(spend, units_to_usd), stacked(tokens, int)


def _by_day_set(period: TimeRange) -> tuple[str, str]:
    return ("day" if period.by_day else "hour", "model_id")


@dataclass(frozen=True)
class Overview:
    totals: Totals
    previous: Totals
    spend: Series  # per day (hour) by model
    tokens: Series
    tops: dict[str, list[TopRow]]  # dimension -> top rows


@account_cached
def usage_overview(*, account_id: int, period: TimeRange, top: int = 8) -> Overview:
    """What the overview shows: totals against the previous period, spend and tokens by model over
    time, and the top models, keys, apps and providers; two queries (one pass over the period's rows
    feeds the chart and the four tables) and one cache entry.
    """
    now, before = usage_totals(account_id=account_id, period=period)
    by_day = _by_day_set(period)
    sets = [by_day, *((DIMENSIONS[d],) for d in OVERVIEW_TOPS)]
    grouped = _grouped(account_id, period.start, period.end, hourly=not period.by_day, sets=sets)
    spend, tokens = _by_day_series(grouped[by_day], period, account_id=account_id, top=top)
    tops = {d: _top_rows(grouped[(DIMENSIONS[d],)], d, account_id=account_id, limit=top) for d in OVERVIEW_TOPS}
    return Overview(totals=now, previous=before, spend=spend, tokens=tokens, tops=tops)

