"""A generation's cost by kind of token, at the catalog price that priced it (the detail page)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from analytics import cost_sources
from analytics.models import EndpointPrice, Generation
from core.money import usd_to_units
from marketplace.pricing import CostParts, Prices, prices_in_force


@dataclass(frozen=True)
class CostBreakdown:
    """A generation's cost by kind of token, at the catalog price in force at its created_at.

    `parts` is None when the catalog has no price for the endpoint. When the gateway sent the cost
    (`from_gateway`), the bill is the gateway's figure and `parts` only what the catalog's price at
    the time would have made of the same tokens: the page says so and never shows it as the bill.
    """

    parts: CostParts | None
    since: datetime | None  # the price row's valid_from; None: the endpoint's current price
    from_gateway: bool

    billed_units: int = 0
    cost_source: int | None = None  # Generation.CostSource

    @property
    def unpriced(self) -> bool:
        """Tokengrid could not price it when it was ingested: $0 is no price here, and nothing was debited."""
        return self.cost_source == Generation.CostSource.UNPRICED

    @property
    def insurance(self) -> bool:
        """Failed or empty, without a gateway cost: $0 by zero-completion insurance."""
        return self.cost_source == Generation.CostSource.INSURANCE

    @property
    def matches_bill(self) -> bool:
        return self.parts is not None and usd_to_units(self.parts.total) == self.billed_units

    @property
    def rows(self) -> list[tuple[str, int, int]]:
        """(part, tokens, cost in units: the exact USD to 1e-10, the bill's own resolution)."""
        p = self.parts
        if p is None:
            return []
        return [("Prompt (uncached)", p.tokens_prompt, usd_to_units(p.prompt)),
                ("Cache reads", p.tokens_cached, usd_to_units(p.cache_read)),
                ("Completion (without reasoning)", p.tokens_completion, usd_to_units(p.completion)),
                ("of the completion: reasoning", p.tokens_reasoning, usd_to_units(p.reasoning))]

    @property
    def total_units(self) -> int | None:
        return None if self.parts is None else usd_to_units(self.parts.total)



def generation_cost(generation: Generation) -> CostBreakdown:
    """The cost breakdown of one generation: at the price row that priced it (`price_id`, set at ingest or by a
    reprice; one query), else at the endpoint's price in force then (two queries)."""
    found = None
    if generation.price_id is not None:
        row = EndpointPrice.objects.filter(pk=generation.price_id).values_list(
            "prompt_price", "completion_price", "cache_read_price", "reasoning_price", "valid_from").first()
        if row is not None:
            *values, valid_from = row
            found = (Prices(*values), valid_from)
    if found is None:
        found = prices_in_force(model_id=generation.model_id, provider_id=generation.provider_id,
                                at=generation.created_at)
    parts = None
    since = None
    if found is not None:
        prices, since = found
        parts = prices.parts(prompt=generation.tokens_prompt, completion=generation.tokens_completion,
                             reasoning=generation.tokens_reasoning, cached=generation.tokens_cached)
    return CostBreakdown(parts=parts, since=since, from_gateway=cost_sources.GATEWAY.of(generation),
                         billed_units=generation.cost_units, cost_source=generation.cost_source)

