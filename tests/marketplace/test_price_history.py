"""Staff's price entries (marketplace.price_history): the history row, and the listed price when it is in force."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from marketplace.models import EndpointPrice
from marketplace.price_history import endpoint_price_set
from tests.marketplace.factories import EndpointFactory

pytestmark = pytest.mark.django_db

OLD, NEW, LATER = Decimal("0.000001"), Decimal("0.000003"), Decimal("0.000005")


def _set(endpoint, valid_from, price):
    return endpoint_price_set(model_id=endpoint.model_id, provider_id=endpoint.provider_id, valid_from=valid_from,
                              prompt=price, completion=price * 2)


def test_a_price_in_force_now_becomes_the_listed_price_and_a_past_or_future_one_does_not():
    endpoint = EndpointFactory(prompt_price=OLD, completion_price=OLD * 2)
    now = timezone.now()
    _set(endpoint, now + timedelta(days=3), LATER)  # a forward change: listed price unchanged until then
    endpoint.refresh_from_db()
    assert (endpoint.prompt_price, endpoint.completion_price) == (OLD, OLD * 2)

    _set(endpoint, now - timedelta(days=10), NEW)  # in force now (the next row starts in 3 days)
    endpoint.refresh_from_db()
    assert (endpoint.prompt_price, endpoint.completion_price, endpoint.cache_read_price) == (NEW, NEW * 2, None)

    _set(endpoint, now - timedelta(days=20), LATER)  # a correction of the past: the row of 10 days ago rules now
    endpoint.refresh_from_db()
    assert endpoint.prompt_price == NEW
    assert list(EndpointPrice.objects.filter(endpoint=endpoint).order_by("valid_from")
                .values_list("valid_from", "prompt_price")) == [
        (datetime(1970, 1, 1, tzinfo=UTC), OLD), (now - timedelta(days=20), LATER), (now - timedelta(days=10), NEW),
        (now + timedelta(days=3), LATER)]
