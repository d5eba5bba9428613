"""The catalog's question, answered from generations: how many catalog-priced requests used each price.

Registered by analytics.apps with marketplace.price_use, so the catalog asks without importing
analytics. One aggregate query for all intervals, however many endpoints changed.
"""
from collections.abc import Sequence

from django.db.models import Case, Count, IntegerField, Max, Min, Q, Value, When

from analytics import cost_sources
from marketplace.price_use import PriceInterval, PriceUse

from .models import Generation

CATALOG_PRICED = cost_sources.CATALOG.q


def catalog_price_use(intervals: Sequence[PriceInterval]) -> dict[int, PriceUse]:
    """Catalog-priced requests, first and last created_at, per interval (by its index).

    One scan per 500 intervals: each request is labelled by a CASE over the intervals and grouped by
    the label (a CASE, not an OR of the intervals).
    """
    found: dict[int, PriceUse] = {}
    for offset in range(0, len(intervals), BATCH):
        found.update(_count(intervals[offset:offset + BATCH], offset))
    return found


BATCH = 500


def _count(intervals: Sequence[PriceInterval], offset: int) -> dict[int, PriceUse]:
    whens = []
    for i, interval in enumerate(intervals, start=offset):
        q = Q(model_id=interval.model_id, provider_id=interval.provider_id)
        if interval.start is not None:
            q &= Q(created_at__gte=interval.start)
        if interval.end is not None:
            q &= Q(created_at__lt=interval.end)
        whens.append(When(q, then=Value(i)))
    rows = (Generation.objects.filter(CATALOG_PRICED, model_id__in={i.model_id for i in intervals})
            .annotate(interval=Case(*whens, output_field=IntegerField())).filter(interval__isnull=False)
            .values("interval").annotate(n=Count("*"), first=Min("created_at"), last=Max("created_at"))
            .order_by())
    return {row["interval"]: PriceUse(row["n"], row["first"], row["last"]) for row in rows}
