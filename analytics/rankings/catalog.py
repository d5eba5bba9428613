"""The catalog page (/models/): every listed model, filtered and sorted, with this week's traffic.

Filters: a text search (name or slug), author, provider (models it serves), a minimum context,
a maximum input price per 1M tokens (at the model's cheapest provider) and "has traffic" (tokens in
the last 7 days). Sorts: tokens this week, price (cheapest input + output), context, throughput and
latency (p50 over the last 7 UTC days, every provider's histogram merged), newest. Everything lives
in the URL; 50 models a page. The catalog (some 700 models) is filtered in one query; the week's
figures per model come from two rollup reads cached under the rankings version, so sorting by them
costs nothing more on later views.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.db.models import Count, F, Min, Q, Sum

from analytics import histograms
from analytics.models import EndpointDay, EndpointHistogram
from core.timerange import hour_end
from marketplace.models import Model

from .cache import rankings_cached

SORTS = {"tokens": "Tokens this week", "price": "Price", "context": "Context", "throughput": "Throughput",
         "latency": "Latency", "newest": "Newest", "name": "Name"}
PAGE_SIZE = 50
WEEK_DAYS = 7


@dataclass(frozen=True)
class CatalogQuery:
    q: str = ""
    author: str = ""
    provider: str = ""
    min_context: int | None = None
    max_price: Decimal | None = None  # USD per 1M input tokens
    has_traffic: bool = False
    sort: str = "tokens"

    def query(self) -> dict[str, str]:
        """The URL parameters of this query (empty ones left out), for links that keep it."""
        values = {"q": self.q, "author": self.author, "provider": self.provider,
                  "min_context": "" if self.min_context is None else str(self.min_context),
                  "max_price": "" if self.max_price is None else f"{self.max_price:f}",
                  "has_traffic": "1" if self.has_traffic else "", "sort": "" if self.sort == "tokens" else self.sort}
        return {k: v for k, v in values.items() if v}


def catalog_query_parse(params) -> CatalogQuery:
    """The page's parameters; an unusable number is no filter (the form offers the values it reads)."""
    def number(name: str, kind):
        raw = (params.get(name) or "").strip()
        try:
            value = kind(raw) if raw else None
        except (ValueError, InvalidOperation):
            return None
        if value is None or (kind is Decimal and not value.is_finite()):
            return None
        return value if value >= 0 else None

    sort = params.get("sort") or "tokens"
    return CatalogQuery(q=(params.get("q") or "").strip()[:100], author=(params.get("author") or "").strip()[:100],
                        provider=(params.get("provider") or "").strip()[:100],
                        min_context=number("min_context", int), max_price=number("max_price", Decimal),
                        has_traffic=params.get("has_traffic") in ("1", "on", "true"),
                        sort=sort if sort in SORTS else "tokens")


@dataclass(frozen=True)
class WeekFigures:
    tokens: dict[int, int]  # model id -> tokens in the last 7 days
    throughput_p50: dict[int, float]
    latency_p50: dict[int, float]


def week_figures() -> WeekFigures:
    """Tokens and p50 throughput and latency per listed model over the last WEEK_DAYS UTC days."""
    end = hour_end()
    first = (end - timedelta(days=WEEK_DAYS)).date()

    def compute() -> WeekFigures:
        tokens = dict(EndpointDay.objects.filter(day__gte=first, model__listed=True).values("model_id")
                      .annotate(t=Sum(F("tokens_prompt") + F("tokens_completion"))).values_list("model_id", "t")
                      .order_by())
        counts: dict[tuple[int, int], dict[int, int]] = defaultdict(dict)
        for model_id, metric, bucket, n in (EndpointHistogram.objects.filter(day__gte=first, model__listed=True)
                                            .values("model_id", "metric", "bucket").annotate(n=Sum("count"))
                                            .values_list("model_id", "metric", "bucket", "n").order_by()):
            counts[(model_id, metric)][bucket] = n
        speed, latency = {}, {}
        for (model_id, metric), buckets in counts.items():
            value = histograms.percentile(buckets, 0.5)
            (latency if metric == EndpointHistogram.Metric.LATENCY else speed)[model_id] = value
        return WeekFigures(tokens={k: v or 0 for k, v in tokens.items()}, throughput_p50=speed, latency_p50=latency)

    return rankings_cached(f"catalog-week:{end:%Y%m%d%H}", compute)


@dataclass(frozen=True)
class CatalogRow:
    model: Model
    providers: int
    min_prompt: Decimal | None
    min_completion: Decimal | None
    tokens_7d: int
    throughput_p50: float | None
    latency_p50: float | None


def catalog_models(query: CatalogQuery) -> list[CatalogRow]:
    """Every listed model that passes the filters, in the query's order."""
    qs = Model.objects.filter(listed=True).select_related("author")
    if query.q:
        qs = qs.filter(Q(name__icontains=query.q) | Q(slug__icontains=query.q))
    if query.author:
        qs = qs.filter(author__slug=query.author)
    if query.provider:
        qs = qs.filter(endpoints__provider__slug=query.provider)
    if query.min_context is not None:
        qs = qs.filter(context_length__gte=query.min_context)
    qs = qs.annotate(providers=Count("endpoints", distinct=True), min_prompt=Min("endpoints__prompt_price"),
                     min_completion=Min("endpoints__completion_price"))
    if query.max_price is not None:
        qs = qs.filter(min_prompt__lte=query.max_price / 1_000_000)
    week = week_figures()
    rows = [CatalogRow(m, m.providers, m.min_prompt, m.min_completion, week.tokens.get(m.pk, 0),
                       week.throughput_p50.get(m.pk), week.latency_p50.get(m.pk)) for m in qs.order_by("slug")]
    if query.has_traffic:
        rows = [r for r in rows if r.tokens_7d]
    # Models without the figure a sort reads go last, in slug order (the list is in slug order already).
    big = float("inf")
    keys = {
        "tokens": lambda r: -r.tokens_7d,
        "price": lambda r: (r.min_prompt is None, (r.min_prompt or 0) + (r.min_completion or 0)),
        "context": lambda r: (r.model.context_length is None, -(r.model.context_length or 0)),
        "throughput": lambda r: (r.throughput_p50 is None, -(r.throughput_p50 or 0)),
        "latency": lambda r: (r.latency_p50 is None, r.latency_p50 or big),
        "newest": lambda r: -r.model.created.timestamp(),
        "name": lambda r: r.model.name.lower(),
    }
    return sorted(rows, key=keys[query.sort])
