"""The savings advisor: what the account's top models of the last 30 days would have cost at the cheapest
provider of the same model that kept uptime >= 99% over those days, at the prices in force then.

- The models: the account's TOP_MODELS by spend over the overview's `30d` period (whole UTC days,
  today included), read from the daily rollup.
- What was paid: the rollup's spend (BYOK is never spend). Rollup rows that hold BYOK tokens are left
  out on both sides: their tokens cannot be told apart by kind from the paid requests' beside them
  (a row of BYOK requests alone has no spend; the paid spend of mixed rows is shown as left out).
- What it would have cost: the account's own prompt, completion, cached and reasoning tokens (cached
  inside prompt, reasoning inside completion, as marketplace.pricing.Prices.cost takes them) at each
  candidate's price in force: per day, and per hour on the days one of the model's prices changed
  within the day (an hour is priced at its start). The total is rounded once to a unit.
- A candidate is an endpoint of the model whose uptime over the same days (1 - failed attempts /
  attempts not rate-limited, from the daily endpoint rollup, as analytics.rankings.endpoint_stats)
  is at least 99%;
  the cheapest for the account's own usage is shown. Without one, no figure: "no priced alternative".
"""
from __future__ import annotations

import decimal
import functools
import operator
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Q, Sum

from analytics.models import AccountDay, AccountHour, EndpointDay
from core.money import usd_to_units
from core.timerange import TimeRange, midnight
from marketplace.models import Model
from marketplace.pricing import PriceHistory, price_histories

from . import params
from .cache import usage_cached

TOP_MODELS = 5
MIN_UPTIME_PERCENT = 99
TOKENS = ("tokens_prompt", "tokens_completion", "tokens_reasoning", "tokens_cached")
NO_PRICE = "no price in the catalog"
NO_RELIABLE = f"no provider with uptime ≥ {MIN_UPTIME_PERCENT}% and a price"
METHOD = (f"Your top {TOP_MODELS} models by spend over the last 30 days, your own tokens of each priced at "
          f"every provider of the model with uptime ≥ {MIN_UPTIME_PERCENT}% over those days, at the price in "
          "force each day (each hour, at its start, on a day a price changed); the cheapest is shown. Rows holding BYOK "
          "tokens are left out on both sides.")


@dataclass(frozen=True)
class ModelSaving:
    model: str
    paid_units: int
    provider: str | None = None  # the cheapest reliable provider
    uptime: float | None = None
    alternative_units: int | None = None
    reason: str | None = None  # why there is no alternative

    @property
    def saving_units(self) -> int | None:
        return None if self.alternative_units is None else self.paid_units - self.alternative_units


@dataclass(frozen=True)
class Savings:
    first_day: date
    last_day: date
    models: list[ModelSaving]
    left_out_units: int  # paid spend in rollup rows that also hold BYOK tokens
    method: str = METHOD

    @property
    def saving_units(self) -> int:
        """The savings of the models with a priced alternative (negative ones count as none)."""
        return sum(max(0, row.saving_units) for row in self.models if row.saving_units is not None)


@dataclass(frozen=True)
class _Bucket:
    """The account's tokens and spend of one model over a day or an hour starting at `start`."""

    start: datetime
    spend: int
    prompt: int
    completion: int
    reasoning: int
    cached: int


def account_savings(*, account_id: int, now: datetime | None = None) -> Savings:
    """Compare the account's top models with their cheapest reliable provider, cached like the overview
    (until the account's next chunk while watched, an hour at most: providers' uptime moves slowly)."""
    period = params.period_parse("30d", now=now)
    return usage_cached(account_id, f"savings:{period.key}", lambda: _account_savings(account_id, period))


def _account_savings(account_id: int, period: TimeRange) -> Savings:
    """Five to seven queries: top models, their endpoints and prices, day (and hour) rows, uptime, names."""
    first, end = period.first_day, period.end.date()
    days = AccountDay.objects.filter(account_id=account_id, day__gte=first, day__lt=end)
    spend = dict(days.values_list("model_id").annotate(s=Sum("spend_units")).filter(s__gt=0)
                 .order_by("-s", "model_id")[:TOP_MODELS])
    top = list(spend)
    if not top:
        return Savings(first_day=first, last_day=period.last_day, models=[], left_out_units=0)
    histories = price_histories(model_ids=top)
    buckets = _buckets(account_id, days.filter(model_id__in=top, byok_tokens=0), histories, first, end)
    uptimes = _uptimes(top, first, end)
    names = dict(Model.objects.filter(pk__in=top).values_list("pk", "slug"))
    models = [_compare(names[m], buckets.get(m, []), histories.get(m, []), uptimes) for m in top]
    left_out = sum(int(spend[m]) for m in top) - sum(row.paid_units for row in models)
    return Savings(first_day=first, last_day=period.last_day, models=models, left_out_units=left_out)


def _change_days(histories: list[PriceHistory], first: date, end: date) -> set[date]:
    """The days of the window on which one of the model's prices changed after midnight."""
    return {start.date() for h in histories for start in h.starts
            if first <= start.date() < end and start != midnight(start.date())}


def _buckets(account_id: int, days, histories: dict[int, list[PriceHistory]], first: date,
             end: date) -> dict[int, list[_Bucket]]:
    """The tokens per model and day; per hour on the days a price of the model changed within the day."""
    split = {m: _change_days(h, first, end) for m, h in histories.items()}
    sums = {name: Sum(name) for name in (*TOKENS, "spend_units")}
    out: dict[int, list[_Bucket]] = defaultdict(list)
    for row in days.values("model_id", "day").annotate(**sums).order_by("model_id", "day"):
        if row["day"] not in split.get(row["model_id"], ()):
            out[row["model_id"]].append(_bucket(midnight(row["day"]), row))
    hours = [Q(model_id=model_id, hour__gte=midnight(day), hour__lt=midnight(day + timedelta(days=1)))
             for model_id, changed in split.items() for day in changed]
    if hours:
        rows = (AccountHour.objects.filter(functools.reduce(operator.or_, hours), account_id=account_id, byok_tokens=0)
                .values("model_id", "hour").annotate(**sums).order_by("model_id", "hour"))
        for row in rows:
            out[row["model_id"]].append(_bucket(row["hour"], row))
    return out


def _bucket(start: datetime, row: dict) -> _Bucket:
    return _Bucket(start, int(row["spend_units"] or 0), int(row["tokens_prompt"] or 0), int(row["tokens_completion"] or 0),
                   int(row["tokens_reasoning"] or 0), int(row["tokens_cached"] or 0))


def _uptimes(model_ids: list[int], first: date, end: date) -> dict[tuple[int, int], tuple[int, int]]:
    """Attempts not rate-limited, and failed attempts, per model and provider over the window's days (a 429
    is left out of uptime, as on the model page)."""
    rows = (EndpointDay.objects.filter(model_id__in=model_ids, day__gte=first, day__lt=end)
            .values("model_id", "provider_id")
            .annotate(a=Sum("attempts"), f=Sum("failed_attempts"), r=Sum("rate_limited_attempts"))
            .values_list("model_id", "provider_id", "a", "f", "r").order_by())
    return {(m, p): (int(a or 0) - int(r or 0), int(f or 0)) for m, p, a, f, r in rows}


def _reliable(attempts: int, failed: int) -> bool:
    """Uptime >= 99%, in integers: 100 x successes >= 99 x attempts."""
    return attempts > 0 and 100 * (attempts - failed) >= MIN_UPTIME_PERCENT * attempts


def _cost(history: PriceHistory, buckets: list[_Bucket]) -> int:
    """The buckets' tokens at the prices in force at each bucket's start, exact, rounded once."""
    with decimal.localcontext() as context:
        context.prec = 60  # enough for any sum of bigint tokens x catalog prices: nothing is rounded
        total = sum((history.at(b.start).cost(prompt=b.prompt, completion=b.completion, reasoning=b.reasoning,
                                              cached=b.cached) for b in buckets), Decimal(0))
        return usd_to_units(total)


def _compare(model: str, buckets: list[_Bucket], histories: list[PriceHistory],
             uptimes: dict[tuple[int, int], tuple[int, int]]) -> ModelSaving:
    paid = sum(b.spend for b in buckets)
    if not histories:
        return ModelSaving(model=model, paid_units=paid, reason=NO_PRICE)
    options = []
    for history in histories:
        e = history.endpoint
        attempts, failed = uptimes.get((e.model_id, e.provider_id), (0, 0))
        if _reliable(attempts, failed):
            options.append((_cost(history, buckets), e.provider.name, (attempts - failed) / attempts))
    if not options:
        return ModelSaving(model=model, paid_units=paid, reason=NO_RELIABLE)
    cost, provider, uptime = min(options)
    return ModelSaving(model=model, paid_units=paid, provider=provider, uptime=uptime, alternative_units=cost)
