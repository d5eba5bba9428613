"""Which rows answer a slice of an account's usage: a rollup when one holds every column the slice
names, else the account's own generations.

- AccountDay / AccountHour: by model, provider, API key and app (any of them together), by day or hour;
- AccountUserDay: by end user alone, by day; AccountTagDay: by tag set alone, by day;
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
    needed = set(columns) - TIME_COLUMNS
    grain = "hour" if hourly else "day"
    for rollup in rollups.ROLLUPS:
        if rollup.account and rollup.where == "1 = 1" and rollup.grain == grain and needed <= rollup.dimensions:
            return rollup.model
    return None


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
    model = rollup_for(columns, hourly=hourly)
    if model is None:
        moments = [connection.ops.adapt_datetimefield_value(m) for m in (start, end)]
        return Rows(_generation_rows(), "1 = 1", [account_id, *moments], True)
    time_column = "hour" if hourly else "day"
    if hourly:
        bounds = [connection.ops.adapt_datetimefield_value(m) for m in (start, end)]
    else:
        bounds = [connection.ops.adapt_datefield_value(m.date()) for m in (start, end)]
    return Rows(model._meta.db_table, f"r.account_id = %s AND r.{time_column} >= %s AND r.{time_column} < %s",
                [account_id, *bounds], False)
