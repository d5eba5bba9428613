"""Which rows answer a slice of an account's usage: a rollup when one holds every column the slice
names, else the account's own generations.

- AccountDay / AccountHour: by model, provider, API key and app (any of them together), by day or hour;
- AccountUserDay: by end user alone, by day; AccountTagDay: by tag set alone, by day. These two keep no
  row for requests without a user (tags): that row would repeat AccountDay's totals, a row per account
  and day for nothing. Read here as if they had it: per account and day, AccountDay's totals less the
  users' (tag sets') rows, integer sums, exact (`_with_empty_rows`);
- anything else (a user or a tag with another dimension, users with tags, either by the hour or in a
  zone whose days are not UTC days): the generation table, through its (account, created_at) index,
  summed by ingestion's own counter definitions (analytics.counters).

Users and tags are not rollup keys beside the other dimensions because at a router's density that
rollup is nearly a row per request (analytics migration 0014): summing the account's generations
then reads no more rows, and every other view reads a small table. Generations older than
GENERATION_RETENTION_MONTHS are gone (their months dropped), so a crossed slice reaches back as far
as the log does; the rollups, and slices they answer, go back to the first request.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from django.db import connection, models

from analytics import rollups
from analytics.counters import LATENCY_SUMS, USAGE_SUMS

from .totals import COUNTERS

TIME_COLUMNS = frozenset({"day", "hour"})
_GENERATION_SUMS = {**USAGE_SUMS, **LATENCY_SUMS}  # ingestion's own definitions (analytics.counters)


def rollup_for(columns: Iterable[str], *, hourly: bool) -> type[models.Model] | None:
    """The account rollup holding every one of `columns` (dimension columns; times are implied), or
    None when only the generation table does: the first, in analytics.rollups' order, of the grain."""
    rollup = _rollup_for(columns, hourly=hourly)
    return None if rollup is None else rollup.model


def _rollup_for(columns: Iterable[str], *, hourly: bool) -> rollups.Rollup | None:
    needed = set(columns) - TIME_COLUMNS
    grain = "hour" if hourly else "day"
    for rollup in rollups.ROLLUPS:
        if (rollup.account and (rollup.where == "1 = 1" or _left_out(rollup)) and rollup.grain == grain
                and needed <= rollup.dimensions):
            return rollup
    return None


def _left_out(rollup: rollups.Rollup) -> str | None:
    """The dimension whose empty value a rollup leaves out (`where` "<it> <> ''", its one dimension), else None."""
    if len(rollup.dimensions) != 1:
        return None
    [dimension] = rollup.dimensions
    return dimension if rollup.where == f"{dimension} <> ''" else None


def _whole(grain: str) -> rollups.Rollup:
    """The account rollup of `grain` that counts every row: the first in analytics.rollups' order."""
    return next(r for r in rollups.ROLLUPS if r.account and r.where == "1 = 1" and r.grain == grain)


def _with_empty_rows(rollup: rollups.Rollup, bounds: str) -> str:
    """The rollup's rows matching `bounds` (its account and time range, three parameters) as the rollup would
    hold them with the rows it leaves out: per account and time, the whole's totals less its rows', under the
    empty value. Integer sums: exact. `bounds` is used three times (its parameters thrice)."""
    dimension, time, whole = _left_out(rollup), rollup.grain, _whole(rollup.grain)
    counters = list(rollup.counters)
    plain = ", ".join(counters)
    negated = ", ".join(f"-{c}" for c in counters)
    summed = ", ".join(f"CAST(SUM({c}) AS BIGINT) AS {c}" for c in counters)
    return (f"(SELECT account_id, {time}, {dimension}, {plain} FROM {rollup.table} WHERE {bounds}"
            f" UNION ALL SELECT account_id, {time}, '' AS {dimension}, {summed} FROM"
            f" (SELECT account_id, {time}, {plain} FROM {whole.table} WHERE {bounds}"
            f" UNION ALL SELECT account_id, {time}, {negated} FROM {rollup.table} WHERE {bounds}) AS w"
            f" GROUP BY account_id, {time} HAVING SUM(requests) <> 0)")


def _generation_rows() -> str:
    """The account's generations shaped as ingestion's staging rows, under the rollups' key column names:
    `GENERATION_SUMS` adds them up as the loader does."""
    return rollups.generation_rows_sql("g.account_id = %s AND g.created_at >= %s AND g.created_at < %s")


class Rows(NamedTuple):
    """Rows of one account as SQL: `FROM {table} r … WHERE {where}` (joins may go between), with the
    parameters of both, and whether they are generations (summed per request) or a rollup's."""

    table: str
    where: str
    params: list
    generations: bool

    @property
    def sql(self) -> str:
        return f"FROM {self.table} r WHERE {self.where}"

    @property
    def sums(self) -> str:
        """Every counter (analytics.usage.totals.COUNTERS, in order) summed over these rows."""
        return self.sums_of(COUNTERS)

    def sums_of(self, counters) -> str:
        """The `counters` summed over these rows: a rollup's columns added up, generations counted as
        ingestion counts them into the rollups."""
        return ", ".join(f"COALESCE(CAST({_GENERATION_SUMS[c] if self.generations else f'SUM(r.{c})'} AS BIGINT), 0)"
                         for c in counters)


def account_rows(account_id: int, start: datetime, end: datetime, *, hourly: bool, columns: Iterable[str]) -> Rows:
    """The rows of the account in [start, end) that can answer `columns`, aliased `r`: the rollup's, or
    the generations' under the rollup's column names. `start` and `end` are whole hours (whole UTC days
    unless hourly)."""
    rollup = _rollup_for(columns, hourly=hourly)
    if rollup is None:
        moments = [connection.ops.adapt_datetimefield_value(m) for m in (start, end)]
        return Rows(_generation_rows(), "1 = 1", [account_id, *moments], True)
    time_column = "hour" if hourly else "day"
    if hourly:
        bounds = [connection.ops.adapt_datetimefield_value(m) for m in (start, end)]
    else:
        bounds = [connection.ops.adapt_datefield_value(m.date()) for m in (start, end)]
    if _left_out(rollup):
        where = f"account_id = %s AND {time_column} >= %s AND {time_column} < %s"
        return Rows(_with_empty_rows(rollup, where), "1 = 1", [account_id, *bounds] * 3, False)
    return Rows(rollup.table, f"r.account_id = %s AND r.{time_column} >= %s AND r.{time_column} < %s",
                [account_id, *bounds], False)
