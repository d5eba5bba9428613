"""An account's own usage, read from the account rollups: AccountHour by hour, AccountDay by day.

Every function takes the account id first and reads only that account's rows. Periods are UTC:
`24h` is the last 24 whole hours (the current one included), `7d`/`30d`/`90d` are whole UTC days
(today included), `custom` is an inclusive range of dates. Each period compares with the
preceding period of the same length.
"""
from __future__ import annotations

import functools
import operator
import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from time import time_ns
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Q, Sum
from django.utils import timezone

from billing.models import ApiKey
from core.money import units_text, units_to_usd
from core.params import ParamError, date_param
from marketplace.models import App, Model, Provider

from .models import AccountDay, AccountHour
from .rankings import Series

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30),
           "90d": timedelta(days=90)}
PERIOD_LABELS = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days",
                 "custom": "Custom range"}
MAX_CUSTOM_DAYS = 400
DIMENSIONS = {"model": "model_id", "api_key": "api_key_id", "provider": "provider_id", "app": "app_id"}
DIMENSION_LABELS = {"model": "Model", "api_key": "API key", "provider": "Provider", "app": "App"}
OVERVIEW_TOPS = ("model", "api_key", "app", "provider")  # the overview's tables, in page order
COUNTERS = ("requests", "failed", "tokens_prompt", "tokens_completion", "tokens_reasoning", "tokens_cached",
            "byok_tokens", "spend_units", "latency_sum", "latency_count")
# metric -> (label, numerator counters, denominator counter or None)
METRICS = {
    "spend": ("Spend (USD)", ("spend_units",), None),
    "tokens": ("Tokens", ("tokens_prompt", "tokens_completion"), None),
    "tokens_prompt": ("Prompt tokens", ("tokens_prompt",), None),
    "tokens_completion": ("Completion tokens", ("tokens_completion",), None),
    "tokens_reasoning": ("Reasoning tokens", ("tokens_reasoning",), None),
    "requests": ("Requests", ("requests",), None),
    "failures": ("Failed requests", ("failed",), None),
    "latency": ("Mean latency (ms)", ("latency_sum",), "latency_count"),
}
GRANULARITIES = ("hour", "day", "week")
MAX_HOURLY_DAYS = 31
TOP_SERIES = 10
CACHE_SECONDS = 3600  # keyed by the account's usage version, which ingestion moves while it is watched
REFRESH_SECONDS = 60  # the version moves at most once a minute per account
# A catch-up mark counts for less than its task's countdown (REFRESH_SECONDS + 1): a chunk that
# saw the mark commits before the task runs, even with the machines' clocks a few seconds apart.
PENDING_SECONDS = REFRESH_SECONDS - 10
VERSION_SECONDS = 24 * 3600  # longer than any page it keys; a lost version is simply made anew


def _version_key(account_id: int) -> str:
    return f"usage:version:{account_id}"


def _pending_key(account_id: int) -> str:
    return f"usage:pending:{account_id}"


def _watched_key(account_id: int) -> str:
    return f"usage:watched:{account_id}"


def _version_new(moved_at_ms: int) -> str:
    """A version never used before: when it moved (ms since the epoch, hex) and 64 random bits."""
    return f"{moved_at_ms:x}.{secrets.token_hex(8)}"


def _version_moved_at_ms(version) -> int:
    """When a version moved; 0 (long ago) for none, one a page made, or one of an older form."""
    try:
        return int(str(version).split(".", 1)[0], 16)
    except ValueError:
        return 0


def usage_version(account_id: int) -> str:
    """The account's usage version; a missing one (no chunk yet, or evicted) is made anew, never reused.

    A page makes it as moved "long ago", so the next chunk of the account moves it at once.
    """
    key = _version_key(account_id)
    version = cache.get(key)
    if version is None:
        fresh = _version_new(0)
        version = fresh if cache.add(key, fresh, VERSION_SECONDS) else cache.get(key, fresh)
    return str(version)


def usage_watch(*, account_id: int) -> None:
    """Note that someone looks at the account's usage pages (call before reading them): its chunks move
    its version and prewarm the pages for the next USAGE_WATCH_SECONDS.

    Chunks move the version of watched accounts only, so a page cached while the account was watched
    (a prewarm shortly before the mark expired, say) may have missed chunks that came after the
    mark expired. Hence a view that finds the account unwatched starts a new version (as moved "long
    ago": the next chunk moves it at once) in the same write as the mark, one MSET on Redis: whoever
    sees the mark afterwards sees that version or a later one, and whatever was cached before under
    an earlier version is never read again. A view that finds the mark refreshes its time to live in
    the same command (`touch`, EXPIRE on Redis), so the mark never lapses between finding it and
    reading the pages it keeps up to date; the version stays.
    """
    mark = _watched_key(account_id)
    if cache.touch(mark, settings.USAGE_WATCH_SECONDS):
        return
    # The version's time to live is the mark's: once both expire, the next view starts a new one
    # anyway, and the next chunk of a watched account writes it for VERSION_SECONDS.
    cache.set_many({mark: 1, _version_key(account_id): _version_new(0)}, settings.USAGE_WATCH_SECONDS)


def usage_refresh(*, account_ids: Iterable[int], catch_up: bool = False) -> None:
    """After a chunk committed: move the usage versions of its watched accounts (each at most once a
    minute) and prewarm their pages.

    Only watched accounts (`usage_watch`) have cached pages worth keeping up to date: an unwatched
    account's version is left alone, since its next view starts a new one (`usage_watch`) and so
    computes its pages afresh. At a router's cardinality a chunk touches tens of thousands of
    accounts, a few of them watched; an unwatched one costs one key of one `get_many` and nothing
    else. At most three cache round trips whatever the number of accounts: one `get_many` of the
    watch marks, then, if any account is watched, one `get_many` of the watched accounts' version
    and catch-up marks and one `set_many` of their new versions (one new token for the whole
    refresh) and catch-up marks. A watched account whose version moved less than a minute ago is
    left to one catch-up task a minute later, shared by all such accounts of the refresh and not
    queued for an account that already waits for one (its mark), so watched pages are at most about
    a minute stale and no chunk is left out; the catch-up run itself (`catch_up`) ignores marks, so
    it always moves or passes on each of its accounts that are still watched (one that is no longer
    watched needs nothing: its next view starts a new version).
    (The demo's FileBasedCache makes `get_many`/`set_many` a loop of file reads and writes:
    fine for its dozen accounts; RedisCache sends each as one command or one pipeline.)
    """
    from . import tasks

    ids = sorted(set(account_ids))
    if not ids:
        return
    marks = cache.get_many([_watched_key(i) for i in ids])
    if not marks:
        return
    watched = [i for i in ids if _watched_key(i) in marks]
    now_ms = time_ns() // 1_000_000
    found = cache.get_many([k for i in watched for k in (_version_key(i), _pending_key(i))])
    due, later = [], []
    for i in watched:
        if _version_moved_at_ms(found.get(_version_key(i))) <= now_ms - REFRESH_SECONDS * 1000:
            due.append(i)
        elif catch_up or int(found.get(_pending_key(i)) or 0) <= now_ms:
            later.append(i)
    writes = dict.fromkeys(map(_version_key, due), _version_new(now_ms))
    if later:
        # Queued before its marks are written, so that no mark exists without its task.
        tasks.usage_refresh_later.apply_async(args=[later], countdown=REFRESH_SECONDS + 1)
        writes.update(dict.fromkeys(map(_pending_key, later), now_ms + PENDING_SECONDS * 1000))
    if writes:
        cache.set_many(writes, VERSION_SECONDS)
    if due:  # after the new versions are written: the prewarm fills the pages they key
        tasks.usage_prewarm.delay(due)


def usage_prewarm(*, account_id: int) -> None:
    """Compute and cache what the overview and the activity page show by default."""
    period = period_parse(None)
    usage_overview(account_id=account_id, period=period)
    usage_activity(account_id=account_id, period=period, metric="spend", group_by=(),
                   granularity=activity_granularity(period, None))


def _account_cached(func):
    """Cache a selector's result per account, period and arguments, until the account's next chunk."""
    @functools.wraps(func)
    def wrapper(*, account_id: int, period: Period, **kwargs):
        arguments = ":".join(f"{k}={'+'.join(v) if isinstance(v, tuple) else v}" for k, v in sorted(kwargs.items()))
        key = f"{func.__name__}:{period.key}:{arguments}"
        return _cached(account_id, key, lambda: func(account_id=account_id, period=period, **kwargs))
    return wrapper


def _cached(account_id: int, key: str, compute):
    """An account's computed usage, cached under its usage version: until its next ingested chunk while
    watched, or its next view once it is no longer watched (`usage_watch`, `usage_refresh`)."""
    full = f"usage:{account_id}:{usage_version(account_id)}:{key}"
    value = cache.get(full)
    if value is None:
        value = compute()
        cache.set(full, value, CACHE_SECONDS)
    return value


@dataclass(frozen=True)
class Period:
    name: str
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC
    by_day: bool  # whole UTC days: the daily rollup can answer

    @property
    def label(self) -> str:
        if self.name == "custom":
            return f"{self.start:%Y-%m-%d} to {self.end - timedelta(days=1):%Y-%m-%d}"
        return PERIOD_LABELS[self.name]

    @property
    def key(self) -> str:
        return f"{self.start:%Y%m%d%H}-{self.end:%Y%m%d%H}"

    @property
    def previous(self) -> Period:
        return Period(self.name, self.start - (self.end - self.start), self.start, self.by_day)

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        """The last day the period touches (inclusive)."""
        return (self.end - timedelta(microseconds=1)).date()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def period_parse(name: str | None, *, start: str | None = None, end: str | None = None,
                 now: datetime | None = None) -> Period:
    """A period from the query string; an unknown name means the last 30 days.

    A custom range with missing, invalid or out-of-range dates, reversed or longer than
    MAX_CUSTOM_DAYS raises ParamError (pages show it and fall back to `period_parse(None)`).
    """
    now = (now or timezone.now()).astimezone(UTC)
    if name == "custom":
        first, last = date_param(start), date_param(end)
        if not first or not last:
            raise ParamError("Choose both a start and an end date for a custom range.")
        if first > last:
            raise ParamError("The start of a custom range must be on or before its end.")
        if (last - first).days >= MAX_CUSTOM_DAYS:
            raise ParamError(f"A custom range covers at most {MAX_CUSTOM_DAYS} days.")
        return Period("custom", _midnight(first), _midnight(last + timedelta(days=1)), True)
    if name == "24h":
        end_at = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        return Period("24h", end_at - PERIODS["24h"], end_at, False)
    name = name if name in PERIODS else "30d"
    end_at = _midnight(now.date() + timedelta(days=1))
    return Period(name, end_at - PERIODS[name], end_at, True)


def date_range_parse(start: str | None, end: str | None, *, default_days: int = 30,
                     now: datetime | None = None) -> tuple[date, date]:
    """An inclusive range of dates for reports: a missing end is today, a missing start N days before
    it, reversed values are swapped; an invalid or out-of-range date raises ParamError."""
    today = (now or timezone.now()).astimezone(UTC).date()
    last = date_param(end) or today
    first = date_param(start) or last - timedelta(days=default_days - 1)
    if first > last:
        first, last = last, first
    return first, last


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


class Totals(NamedTuple):
    """The rollup counters of some rows; `+` adds them (a NamedTuple: this sits in hot loops)."""

    requests: int = 0
    failed: int = 0
    tokens_prompt: int = 0
    tokens_completion: int = 0
    tokens_reasoning: int = 0
    tokens_cached: int = 0
    byok_tokens: int = 0
    spend_units: int = 0
    latency_sum: int = 0
    latency_count: int = 0

    @classmethod
    def of(cls, row: dict, prefix: str = "") -> Totals:
        return cls._make([int(row[prefix + c] or 0) for c in COUNTERS])

    def __add__(self, other: Totals) -> Totals:  # type: ignore[override]
        return Totals._make(map(operator.add, self, other))

    @property
    def tokens(self) -> int:
        return self.tokens_prompt + self.tokens_completion

    @property
    def spend(self) -> Decimal:
        return units_to_usd(self.spend_units)

    @property
    def cost_per_million_units(self) -> int | None:
        """Average spend per 1M tokens (BYOK tokens excluded, as their spend is)."""
        paid = self.tokens - self.byok_tokens
        return self.spend_units * 1_000_000 // paid if paid > 0 else None

    @property
    def cache_hit_share(self) -> float | None:
        return self.tokens_cached / self.tokens_prompt if self.tokens_prompt else None

    @property
    def failure_share(self) -> float | None:
        return self.failed / self.requests if self.requests else None

    @property
    def mean_latency_ms(self) -> float | None:
        return self.latency_sum / self.latency_count if self.latency_count else None

    def value(self, metric: str) -> Decimal | float | int | None:
        _, numerators, denominator = METRICS[metric]
        top = sum(getattr(self, c) for c in numerators)
        if metric == "spend":
            return units_to_usd(top)
        if denominator is None:
            return top
        bottom = getattr(self, denominator)
        return top / bottom if bottom else None


def _change(now: int | float | None, before: int | float | None) -> float | None:
    if now is None or not before:
        return None
    return (now - before) / before


@dataclass(frozen=True)
class Comparison:
    label: str
    key: str
    value: object
    previous: object
    kind: str  # usd | int | percent | usd_per_million | money

    @property
    def change(self) -> float | None:
        return _change(self.value, self.previous)


@_account_cached
def usage_totals(*, account_id: int, period: Period) -> tuple[Totals, Totals]:
    """The period's totals and the preceding period's, in one query."""
    previous = period.previous
    rows, column = _source(account_id, previous.start, period.end, hourly=not period.by_day)
    boundary = period.start if column == "hour" else period.start.date()
    row = rows.aggregate(**_sums("now_", Q(**{f"{column}__gte": boundary})),
                         **_sums("before_", Q(**{f"{column}__lt": boundary})))
    return Totals.of(row, "now_"), Totals.of(row, "before_")


def comparisons(now: Totals, before: Totals) -> list[Comparison]:
    return [
        Comparison("Spend", "spend", now.spend_units, before.spend_units, "usd"),
        Comparison("Tokens", "tokens", now.tokens, before.tokens, "int"),
        Comparison("Requests", "requests", now.requests, before.requests, "int"),
        Comparison("Cost per 1M tokens", "cost_per_million", now.cost_per_million_units,
                   before.cost_per_million_units, "usd"),
        Comparison("Cache hits", "cache_hit_share", now.cache_hit_share, before.cache_hit_share, "percent"),
    ]


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


def _bucket_labels(period: Period, granularity: str) -> list[str]:
    if granularity == "hour":
        count = int((period.end - period.start) / timedelta(hours=1))
        return [f"{period.start + timedelta(hours=i):%Y-%m-%d %H:00}" for i in range(count)]
    days = [period.first_day + timedelta(days=i) for i in range((period.last_day - period.first_day).days + 1)]
    if granularity == "week":
        return list(dict.fromkeys(_week_label(d) for d in days))
    return [d.isoformat() for d in days]


def _week_label(day: date) -> str:
    return (day - timedelta(days=day.weekday())).isoformat()


def _bucket_of(value, granularity: str) -> str:
    if granularity == "hour":
        return f"{value.astimezone(UTC):%Y-%m-%d %H:00}"
    return _week_label(value) if granularity == "week" else value.isoformat()


@dataclass(frozen=True)
class GroupRow:
    labels: tuple[str, ...]
    totals: Totals
    value: object
    share: float | None


@dataclass(frozen=True)
class Activity:
    period: Period
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


def activity_granularity(period: Period, granularity: str | None) -> str:
    """Hourly buckets only for periods up to a month; a day otherwise."""
    granularity = granularity if granularity in GRANULARITIES else ("hour" if not period.by_day else "day")
    if granularity == "hour" and period.end - period.start > timedelta(days=MAX_HOURLY_DAYS):
        return "day"
    return granularity


def group_by_parse(values: Iterable[str]) -> tuple[str, ...]:
    """Up to two distinct dimensions, in the order given."""
    return tuple(dict.fromkeys(v for v in values if v in DIMENSIONS))[:2]


@_account_cached
def usage_activity(*, account_id: int, period: Period, metric: str, group_by: tuple[str, ...],
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


def _by_day_series(grouped: dict[tuple, Totals], period: Period, *, account_id: int, top: int) -> tuple[Series, Series]:
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


def _by_day_set(period: Period) -> tuple[str, str]:
    return ("day" if period.by_day else "hour", "model_id")


@dataclass(frozen=True)
class Overview:
    totals: Totals
    previous: Totals
    spend: Series  # per day (hour) by model
    tokens: Series
    tops: dict[str, list[TopRow]]  # dimension -> top rows


@_account_cached
def usage_overview(*, account_id: int, period: Period, top: int = 8) -> Overview:
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


# --- usage.csv -------------------------------------------------------------------------------

REPORT_GROUPS = ("day", "week", "month", "model", "api_key", "provider", "app")
REPORT_DEFAULT = ("day", "model", "api_key")
USAGE_CSV_COUNTERS = ("requests", "failures", "tokens_prompt", "tokens_completion", "tokens_reasoning",
                      "tokens_cached", "tokens_total", "byok_tokens", "spend_usd")


def report_groups_parse(value: str | None) -> tuple[str, ...]:
    """`group_by` of usage.csv: a comma list of REPORT_GROUPS (at most one time grouping)."""
    chosen = [v.strip() for v in (value or "").split(",") if v.strip() in REPORT_GROUPS]
    times = [v for v in chosen if v in ("day", "week", "month")]
    chosen = [v for v in chosen if v not in ("day", "week", "month") or v == (times[0] if times else None)]
    return tuple(dict.fromkeys(chosen)) or REPORT_DEFAULT


def usage_csv_header(group_by: tuple[str, ...]) -> list[str]:
    header = []
    for group in group_by:
        header += {"day": ["date"], "week": ["week"], "month": ["month"], "model": ["model"],
                   "api_key": ["api_key", "api_key_name"], "provider": ["provider"], "app": ["app", "app_origin"]}[group]
    return header + list(USAGE_CSV_COUNTERS)


def _period_label(day: date, group: str) -> str:
    if group == "week":
        return _week_label(day)
    if group == "month":
        return f"{day:%Y-%m}"
    return day.isoformat()


# group -> (SQL columns selected and grouped, the matching CSV columns); the joins give names.
_REPORT_SQL = {
    "day": (("r.day",), ("date",)),
    "week": (("r.day",), ("week",)),
    "month": (("r.day",), ("month",)),
    "model": (("m.slug",), ("model",)),
    "api_key": (("k.external_id", "k.name"), ("api_key", "api_key_name")),
    "provider": (("p.slug",), ("provider",)),
    "app": (("a.name", "a.origin"), ("app", "app_origin")),
}
_REPORT_SUMS = ", ".join(f"CAST(SUM(r.{c}) AS BIGINT)" for c in (
    "requests", "failed", "tokens_prompt", "tokens_completion", "tokens_reasoning", "tokens_cached", "byok_tokens",
    "spend_units"))
_REPORT_FROM = (
    "FROM analytics_accountday r JOIN marketplace_model m ON m.id = r.model_id"
    " JOIN marketplace_provider p ON p.id = r.provider_id"
    " LEFT JOIN billing_apikey k ON k.id = r.api_key_id AND k.account_id = r.account_id"
    " LEFT JOIN marketplace_app a ON a.id = r.app_id"
    " WHERE r.account_id = %s AND r.day >= %s AND r.day <= %s")


def usage_report(*, account_id: int, first: date, last: date, group_by: tuple[str, ...]) -> list[list]:
    """Rows of usage.csv (and the usage API), in `usage_csv_header` order, sorted by the group columns.

    Totals per group over an inclusive range of UTC dates, from the daily account rollup; one
    grouped query that joins the names, so a month of the busiest account is a single scan.
    Without a grouping column the one row is the range's total.
    """
    columns = [c for group in group_by for c in _REPORT_SQL[group][0]]
    select = ", ".join(columns)
    sql = f"SELECT {select}, {_REPORT_SUMS} {_REPORT_FROM} GROUP BY {select}"
    with connection.cursor() as cursor:
        cursor.execute(sql, (account_id, first, last))
        fetched = cursor.fetchall()
    width = len(columns)
    time_group = next((g for g in group_by if g in ("day", "week", "month")), None)
    day_at = columns.index("r.day") if time_group else None
    merged: dict[tuple, list[int]] = {}
    for row in fetched:
        key = list(row[:width])
        if day_at is not None:
            day = key[day_at]
            day = date.fromisoformat(day) if isinstance(day, str) else day
            key[day_at] = _period_label(day, time_group)
        key = tuple("" if v is None else v for v in key)
        counts = [int(v or 0) for v in row[width:]]
        if key in merged:  # weeks and months fold several days into one row
            merged[key] = [a + b for a, b in zip(merged[key], counts, strict=True)]
        else:
            merged[key] = counts
    out = []
    for key in sorted(merged):  # in Python: the same order on every database
        requests, failed, prompt, completion, reasoning, cached, byok, spend = merged[key]
        out.append([*key, requests, failed, prompt, completion, reasoning, cached, prompt + completion, byok,
                    units_text(spend)])
    return out
