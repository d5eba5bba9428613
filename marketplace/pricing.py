"""Price a request that arrived without total_cost.

The rule (`PriceBook.cost`): the endpoint's price in force; for a provider without an endpoint of the
model, the price of the provider staff mapped it to (`Provider.prices_as`); for a model the catalog has
no endpoint of at all, genai-prices' price of the model. Otherwise nothing: the request is unpriced
(never $0, never another provider's price). An unknown provider of a model the catalog prices is not
looked up in genai-prices: that answers for whichever provider genai-prices knows, the very guess
"unpriced unless staff map it" rules out.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from genai_prices import Usage, calc_price

from .models import Endpoint, EndpointPrice, Provider

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Prices:
    prompt: Decimal
    completion: Decimal
    cache_read: Decimal | None
    reasoning: Decimal | None

    def cost(self, *, prompt: int, completion: int, reasoning: int, cached: int) -> Decimal:
        """Cached tokens are part of prompt, reasoning tokens part of completion."""
        parts = self.parts(prompt=prompt, completion=completion, reasoning=reasoning, cached=cached)
        return parts.prompt + parts.cache_read + parts.completion + parts.reasoning

    def parts(self, *, prompt: int, completion: int, reasoning: int, cached: int) -> CostParts:
        """The cost in its four parts (USD): uncached prompt, cache reads, completion without reasoning, reasoning."""
        cached = min(cached, prompt)
        reasoning = min(reasoning, completion)
        return CostParts(
            prompt=(prompt - cached) * self.prompt,
            cache_read=cached * (self.cache_read if self.cache_read is not None else self.prompt),
            completion=(completion - reasoning) * self.completion,
            reasoning=reasoning * (self.reasoning if self.reasoning is not None else self.completion),
            tokens_prompt=prompt - cached, tokens_cached=cached, tokens_completion=completion - reasoning,
            tokens_reasoning=reasoning)


@dataclass(frozen=True, slots=True)
class CostParts:
    """A cost split by kind of token, exact USD; the token counts each part is for."""

    prompt: Decimal
    cache_read: Decimal
    completion: Decimal
    reasoning: Decimal
    tokens_prompt: int
    tokens_cached: int
    tokens_completion: int
    tokens_reasoning: int

    @property
    def total(self) -> Decimal:
        return self.prompt + self.cache_read + self.completion + self.reasoning


def prices_in_force(*, model_id: int, provider_id: int, at: datetime) -> tuple[Prices, datetime | None] | None:
    """The endpoint's price at `at` as PriceBook.cost picks it, and since when; None without an endpoint.

    With a price history: the last row valid from `at` or before (the first row before the
    history starts, as the price book does); without one: the endpoint's current price (since: None).
    A provider without an endpoint of the model reads the endpoint of the provider it prices as.
    """
    columns = ("pk", "prompt_price", "completion_price", "cache_read_price", "reasoning_price")
    endpoint = Endpoint.objects.filter(model_id=model_id, provider_id=provider_id).values_list(*columns).first()
    if endpoint is None:
        endpoint = Endpoint.objects.filter(
            model_id=model_id, provider__in=Provider.objects.filter(pk=provider_id).values("prices_as")
        ).values_list(*columns).first()
    if endpoint is None:
        return None
    pk, *current = endpoint
    fields = ("valid_from", "prompt_price", "completion_price", "cache_read_price", "reasoning_price")
    history = EndpointPrice.objects.filter(endpoint_id=pk)
    row = (history.filter(valid_from__lte=at).order_by("-valid_from").values_list(*fields).first()
           or history.order_by("valid_from").values_list(*fields).first())
    if row is None:
        return Prices(*current), None
    valid_from, *prices = row
    return Prices(*prices), valid_from


class PriceBook:
    """Every endpoint's price history in memory: one dict lookup and a bisect per priced record."""

    def __init__(self, history: dict[tuple[str, str], tuple[list[datetime], list[Prices]]],
                 prices_as: dict[str, str], price_ids: dict[tuple[str, str], list[int]] | None = None):
        self._history = history
        self._prices_as = prices_as  # provider name -> the name of the provider it is priced as
        self._catalogued = {model for model, _ in history}  # models with at least one endpoint
        self._price_ids = price_ids or {}  # the EndpointPrice ids of each history, in `starts` order
        self._genai_misses: set[str] = set()

    @classmethod
    def load(cls) -> PriceBook:
        """Read endpoints, their price history and the providers' mappings (three queries)."""
        history: dict[tuple[str, str], tuple[list[datetime], list[Prices]]] = {}
        endpoints = Endpoint.objects.values_list(
            "pk", "model__slug", "provider__name", "prompt_price", "completion_price", "cache_read_price",
            "reasoning_price")
        by_pk = {}
        for pk, model, provider, prompt, completion, cache_read, reasoning in endpoints:
            current = Prices(prompt, completion, cache_read, reasoning)
            by_pk[pk] = (model, provider)
            history[(model, provider)] = ([datetime.max.replace(tzinfo=UTC)], [current])
        rows = EndpointPrice.objects.order_by("endpoint_id", "valid_from").values_list(
            "pk", "endpoint_id", "valid_from", "prompt_price", "completion_price", "cache_read_price", "reasoning_price")
        past: dict[tuple[str, str], tuple[list[datetime], list[Prices]]] = {}
        price_ids: dict[tuple[str, str], list[int]] = {}
        for price_id, endpoint_id, valid_from, prompt, completion, cache_read, reasoning in rows:
            key = by_pk[endpoint_id]
            starts, prices = past.setdefault(key, ([], []))
            starts.append(valid_from)
            prices.append(Prices(prompt, completion, cache_read, reasoning))
            price_ids.setdefault(key, []).append(price_id)
        history.update(past)
        prices_as = dict(Provider.objects.filter(prices_as__isnull=False).values_list("name", "prices_as__name"))
        return cls(history, prices_as, price_ids)

    def cost(self, *, model_slug: str, provider_name: str, created_at: datetime, tokens_prompt: int,
             tokens_completion: int, tokens_reasoning: int, tokens_cached: int) -> Decimal | None:
        """What the request cost at created_at, or None (unpriced) when no price applies (module docstring)."""
        return self.priced(model_slug=model_slug, provider_name=provider_name, created_at=created_at,
                           tokens_prompt=tokens_prompt, tokens_completion=tokens_completion,
                           tokens_reasoning=tokens_reasoning, tokens_cached=tokens_cached)[0]

    def priced(self, *, model_slug: str, provider_name: str, created_at: datetime, tokens_prompt: int,
               tokens_completion: int, tokens_reasoning: int, tokens_cached: int) -> tuple[Decimal | None, int | None]:
        """The cost (as `cost`) and the id of the EndpointPrice row it came from, in one look-up; the id is None
        when no history row of this endpoint priced it (its current price, genai-prices, another provider's
        price through a mapping, or unpriced)."""
        counts = {"prompt": tokens_prompt, "completion": tokens_completion, "reasoning": tokens_reasoning,
                  "cached": tokens_cached}
        key = (model_slug, provider_name)
        entry = self._history.get(key)
        if entry is None and provider_name in self._prices_as:
            key = None  # another provider's prices: no row of this endpoint
            entry = self._history.get((model_slug, self._prices_as[provider_name]))
        if entry is not None:
            starts, prices = entry
            if starts[-1].year == 9999:  # no history rows: the current price
                return prices[-1].cost(**counts), None
            at = max(bisect.bisect_right(starts, created_at) - 1, 0)
            ids = self._price_ids.get(key) if key else None
            return prices[at].cost(**counts), ids[at] if ids else None
        if model_slug in self._catalogued:
            return None, None  # an unknown provider of a catalogued model, not mapped: unpriced
        return self._genai_cost(model_slug, created_at, counts), None

    def _genai_cost(self, model_slug: str, created_at: datetime, counts: dict[str, int]) -> Decimal | None:
        if model_slug in self._genai_misses:
            return None
        usage = Usage(input_tokens=counts["prompt"], output_tokens=counts["completion"],
                      cache_read_tokens=min(counts["cached"], counts["prompt"]) or None)
        route = model_slug.split("/", 1)[-1]
        for ref, provider in ((model_slug, "openrouter"), (route, None)):
            try:
                if provider:
                    result = calc_price(usage, ref, provider_id=provider, genai_request_timestamp=created_at)
                else:
                    result = calc_price(usage, ref, genai_request_timestamp=created_at)
            except Exception:  # noqa: BLE001  (genai-prices raises several kinds for an unknown model)
                continue
            return result.total_price
        self._genai_misses.add(model_slug)
        return None


@dataclass(frozen=True, slots=True)
class PriceHistory:
    """One endpoint's prices over time, read as ingestion prices a record (PriceBook.cost): the price whose
    `valid_from` is the latest at or before a moment (the first one before any), the endpoint's current
    price when it has no history."""

    endpoint: Endpoint
    starts: tuple[datetime, ...]
    prices: tuple[Prices, ...]

    def at(self, moment: datetime) -> Prices:
        if not self.starts:
            e = self.endpoint
            return Prices(e.prompt_price, e.completion_price, e.cache_read_price, e.reasoning_price)
        return self.prices[max(bisect.bisect_right(self.starts, moment) - 1, 0)]


def price_histories(*, model_ids: list[int]) -> dict[int, list[PriceHistory]]:
    """Read the endpoints of these models with their price history, by model (two queries)."""
    endpoints = list(Endpoint.objects.filter(model_id__in=model_ids).select_related("provider")
                     .order_by("model_id", "provider__name"))
    rows: dict[int, list[EndpointPrice]] = {}
    for row in EndpointPrice.objects.filter(endpoint__in=endpoints).order_by("endpoint_id", "valid_from"):
        rows.setdefault(row.endpoint_id, []).append(row)
    histories: dict[int, list[PriceHistory]] = {}
    for e in endpoints:
        past = rows.get(e.pk, [])
        histories.setdefault(e.model_id, []).append(PriceHistory(
            e, tuple(p.valid_from for p in past),
            tuple(Prices(p.prompt_price, p.completion_price, p.cache_read_price, p.reasoning_price) for p in past)))
    return histories
