"""Which catalog prices were already used for billing: the question the catalog asks of generations.

A price is used for billing when a catalog-priced generation of its endpoint (model and provider)
was created inside the price's interval. The generations live in analytics, which the catalog never
imports (import-linter's layers), so the app that keeps them answers: it registers one counter with
`price_use_counter_register` in its AppConfig.ready (analytics.catalog_use). Without a counter,
`price_use_count` refuses to answer rather than guess that nothing was billed.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True, slots=True)
class PriceInterval:
    """[start, end) of one endpoint's price; start None: since ever, end None: still in force."""

    model_id: int
    provider_id: int
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True, slots=True)
class PriceUse:
    requests: int
    first: datetime
    last: datetime


PriceUseCounter = Callable[[Sequence[PriceInterval]], dict[int, PriceUse]]
_counter: PriceUseCounter | None = None


def price_use_counter_register(counter: PriceUseCounter) -> None:
    """Install the counter of catalog-priced generations (one per process; the last one wins)."""
    global _counter
    _counter = counter


def price_use_count(*, intervals: Sequence[PriceInterval]) -> dict[int, PriceUse]:
    """Catalog-priced requests per interval, by the interval's index; intervals no request used are absent.

    The intervals of one endpoint must not overlap (a request counts in one of them).
    """
    if not intervals:
        return {}
    if _counter is None:
        raise ImproperlyConfigured("no counter of billed generations is registered "
                                   "(marketplace.price_use.price_use_counter_register)")
    return _counter(intervals)
