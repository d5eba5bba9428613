"""The activity explorer: one metric per time bucket, grouped by up to two dimensions, top groups and
"Other", cached under the account's usage version (`cache.account_cached`)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from core.charts import Series
from core.timerange import TimeRange

from . import sources
from .buckets import bucket_label, bucket_labels
from .cache import account_cached
from .filters import FILTER_COLUMNS, Filters
from .grouping import NO_FILTERS, grouped_sums, tags_fan_out, tags_kept
from .names import dimension_names
from .params import DIMENSION_LABELS, DIMENSIONS, TOP_DEFAULT
from .totals import METRICS, RATE_METRICS, Totals


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
    grouped = grouped_sums(account_id, period.start, period.end, hourly=hourly, sets=sets, filters=filters,
                       one_source=True)
    raw_cells: dict[tuple, dict[str, Totals]] = defaultdict(dict)
    bucket_of: dict = {}
    for key, totals in grouped[(time_column, *columns)].items():
        at, key = key[0], key[1:]
        bucket = bucket_of.get(at) or bucket_of.setdefault(at, bucket_label(at, granularity, zone))
        previous = raw_cells[key].get(bucket)
        raw_cells[key][bucket] = previous + totals if previous else totals
    group_totals = grouped[columns] if raw_cells else {}
    expand = None
    if tag_at is not None:
        # Filtered to some tags, the groups are those tags: a group's slice is then what its generation
        # log link names (tag=b), not "b among the requests tagged a", which no filter can say.
        keep = frozenset(filters.get("tag"))
        expansions = {key: [(*key[:tag_at], tag, *key[tag_at + 1:]) for tag in tags_kept(key[tag_at], keep)]
                      for key in group_totals}
        expand = expansions.__getitem__
        group_totals = tags_fan_out(group_totals, tag_at, keep)
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
    periods = bucket_labels(period, granularity)
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
                bucket = bucket_of.get(at) or bucket_of.setdefault(at, bucket_label(at, granularity, zone))
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

