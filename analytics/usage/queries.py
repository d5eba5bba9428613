"""An account's own usage, read from the account rollups (AccountHour by hour, AccountDay by day, the
user and tag rollups) or, for slices crossing users or tags with other dimensions, its generations
(`sources`).

Every function takes the account id first and reads only that account's rows; each selector's
result is cached under the account's usage version (`cache.account_cached`). Days, weeks and months
are those of the period's zone (the account's): UTC ones come from AccountDay, any other zone's from
AccountHour, each hour on the local date it starts on (core.timerange).
"""
from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from django.db.models import Min, Q, Sum
from django.utils import timezone

from analytics.models import AccountDay, AccountHour
from billing.models import Account, ApiKey
from billing.selectors import spend_days
from core.charts import Series
from core.money import units_to_usd
from core.replica import read_connection
from core.timerange import TimeRange, hour_label, local_day, midnight, whole_hours, zone_named
from marketplace.models import App, Model, Provider

from . import savings, sources
from .cache import account_cached, usage_cached
from .filters import FILTER_COLUMNS, Filters
from .params import (
    DIMENSION_LABELS,
    DIMENSIONS,
    OVERVIEW_TOPS,
    TOP_DEFAULT,
    activity_granularity,
    period_parse,
)
from .totals import COUNTERS, METRICS, RATE_METRICS, Totals

NO_FILTERS = Filters()


def usage_prewarm(*, account_id: int, zone: tzinfo | None = None) -> None:
    """Compute and cache what the overview and the activity page show by default (in the account's zone,
    read when not given)."""
    if zone is None:
        zone = Account.objects.get(pk=account_id).zone
    period = period_parse(None, zone=zone)
    usage_overview(account_id=account_id, period=period)
    # Every argument as the activity view passes it: the cache key is made of them.
    usage_activity(account_id=account_id, period=period, metric="spend", group_by=(),
                   granularity=activity_granularity(period, None), filters=NO_FILTERS, top=TOP_DEFAULT,
                   cumulative=False)
    usage_filter_choices(account_id=account_id)
    forecast_days(account_id=account_id, zone=zone)
    savings.account_savings(account_id=account_id)


def account_zones(*, account_ids: Iterable[int]) -> dict[int, tzinfo]:
    """The time zones of these accounts, in one query."""
    return {pk: zone_named(name) for pk, name in Account.objects.filter(pk__in=list(account_ids))
            .values_list("pk", "time_zone")}


def forecast_days(*, account_id: int, now: datetime | None = None, zone: tzinfo = UTC) -> dict[date, int]:
    """The daily spend the overview's forecast reads (billing.selectors.spend_days), cached like the overview."""
    today = (now or timezone.now()).astimezone(zone).date()
    return usage_cached(account_id, f"spend-days:{today}:{getattr(zone, 'key', 'UTC')}",
                        lambda: spend_days(account_id=account_id, now=now, zone=zone))



def _source(account_id: int, start: datetime, end: datetime, *, hourly: bool):
    """Rollup rows of the account in [start, end) and the name of their time column."""
    if hourly:
        return AccountHour.objects.filter(account_id=account_id, hour__gte=start, hour__lt=end), "hour"
    return AccountDay.objects.filter(account_id=account_id, day__gte=start.date(), day__lt=end.date()), "day"


def _sums(prefix: str = "", condition: Q | None = None) -> dict:
    return {f"{prefix}{c}": Sum(c, filter=condition, default=0) for c in COUNTERS}




def _key_getter(positions: list[int]):
    """A function from a fetched row to the tuple of its values at `positions` (C speed where it can)."""
    if len(positions) > 1:
        return operator.itemgetter(*positions)
    if positions:
        at = positions[0]
        return lambda row: (row[at],)
    return lambda row: ()


def _grouped(account_id: int, start: datetime, end: datetime, *, hourly: bool, sets: Iterable[tuple[str, ...]],
             filters: Filters = NO_FILTERS, one_source: bool = False) -> dict[tuple[str, ...], dict[tuple, Totals]]:
    """The counters of the account's rows in [start, end), summed per each set of columns.

    Each set is read from the smallest rows that hold its columns and the filters' (`sources`): the
    overview's tables by model, key, app and provider from AccountDay, its top users from
    AccountUserDay, its tags from AccountTagDay; a set crossing users or tags with anything else
    from the generations. One query per source: one pass over its rows feeds every set (GROUPING
    SETS), summed by the database. Column names come from this module (DIMENSIONS and the time
    column), never from a request. `one_source`: every set from the rows that answer them all, so
    that nested sets (a view's cells, groups and total) count the same rows, also where the generation
    log no longer reaches (retention) and a rollup still does.
    """
    sets = list(dict.fromkeys(sets))
    filtered = [FILTER_COLUMNS[d] for d, _ in filters.items]
    by_source: dict[object, list[tuple[str, ...]]] = defaultdict(list)
    if one_source:
        by_source[None] = sets
    else:
        for cols in sets:
            source = sources.rollup_for((*cols, *filtered), hourly=hourly)
            if source is None and hourly and not set(cols) & sources.TIME_COLUMNS \
                    and sources.rollup_for((*cols, *filtered), hourly=False) is not None:
                source = "edges"  # users or tags alone over local days: whole UTC days from their rollup
            by_source[source].append(cols)
    out: dict[tuple[str, ...], dict[tuple, Totals]] = {}
    for source, source_sets in by_source.items():
        if source == "edges":
            out.update(_grouped_by_edges(account_id, start, end, sets=source_sets, filters=filters))
        else:
            out.update(_grouped_from(account_id, start, end, hourly=hourly, sets=source_sets, filters=filters))
    return out


def _grouped_by_edges(account_id: int, start: datetime, end: datetime, *, sets: list[tuple[str, ...]],
                      filters: Filters) -> dict[tuple[str, ...], dict[tuple, Totals]]:
    """Sets of users or of tags alone (no time column) over whole hours that are not whole UTC days (a
    zone's local days, the last 24 hours): the whole UTC days inside from the daily user or tag rollup,
    the hours before the first and after the last of them from the generations. Exact, and for the
    busiest account's month in New York 29 rollup days and a day of generations, not a month of them."""
    first = midnight((start - timedelta(microseconds=1)).astimezone(UTC).date() + timedelta(days=1))
    last = midnight(end.astimezone(UTC).date())
    if not first < last:
        return _grouped_from(account_id, start, end, hourly=True, sets=sets, filters=filters)
    filtered = [FILTER_COLUMNS[d] for d, _ in filters.items]
    by_rollup: dict[object, list[tuple[str, ...]]] = defaultdict(list)
    for cols in sets:  # users from theirs, tags from theirs
        by_rollup[sources.rollup_for((*cols, *filtered), hourly=False)].append(cols)
    parts = [_grouped_from(account_id, first, last, hourly=False, sets=rollup_sets, filters=filters)
             for rollup_sets in by_rollup.values()]
    parts += [_grouped_from(account_id, a, b, hourly=True, sets=sets, filters=filters)
              for a, b in ((start, first), (last, end)) if a < b]
    out: dict[tuple[str, ...], dict[tuple, Totals]] = {cols: {} for cols in sets}
    for part in parts:  # the edges' generations in one pass for users and tags together
        for cols, grouped in part.items():
            target = out[cols]
            for key, totals in grouped.items():
                previous = target.get(key)
                target[key] = previous + totals if previous else totals
    return out


def _grouped_from(account_id: int, start: datetime, end: datetime, *, hourly: bool,
                  sets: list[tuple[str, ...]], filters: Filters) -> dict[tuple[str, ...], dict[tuple, Totals]]:
    """`_grouped` for sets that one source answers."""
    columns = list(dict.fromkeys(c for cols in sets for c in cols))
    width = len(columns)
    positions = {cols: [columns.index(c) for c in cols] for cols in sets}
    out: dict[tuple[str, ...], dict[tuple, Totals]] = {cols: {} for cols in sets}
    rows = sources.account_rows(account_id, start, end, hourly=hourly,
                                columns=(*columns, *(FILTER_COLUMNS[d] for d, _ in filters.items)))
    condition, condition_params = filters.rollup_sql()
    select = ", ".join(columns)
    # GROUPING(a, b, …) has bit (width - 1 - i) set when column i is not in the row's set.
    by_mask = {sum(1 << (width - 1 - i) for i, c in enumerate(columns) if c not in cols): cols for cols in sets}
    grouping = f"GROUPING({select})" if columns else "0"
    group_sets = ", ".join(f"({', '.join(cols)})" for cols in sets)
    sql = (f"SELECT {select + ', ' if columns else ''}{grouping}, {rows.sums} {rows.sql}{condition}"
           f" GROUP BY GROUPING SETS ({group_sets})")
    with read_connection().cursor() as cursor:
        cursor.execute(sql, (*rows.params, *condition_params))
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
    rows, column = _source(account_id, previous.start, period.end, hourly=not period.daily_rollup)
    boundary = period.start if column == "hour" else period.start.date()
    row = rows.aggregate(**_sums("now_", Q(**{f"{column}__gte": boundary})),
                         **_sums("before_", Q(**{f"{column}__lt": boundary})))
    return Totals.of(row, "now_"), Totals.of(row, "before_")



NO_TEXT = {"user": "(no user)", "tag": "(no tag)"}


def tag_split(tags: str) -> list[str]:
    """The tags of a rollup row's ",a,b," text; [""] ("no tag") for none."""
    return tags.strip(",").split(",") if tags else [""]


def _fan_out(grouped: dict[tuple, Totals], at: int, keep: frozenset = frozenset()) -> dict[tuple, Totals]:
    """`grouped` with the tags text at position `at` of each key split into its tags: a row with tags
    a, b counts under a and under b (so these must never be summed into a total); only the tags in
    `keep` when it is not empty."""
    out: dict[tuple, Totals] = {}
    for key, totals in grouped.items():
        for tag in _tags_kept(key[at], keep):
            split = (*key[:at], tag, *key[at + 1:])
            previous = out.get(split)
            out[split] = previous + totals if previous else totals
    return out


def _tags_kept(tags: str, keep: frozenset) -> list[str]:
    split = tag_split(tags)
    return [tag for tag in split if tag in keep] if keep else split


def dimension_names(dimension: str, ids: Iterable, *, account_id: int) -> dict:
    """Display names of model, key, provider or app ids (0 means none); users and tags are their text."""
    if dimension in NO_TEXT:
        return {i: i or NO_TEXT[dimension] for i in ids}
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


# Buckets are the period's zone's: hours labelled in local time, days, weeks and months local dates.
def _bucket_labels(period: TimeRange, granularity: str) -> list[str]:
    if granularity == "hour":
        return [hour_label(hour, period.zone) for hour in whole_hours(period.start, period.end)]
    days = [date.fromordinal(n) for n in range(period.first_day.toordinal(), period.last_day.toordinal() + 1)]
    if granularity in ("week", "month"):
        return list(dict.fromkeys(_day_bucket(d, granularity) for d in days))
    return [d.isoformat() for d in days]


def week_label(day: date) -> str:
    return (day - timedelta(days=day.weekday())).isoformat()


def month_label(day: date) -> str:
    return f"{day:%Y-%m}"


def _day_bucket(day: date, granularity: str) -> str:
    if granularity == "week":
        return week_label(day)
    return month_label(day) if granularity == "month" else day.isoformat()


def _bucket_of(value: date | datetime, granularity: str, zone: tzinfo) -> str:
    """The bucket of a rollup row's day (AccountDay) or hour (AccountHour)."""
    if granularity == "hour":
        return hour_label(value, zone)
    return _day_bucket(local_day(value, zone) if isinstance(value, datetime) else value, granularity)


@dataclass(frozen=True)
class GroupRow:
    key: tuple | None  # the dimension values (ids, user or tag texts); None for "Other"
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
    filters: Filters
    top: int
    cumulative: bool
    series: Series  # the top groups per bucket (running sums when cumulative), the rest as Other
    buckets: list[tuple[tuple[str, ...], list[Totals]]]  # the same series as counters: labels, per bucket
    groups: list[GroupRow]  # the top groups over the whole period, then "Other" (the rest, summed once)
    group_count: int  # every group (a tag grouping counts each tag)
    total: Totals
    from_generations: bool = False  # summed from the account's generations: no rollup holds this slice

    @property
    def metric_label(self) -> str:
        return METRICS[self.metric][0]

    @property
    def additive(self) -> bool:
        return METRICS[self.metric][2] is None

    @property
    def group_labels(self) -> list[str]:
        return [DIMENSION_LABELS[d] for d in self.group_by]


def _running(values: list[Totals]) -> list[Totals]:
    out, running = [], Totals()
    for totals in values:
        running = running + totals
        out.append(running)
    return out


@account_cached
def usage_activity(*, account_id: int, period: TimeRange, metric: str, group_by: tuple[str, ...],
                   granularity: str, filters: Filters = NO_FILTERS, top: int = TOP_DEFAULT,
                   cumulative: bool = False) -> Activity:
    """One metric per time bucket (hour, day, week from Monday, calendar month) over the rows `filters`
    keeps, grouped by up to two dimensions: the top `top` groups and "Other", the exact sum of the rest.

    Grouped by tag, each row counts under each of its tags (of the tags filtered on, if any); "Other"
    then holds each request carrying any tag outside the top once, and the total is never a sum over tags. Cumulative series are running
    sums of the counters, so a ratio metric is the ratio of the running sums.
    """
    metric = metric if metric in METRICS else "spend"
    columns = tuple(DIMENSIONS[d] for d in group_by)
    hourly = granularity == "hour" or not period.daily_rollup
    time_column = "hour" if hourly else "day"
    zone = period.zone
    tag_at = group_by.index("tag") if "tag" in group_by else None
    # One pass: the cells (bucket x group), each group's, each bucket's and the whole period's totals.
    sets = [(time_column, *columns), columns, (time_column,), ()]
    grouped = _grouped(account_id, period.start, period.end, hourly=hourly, sets=sets, filters=filters,
                       one_source=True)
    raw_cells: dict[tuple, dict[str, Totals]] = defaultdict(dict)
    bucket_of: dict = {}
    for key, totals in grouped[(time_column, *columns)].items():
        at, key = key[0], key[1:]
        bucket = bucket_of.get(at) or bucket_of.setdefault(at, _bucket_of(at, granularity, zone))
        previous = raw_cells[key].get(bucket)
        raw_cells[key][bucket] = previous + totals if previous else totals
    group_totals = grouped[columns] if raw_cells else {}
    expand = None
    if tag_at is not None:
        # Filtered to some tags, the groups are those tags: a group's slice is then what its generation
        # log link names (tag=b), not "b among the requests tagged a", which no filter can say.
        keep = frozenset(filters.get("tag"))
        expansions = {key: [(*key[:tag_at], tag, *key[tag_at + 1:]) for tag in _tags_kept(key[tag_at], keep)]
                      for key in group_totals}
        expand = expansions.__getitem__
        group_totals = _fan_out(group_totals, tag_at, keep)
    names = [dimension_names(d, {key[i] for key in group_totals}, account_id=account_id)
             for i, d in enumerate(group_by)]
    total = grouped[()][()] if raw_cells else Totals()
    additive = METRICS[metric][2] is None
    whole = total.value(metric) if additive else None

    def labels(key: tuple) -> tuple[str, ...]:
        return tuple(names[i][k] for i, k in enumerate(key)) or ("All",)

    def rank(key: tuple):
        value = group_totals[key].value(metric)
        return (-(value or 0), labels(key))

    def row(key, labels_, totals) -> GroupRow:
        value = totals.value(metric)
        return GroupRow(key, labels_, totals, value, (value / whole) if additive and whole else None)

    ordered = sorted(group_totals, key=rank)
    shown, rest = ordered[:top], ordered[top:]
    periods = _bucket_labels(period, granularity)
    empty = Totals()
    buckets: list[tuple[tuple[str, ...], list[Totals]]] = []
    if expand is None:
        for key in shown:
            cell = raw_cells[key]
            buckets.append((labels(key), [cell.get(p, empty) for p in periods]))
    else:
        # A group is (…, tag, …): its cells are those of every tag set holding the tag.
        shown_cells: dict[tuple, dict[str, Totals]] = {key: {} for key in shown}
        for key, cell in raw_cells.items():
            for split in expand(key):
                target = shown_cells.get(split)
                if target is not None:
                    for p, totals in cell.items():
                        previous = target.get(p)
                        target[p] = previous + totals if previous else totals
        buckets = [(labels(key), [shown_cells[key].get(p, empty) for p in periods]) for key in shown]
    groups = [row(key, labels(key), group_totals[key]) for key in shown]
    if rest:
        if expand is None:
            # No overlap between groups: the rest is the whole less the groups shown (exact integers).
            per_bucket: dict[str, Totals] = {}
            for (at,), totals in grouped[(time_column,)].items():
                bucket = bucket_of.get(at) or bucket_of.setdefault(at, _bucket_of(at, granularity, zone))
                previous = per_bucket.get(bucket)
                per_bucket[bucket] = previous + totals if previous else totals
            other = [_minus(per_bucket.get(p, empty), [cells[i] for _, cells in buckets]) for i, p in enumerate(periods)]
            other_total = _minus(total, [g.totals for g in groups])
        else:
            # Tags overlap: each tag set with a tag outside the top counts once.
            rest_keys = set(rest)
            other_cells: dict[str, Totals] = {}
            other_total = Totals()
            for key, cell in raw_cells.items():
                if rest_keys.isdisjoint(expand(key)):
                    continue
                for p, totals in cell.items():
                    other_cells[p] = other_cells.get(p, empty) + totals
            for key, totals in grouped[columns].items():
                if not rest_keys.isdisjoint(expand(key)):
                    other_total = other_total + totals
            other = [other_cells.get(p, empty) for p in periods]
        # A user or a tag may be called "Other" itself: the rest then takes a name no group has.
        other_name = ("Other",) if all(name != ("Other",) for name, _ in buckets) else ("Other (the rest)",)
        buckets.append((other_name, other))
        groups.append(row(None, other_name, other_total))
    if cumulative:
        buckets = [(name, _running(values)) for name, values in buckets]
    series = {" · ".join(name): [_chart_value(t, metric) for t in values] for name, values in buckets}
    return Activity(period=period, metric=metric, group_by=group_by, granularity=granularity, filters=filters,
                    top=top, cumulative=cumulative, series=Series(periods=periods, series=series), buckets=buckets,
                    groups=groups, group_count=len(ordered), total=total,
                    from_generations=sources.rollup_for((*columns, *(FILTER_COLUMNS[d] for d, _ in filters.items)),
                                                        hourly=hourly) is None)


def _minus(whole: Totals, parts: list[Totals]) -> Totals:
    """`whole` less the sum of `parts` (disjoint parts of it): the rest, exactly."""
    return Totals._make([w - sum(column) for w, column in zip(whole, zip(*parts, strict=True), strict=True)]
                        if parts else whole)


def _chart_value(totals: Totals | None, metric: str):
    """A bucket's value on the chart: empty buckets are 0 for a sum, a gap for a ratio; rates in %."""
    if totals is None or not totals.requests:
        return 0 if METRICS[metric][2] is None else None
    value = totals.value(metric)
    if metric in RATE_METRICS and value is not None:
        return round(value * 100, 2)
    return round(value, 1) if isinstance(value, float) else value


def _by_day_series(grouped: dict[tuple, Totals], period: TimeRange, *, account_id: int, top: int) -> tuple[Series, Series]:
    granularity = "hour" if not period.by_day else "day"
    spend: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    tokens: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    bucket_of: dict = {}
    for (at, model_id), totals in grouped.items():
        bucket = bucket_of.get(at) or bucket_of.setdefault(at, _bucket_of(at, granularity, period.zone))
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
    grouped = _grouped(account_id, period.start, period.end, hourly=not period.daily_rollup, sets=sets)
    spend, tokens = _by_day_series(grouped[by_day], period, account_id=account_id, top=top)
    # Tags: the same pass grouped by tag set (an account has few), split here into tags.
    grouped[("tags",)] = _fan_out(grouped[("tags",)], 0)
    tops = {d: _top_rows(grouped[(DIMENSIONS[d],)], d, account_id=account_id, limit=top, whole=now)
            for d in OVERVIEW_TOPS}
    first_day = AccountDay.objects.filter(account_id=account_id).aggregate(first=Min("day"))["first"]
    return Overview(totals=now, previous=before, spend=spend, tokens=tokens, tops=tops, first_day=first_day)



def usage_filter_choices(*, account_id: int) -> dict[str, list[tuple[int, str]]]:
    """What the explorer's id filters offer: the models, providers, keys and apps of the account's rollups
    (0: no key, no app), by name; cached until the account's next chunk. Users and tags are typed."""
    dimensions = ("model", "provider", "api_key", "app")

    def compute() -> dict[str, list[tuple[int, str]]]:
        seen = (AccountDay.objects.filter(account_id=account_id).order_by()
                .values_list(*(DIMENSIONS[d] for d in dimensions)).distinct())
        ids = [set(column) for column in zip(*seen, strict=True)] or [set() for _ in dimensions]
        choices = {}
        for dimension, wanted in zip(dimensions, ids, strict=True):
            names = dimension_names(dimension, wanted, account_id=account_id)
            choices[dimension] = sorted(((i, names[i]) for i in wanted), key=lambda item: (item[1].lower(), item[0]))
        return choices
    return usage_cached(account_id, "filter_choices", compute)
