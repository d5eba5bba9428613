"""The usage counters of the account rollups, as one value type (`Totals`), and the comparisons of
two periods the overview shows. `COUNTERS` is the one list of them: `Totals`' fields, in order.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import NamedTuple

from core.money import units_to_usd
from core.numbers import Change

# metric -> (label, numerator counters, denominator counters or None for an additive metric); a
# denominator counter written "-c" is subtracted. A ratio is the ratio of the sums (exact integers until
# the one division), so a group's, a bucket's or a running sum's value is never a mean of means.
METRICS = {
    "spend": ("Spend (USD)", ("spend_units",), None),
    "tokens": ("Tokens", ("tokens_prompt", "tokens_completion"), None),
    "tokens_prompt": ("Prompt tokens", ("tokens_prompt",), None),
    "tokens_completion": ("Completion tokens", ("tokens_completion",), None),
    "tokens_reasoning": ("Reasoning tokens", ("tokens_reasoning",), None),
    "requests": ("Requests", ("requests",), None),
    "failures": ("Failed requests", ("failed",), None),
    "cost_per_million": ("Cost per 1M tokens (USD)", ("spend_units",),
                         ("tokens_prompt", "tokens_completion", "-byok_tokens", "-unpriced_tokens")),
    "cache_hit_rate": ("Cache-hit rate (%)", ("tokens_cached",), ("tokens_prompt",)),
    "failure_rate": ("Failure rate (%)", ("failed",), ("requests",)),
    "latency": ("Mean latency (ms)", ("latency_sum",), ("latency_count",)),
}
RATE_METRICS = ("cache_hit_rate", "failure_rate")  # shares, shown as percentages


def metric_counters(metric: str) -> tuple[str, ...]:
    """The counters a metric reads."""
    _, numerators, denominator = METRICS[metric]
    return (*numerators, *(c.lstrip("-") for c in denominator or ()))


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
    unpriced_requests: int = 0  # in requests and tokens, not in spend (no price to debit)
    unpriced_tokens: int = 0  # of the unpriced requests (not BYOK): out of a price per 1M, as their spend is
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
        """Average spend per 1M priced tokens (BYOK and unpriced tokens excluded, as their spend is)."""
        paid = self.tokens - self.byok_tokens - self.unpriced_tokens
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
        bottom = sum(-getattr(self, c[1:]) if c[0] == "-" else getattr(self, c) for c in denominator)
        if bottom <= 0:
            return None
        if metric == "cost_per_million":
            return units_to_usd(top * 1_000_000 // bottom)  # as cost_per_million_units
        return top / bottom



COUNTERS = Totals._fields  # the rollups' column names (analytics.models.AccountDay and AccountHour)
REPORT_COUNTERS = tuple(c for c in COUNTERS if not c.startswith("latency_") and c != "unpriced_tokens")  # usage.csv


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
    covered_days: int | None = None  # of the previous period, the days with the account's traffic behind them
    window_days: int | None = None

    @property
    def change(self) -> Change:
        return Change(_change(self.value, self.previous), self.covered_days, self.window_days)


def comparisons(now: Totals, before: Totals, *, covered_days: int | None = None,
                window_days: int | None = None) -> list[Comparison]:
    """The overview's figures against the previous period, which traffic may cover only in part."""
    return [replace(c, covered_days=covered_days, window_days=window_days) for c in _comparisons(now, before)]


def _comparisons(now: Totals, before: Totals) -> list[Comparison]:
    return [
        Comparison("Spend", "spend", now.spend_units, before.spend_units, "usd"),
        Comparison("Tokens", "tokens", now.tokens, before.tokens, "int"),
        Comparison("Requests", "requests", now.requests, before.requests, "int"),
        Comparison("Cost per 1M tokens", "cost_per_million", now.cost_per_million_units,
                   before.cost_per_million_units, "usd"),
        Comparison("Cache hits", "cache_hit_share", now.cache_hit_share, before.cache_hit_share, "percent"),
    ]

