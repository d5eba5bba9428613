"""Reads of ingestion state for the operator pages and the API."""
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Sum

from analytics.models import EndpointDay, IngestBatch, Reject
from billing.selectors import UNPRICED_DAYS  # the operators' window is the accounts' (one number)
from marketplace.models import Endpoint


def batches_recent() -> QuerySet[IngestBatch]:
    """Batches newest first."""
    return IngestBatch.objects.order_by("-id")


def rejects_of_batch(*, batch_id: int) -> QuerySet[Reject]:
    """A batch's rejected records in line order."""
    return Reject.objects.filter(batch_id=batch_id).order_by("line")


def rejects_rows(*, batch_id: int) -> Iterator[tuple]:
    """Rows of a batch's rejects CSV, streamed from the database in line order."""
    for reject in rejects_of_batch(batch_id=batch_id).iterator(chunk_size=2000):
        yield (reject.batch_id, reject.line, reject.reason, reject.raw)


def ingest_lag_recent(*, batches: int = 20) -> float | None:
    """Median seconds from a batch queued to its data in the rankings, over the latest ranked batches."""
    lags = sorted(b.lag_seconds for b in IngestBatch.objects.filter(ranked_at__isnull=False)
                  .order_by("-id").only("created_at", "ranked_at")[:batches])
    if not lags:
        return None
    middle = len(lags) // 2
    return lags[middle] if len(lags) % 2 else (lags[middle - 1] + lags[middle]) / 2


@dataclass(frozen=True)
class UnpricedRow:
    """Unpriced traffic of one model at one provider: what staff would price (an endpoint) or map (the provider)."""

    model_id: int
    model_slug: str
    provider_id: int
    provider_name: str
    prices_as: str | None  # the provider's mapping, if staff set one since
    endpoint_id: int | None  # an endpoint added since (its price applies to requests ingested from then on)
    requests: int
    tokens: int


def unpriced_endpoints(*, today: date, days: int = UNPRICED_DAYS) -> list[UnpricedRow]:
    """Unpriced requests and tokens per model and provider over the last `days` UTC days (today included),
    most requests first; one grouped query of the daily endpoint rollup."""
    endpoint = Endpoint.objects.filter(model_id=OuterRef("model_id"), provider_id=OuterRef("provider_id")).values("pk")
    rows = (EndpointDay.objects.filter(day__gt=today - timedelta(days=days), unpriced_requests__gt=0)
            .values("model_id", "model__slug", "provider_id", "provider__name", "provider__prices_as__name")
            .annotate(requests=Sum("unpriced_requests"), tokens=Sum("unpriced_tokens"),
                      endpoint_id=Subquery(endpoint[:1]))
            .order_by("-requests", "model__slug", "provider__name"))
    return [UnpricedRow(r["model_id"], r["model__slug"], r["provider_id"], r["provider__name"],
                        r["provider__prices_as__name"], r["endpoint_id"], r["requests"], r["tokens"]) for r in rows]


@dataclass(frozen=True)
class NewNameRow:
    """Traffic under a model or provider name the catalog does not know (kept as the gateway wrote it)."""

    model_id: int
    model_slug: str
    model_new: bool  # not a genai-prices model: registered from traffic, unlisted
    provider_id: int
    provider_name: str
    provider_new: bool  # not a provider genai-prices lists or the catalog serves its labs' models at
    requests: int
    tokens: int
    spend_units: int


def names_new(*, today: date, days: int = UNPRICED_DAYS) -> list[NewNameRow]:
    """Requests per model and provider over the last `days` UTC days whose model or provider the catalog does
    not know, most requests first: one grouped query of the daily endpoint rollup. Ingestion resolves gateway
    names by genai-prices' matching (marketplace.names); what is left here matched nothing, for staff to
    map (a provider's *Prices as*) or to add to the catalog."""
    rows = (EndpointDay.objects.filter(day__gt=today - timedelta(days=days))
            .filter(Q(model__from_catalog=False) | Q(provider__genai_prices_id=""))
            .values("model_id", "model__slug", "model__from_catalog", "provider_id", "provider__name",
                    "provider__genai_prices_id")
            .annotate(n=Sum("requests"), tokens=Sum(F("tokens_prompt") + F("tokens_completion")),
                      spend=Sum("spend_units"))
            .order_by("-n", "model__slug", "provider__name"))
    return [NewNameRow(r["model_id"], r["model__slug"], not r["model__from_catalog"], r["provider_id"],
                       r["provider__name"], not r["provider__genai_prices_id"], r["n"], r["tokens"], r["spend"])
            for r in rows]
