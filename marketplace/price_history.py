"""Staff's entries in an endpoint's price history: a price from a date, entered or corrected."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from .models import Endpoint, EndpointPrice


def endpoint_price_set(*, model_id: int, provider_id: int, valid_from: datetime, prompt: Decimal,
                       completion: Decimal, cache_read: Decimal | None = None,
                       reasoning: Decimal | None = None) -> EndpointPrice:
    """Enter the endpoint's price from `valid_from` on, or correct the row already starting then.

    An endpoint without history was priced at its current price at every moment; its first row
    would then price earlier requests too (the price book reads the first row before the history
    starts), so the current price is kept as the row in force before `valid_from` (from the epoch).
    When the row is the one in force now, the endpoint's listed price (its providers-table and
    catalog price) becomes it too. Raises Endpoint.DoesNotExist when the model is not served by the
    provider.
    """
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(model_id=model_id, provider_id=provider_id)
        history = EndpointPrice.objects.filter(endpoint=endpoint)
        if not history.exists():
            EndpointPrice.objects.create(
                endpoint=endpoint, valid_from=datetime(1970, 1, 1, tzinfo=UTC),
                prompt_price=endpoint.prompt_price, completion_price=endpoint.completion_price,
                cache_read_price=endpoint.cache_read_price, reasoning_price=endpoint.reasoning_price)
        price, _ = EndpointPrice.objects.update_or_create(
            endpoint=endpoint, valid_from=valid_from,
            defaults={"prompt_price": prompt, "completion_price": completion, "cache_read_price": cache_read,
                      "reasoning_price": reasoning})
        now = timezone.now()
        if valid_from <= now and not history.filter(valid_from__gt=valid_from, valid_from__lte=now).exists():
            endpoint.prompt_price, endpoint.completion_price = prompt, completion
            endpoint.cache_read_price, endpoint.reasoning_price = cache_read, reasoning
            endpoint.save(update_fields=["prompt_price", "completion_price", "cache_read_price", "reasoning_price"])
        return price
