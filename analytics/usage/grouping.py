"""The grouping engine of an account's usage: its counters summed per sets of columns in one pass.

Reads the account rollups (AccountHour by hour, AccountDay by day, the user and tag rollups) or, for
slices crossing users or tags with other dimensions, its generations (`sources`), one GROUPING SETS
query per source. Every function takes the account id first and reads only that account's rows.
The explorer (`explorer`) and the overview (`overview`) are built on it.
"""
from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db.models import Q, Sum

from analytics.models import AccountDay, AccountHour
from core.replica import read_connection
from core.timerange import midnight

from . import sources
from .filters import FILTER_COLUMNS, Filters
from .totals import COUNTERS, Totals

NO_FILTERS = Filters()



def rollup_rows(account_id: int, start: datetime, end: datetime, *, hourly: bool):
    """Rollup rows of the account in [start, end) and the name of their time column."""
    if hourly:
        return AccountHour.objects.filter(account_id=account_id, hour__gte=start, hour__lt=end), "hour"
    return AccountDay.objects.filter(account_id=account_id, day__gte=start.date(), day__lt=end.date()), "day"



def counter_sums(prefix: str = "", condition: Q | None = None) -> dict:
    return {f"{prefix}{c}": Sum(c, filter=condition, default=0) for c in COUNTERS}



def _key_getter(positions: list[int]):
    """A function from a fetched row to the tuple of its values at `positions` (C speed where it can)."""
    if len(positions) > 1:
        return operator.itemgetter(*positions)
    if positions:
        at = positions[0]
        return lambda row: (row[at],)
    return lambda row: ()



def grouped_sums(account_id: int, start: datetime, end: datetime, *, hourly: bool, sets: Iterable[tuple[str, ...]],
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
    """`grouped_sums` for sets that one source answers."""
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



def tag_split(tags: str) -> list[str]:
    """The tags of a rollup row's ",a,b," text; [""] ("no tag") for none."""
    return tags.strip(",").split(",") if tags else [""]



def tags_fan_out(grouped: dict[tuple, Totals], at: int, keep: frozenset = frozenset()) -> dict[tuple, Totals]:
    """`grouped` with the tags text at position `at` of each key split into its tags: a row with tags
    a, b counts under a and under b (so these must never be summed into a total); only the tags in
    `keep` when it is not empty."""
    out: dict[tuple, Totals] = {}
    for key, totals in grouped.items():
        for tag in tags_kept(key[at], keep):
            split = (*key[:at], tag, *key[at + 1:])
            previous = out.get(split)
            out[split] = previous + totals if previous else totals
    return out



def tags_kept(tags: str, keep: frozenset) -> list[str]:
    split = tag_split(tags)
    return [tag for tag in split if tag in keep] if keep else split

