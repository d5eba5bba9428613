"""The rollups, declared once: every path that writes or reads them derives its SQL from `ROLLUPS`.

- ingestion's upserts (analytics.ingest.loader: one `INSERT … SELECT … GROUP BY key ON CONFLICT` each,
  in this order);
- repricing (analytics.repricing.services): the rollups carrying spend, moved by a per-row delta in
  this order, which is the loader's lock order;
- the account pages' choice of rows (analytics.usage.sources: the first account rollup, in this order,
  of the grain asked whose keys hold every dimension asked);
- the rollup property test (tests/analytics/ingest/test_rollup_property.py): every rollup fed one row
  per generation equals its generations summed by its own counters.

Adding a rollup is one entry here (and its model and migration). Every SQL expression is over rows
shaped like ingestion's staging rows (`ingest_stage`, analytics.counters): the loader's staging table,
repricing's changed rows, and `generation_rows_sql`, the stored generations in that shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from django.db import models

from analytics import models as m
from analytics.counters import ENDPOINT_SUMS, LATENCY_SUMS, USAGE_SUMS
from analytics.models import LONG_PROMPTS

# The generations' time columns as the rollups hold them: the UTC hour (aware) and the UTC date.
HOUR_SQL = "date_trunc('hour', {column}, 'UTC')"
DAY_SQL = "CAST({column} AT TIME ZONE 'UTC' AS date)"


def utc_hour_day_sql(column: str) -> tuple[str, str]:
    """SQL of the UTC hour and day a generation's `created_at` (`column`) counts in, as the rollups hold them."""
    return HOUR_SQL.format(column=column), DAY_SQL.format(column=column)


@dataclass(frozen=True, eq=False)
class Rollup:
    """One rollup table: what it groups by, which rows it counts, and what it adds up.

    `keys` are its unique key's columns, the time column (`grain`) among them. `where` filters the
    staging-shaped rows it counts. `source` is the loader's own FROM when it reads more than the
    staging rows (the endpoint rollups also count fallback attempts; the histogram, buckets):
    such a rollup is not one row per generation (`per_generation` False). `counters` maps each
    column to its SQL sum (analytics.counters); `spend` says it holds `spend_units` and the unpriced
    counters, which a reprice moves.
    """

    model: type[models.Model]
    keys: tuple[str, ...]
    counters: dict[str, str]
    grain: Literal["hour", "day"]
    spend: bool
    where: str = "1 = 1"
    source: str | None = None

    def __post_init__(self) -> None:
        if self.grain not in self.keys:
            raise ValueError(f"{self.table}: the grain {self.grain!r} is not among the keys {self.keys}")

    @property
    def account(self) -> bool:
        """Per account (its key starts with the account): the account pages may read it."""
        return self.keys[0] == "account_id"

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    @property
    def per_generation(self) -> bool:
        return self.source is None

    @property
    def dimensions(self) -> frozenset[str]:
        """The key columns other than the account and the time."""
        return frozenset(self.keys) - {"account_id", self.grain}

    @property
    def loader_source(self) -> str:
        """The FROM of the loader's upsert: the staging rows it counts."""
        if self.source is not None:
            return self.source
        return "ingest_stage" if self.where == "1 = 1" else f"ingest_stage WHERE {self.where}"


# Requests and the provider attempts of other providers (fallbacks) feed the endpoint rollups in
# one pass: an attempt row counts as an attempt only (request 0, no tokens, no latency).
_ENDPOINT_SOURCE = (
    "(SELECT hour, day, model_id, provider_id, 1 AS request, failed, tokens_prompt, tokens_completion,"
    " tokens_reasoning, tokens_cached, cost_units, is_byok, latency, own_attempts, own_failed, own_rate_limited,"
    " cost_source,"
    " CASE WHEN finish_reason = 'tool_calls' THEN 1 ELSE 0 END AS tool_call,"
    " COALESCE(num_media_prompt, 0) AS media,"
    f" CASE WHEN tokens_prompt > {LONG_PROMPTS[0]} THEN 1 ELSE 0 END AS long_32k,"
    f" CASE WHEN tokens_prompt > {LONG_PROMPTS[1]} THEN 1 ELSE 0 END AS long_128k"
    " FROM ingest_stage"
    " UNION ALL SELECT hour, day, model_id, provider_id, 0, 0, 0, 0, 0, 0, 0, FALSE, NULL, 1, failed, rate_limited,"
    " 0, 0, 0, 0, 0 FROM ingest_attempts) AS x")
_HISTOGRAM_SOURCE = (
    "(SELECT day, model_id, provider_id, 1 AS metric, latency_bucket AS bucket FROM ingest_stage"
    " WHERE latency_bucket IS NOT NULL UNION ALL"
    " SELECT day, model_id, provider_id, 2 AS metric, throughput_bucket AS bucket FROM ingest_stage"
    " WHERE throughput_bucket IS NOT NULL) AS x")
_ACCOUNT_SUMS = {**USAGE_SUMS, **LATENCY_SUMS}
_SLICE = ("model_id", "provider_id", "api_key_id", "app_id")

# In the loader's order, which is the lock order of every writer (the loader, repricing).
ROLLUPS: tuple[Rollup, ...] = (
    Rollup(m.EndpointHour, ("hour", "model_id", "provider_id"), ENDPOINT_SUMS, "hour", spend=True,
           source=_ENDPOINT_SOURCE),
    Rollup(m.EndpointDay, ("day", "model_id", "provider_id"), ENDPOINT_SUMS, "day", spend=True,
           source=_ENDPOINT_SOURCE),
    Rollup(m.EndpointHistogram, ("day", "model_id", "provider_id", "metric", "bucket"), {"count": "COUNT(*)"},
           "day", spend=False, source=_HISTOGRAM_SOURCE),
    Rollup(m.AppDay, ("day", "app_id", "model_id"), USAGE_SUMS, "day", spend=True, where="app_id <> 0"),
    Rollup(m.AccountDay, ("account_id", "day", *_SLICE), _ACCOUNT_SUMS, "day", spend=True),
    Rollup(m.AccountHour, ("account_id", "hour", *_SLICE), _ACCOUNT_SUMS, "hour", spend=True),
    # No row for requests without a user or tags: it would repeat AccountDay's totals (the readers
    # derive it from AccountDay, analytics.usage.sources).
    Rollup(m.AccountUserDay, ("account_id", "day", "end_user"), _ACCOUNT_SUMS, "day", spend=True,
           where="end_user <> ''"),
    Rollup(m.AccountTagDay, ("account_id", "day", "tags"), _ACCOUNT_SUMS, "day", spend=True, where="tags <> ''"),
)


def generation_rows_sql(where: str) -> str:
    """Stored generations `g` matching `where`, shaped as ingestion's staging rows (`hour`, `day`, `failed`,
    0 for none of key and app) under the rollups' key names: a rollup's counters add them up as the loader
    does, so they answer what the rollup would."""
    hour, day = utc_hour_day_sql("g.created_at")
    return (
        f"(SELECT g.account_id, {hour} AS hour, {day} AS day, g.model_id, g.provider_id,"
        " COALESCE(g.api_key_id, 0) AS api_key_id, COALESCE(g.app_id, 0) AS app_id, g.end_user, g.tags,"
        " CASE WHEN g.status >= 200 AND g.status < 300 THEN 0 ELSE 1 END AS failed, g.tokens_prompt,"
        " g.tokens_completion, g.tokens_reasoning, g.tokens_cached, g.cost_units, g.is_byok, g.cost_source, g.latency"
        f" FROM analytics_generation g WHERE {where})")
