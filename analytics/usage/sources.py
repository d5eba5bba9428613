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

from analytics.counters import LATENCY_SUMS, USAGE_SUMS
from analytics.models import AccountDay, AccountHour, AccountTagDay, AccountUserDay

from .totals import COUNTERS

SLICE_COLUMNS = frozenset({"model_id", "provider_id", "api_key_id", "app_id"})
TIME_COLUMNS = frozenset({"day", "hour"})
_GENERATION_SUMS = {**USAGE_SUMS, **LATENCY_SUMS}  # ingestion's own definitions (analytics.counters)


def rollup_for(columns: Iterable[str], *, hourly: bool) -> type[models.Model] | None:
    """The account rollup holding every one of `columns` (dimension columns; times are implied), or
    None when only the generation table does."""
    needed = set(columns) - TIME_COLUMNS
    if needed <= SLICE_COLUMNS:
        return AccountHour if hourly else AccountDay
    if hourly:
        return None
    if needed <= {"end_user"}:
        return AccountUserDay
    if needed <= {"tags"}:
        return AccountTagDay
    return None


def utc_hour_day_sql(column: str) -> tuple[str, str]:
    """SQL of the UTC hour and day a generation's `created_at` (`column`) counts in, as the rollups hold
    them: aware hours and dates."""
    return f"date_trunc('hour', {column}, 'UTC')", f"CAST({column} AT TIME ZONE 'UTC' AS date)"


def _generation_rows() -> str:
    """The account's generations shaped as ingestion's staging rows (`failed`, 0 for none of key and app),
    under the rollups' key column names: `GENERATION_SUMS` adds them up as the loader does."""
    hour, day = utc_hour_day_sql("g.created_at")
    return (
        f"(SELECT g.account_id, {hour} AS hour, {day} AS day, g.model_id, g.provider_id,"
        " COALESCE(g.api_key_id, 0) AS api_key_id, COALESCE(g.app_id, 0) AS app_id, g.end_user, g.tags,"
        " CASE WHEN g.status >= 200 AND g.status < 300 THEN 0 ELSE 1 END AS failed, g.tokens_prompt,"
        " g.tokens_completion, g.tokens_reasoning, g.tokens_cached, g.cost_units, g.is_byok, g.cost_source, g.latency"
        " FROM analytics_generation g WHERE g.account_id = %s AND g.created_at >= %s AND g.created_at < %s)")


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
