"""The catalog page (/models/): every listed model, filtered and sorted, with this week's traffic.

Filters: a text search (name or slug), author, provider (models it serves), a minimum context,
a maximum input price per 1M tokens (at the model's cheapest provider) and "has traffic" (tokens in
the last 7 days). Sorts: tokens this week, price (cheapest input + output), context, throughput and
latency (p50 over the last 7 UTC days, every provider's histogram merged), newest. Everything lives
in the URL; 50 models a page. The week's figures per model are a small table (ModelWeek) that the
rankings task refreshes from the rollups, so one query filters, sorts and pages the catalog (some
700 models) and another counts it, with nothing cached: the page is as fast cold as warm. The
figures are as fresh as the last refresh (ingestion asks for one at most once every 40 s, beat every
5 minutes).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.db import connection, transaction
from django.db.models import Count, Exists, F, Min, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce, Lower

from analytics import histograms
from analytics.models import EndpointDay, EndpointHistogram, ModelWeek
from core.timerange import hour_end
from marketplace.models import Endpoint, Model

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


def model_weeks_refresh(*, now: datetime | None = None) -> int:
    """Rewrite ModelWeek from the week's rollup rows (one upsert, one delete); returns the rows written.

    Called by the rankings task after the version moves (and every 5 minutes by beat), never by
    ingestion. The p50 is the histograms' nearest rank (`histograms.percentile`): the first bucket
    where the running count reaches half the total, `2 * seen >= total`, in integers. Rows of an
    earlier week are deleted after the upsert, so a reader never sees the table empty; within one
    `as_of` the set of models only grows, so an older row is all that can be stale.
    """
    end = hour_end(now)
    first = (end - timedelta(days=WEEK_DAYS)).date()
    table, days, histogram = ModelWeek._meta.db_table, EndpointDay._meta.db_table, EndpointHistogram._meta.db_table
    speed, latency = EndpointHistogram.Metric.THROUGHPUT, EndpointHistogram.Metric.LATENCY
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (model_id, tokens, throughput_p50_bucket, latency_p50_bucket, as_of)"
            f" WITH h AS (SELECT model_id, metric, bucket, SUM(count) AS n FROM {histogram} WHERE day >= %s"
            f"           GROUP BY model_id, metric, bucket),"
            f" c AS (SELECT model_id, metric, bucket,"
            f"              SUM(n) OVER (PARTITION BY model_id, metric ORDER BY bucket) AS seen,"
            f"              SUM(n) OVER (PARTITION BY model_id, metric) AS total FROM h),"
            f" p AS (SELECT model_id, metric, MIN(bucket) AS bucket FROM c WHERE total > 0 AND 2 * seen >= total"
            f"       GROUP BY model_id, metric),"
            f" t AS (SELECT model_id, SUM(tokens_prompt + tokens_completion) AS tokens FROM {days} WHERE day >= %s"
            f"       GROUP BY model_id),"
            f" k AS (SELECT model_id FROM t UNION SELECT model_id FROM p)"
            f" SELECT k.model_id, COALESCE(t.tokens, 0), s.bucket, l.bucket, %s FROM k"
            f" LEFT JOIN t ON t.model_id = k.model_id"
            f" LEFT JOIN p s ON s.model_id = k.model_id AND s.metric = {int(speed)}"
            f" LEFT JOIN p l ON l.model_id = k.model_id AND l.metric = {int(latency)}"
            f" WHERE k.model_id IN (SELECT id FROM {Model._meta.db_table})"
            f" ON CONFLICT (model_id) DO UPDATE SET tokens = excluded.tokens,"
            f" throughput_p50_bucket = excluded.throughput_p50_bucket,"
            f" latency_p50_bucket = excluded.latency_p50_bucket, as_of = excluded.as_of"
            f" WHERE {table}.as_of <= excluded.as_of",
            [first, first, end])
        written = cursor.rowcount
        ModelWeek.objects.filter(as_of__lt=end).delete()
    return written


@dataclass(frozen=True)
class CatalogRow:
    model: Model
    providers: int
    min_prompt: Decimal | None
    min_completion: Decimal | None
    tokens_7d: int
    throughput_p50: float | None
    latency_p50: float | None


def _value(bucket: int | None) -> float | None:
    return None if bucket is None else histograms.value_of(bucket)


# Models without the figure a sort reads go last; ties (and those) in slug order.
_ORDER = {
    "tokens": [F("tokens_7d").desc()],
    "price": [(F("min_prompt") + F("min_completion")).asc(nulls_last=True)],
    "context": [F("context_length").desc(nulls_last=True)],
    "throughput": [F("week__throughput_p50_bucket").desc(nulls_last=True)],
    "latency": [F("week__latency_p50_bucket").asc(nulls_last=True)],
    "newest": [F("created").desc()],
    "name": [Lower("name")],
}


@dataclass(frozen=True)
class CatalogRows:
    """The models of a query in its order, read a page at a time: a sequence the Paginator counts and slices in SQL."""

    queryset: QuerySet

    def count(self) -> int:
        return self.queryset.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index):
        if isinstance(index, slice):
            if any(i is not None and i < 0 for i in (index.start, index.stop)):  # as a list would (a count first)
                index = slice(*index.indices(self.count()))
            return [_row(m) for m in self.queryset[index.start:index.stop]][::index.step]
        return _row(self.queryset[index + self.count() if index < 0 else index])

    def __iter__(self):
        return (_row(m) for m in self.queryset)


def _row(m: Model) -> CatalogRow:
    return CatalogRow(m, m.providers, m.min_prompt, m.min_completion, m.tokens_7d, _value(m.speed_bucket),
                      _value(m.latency_bucket))


def catalog_models(query: CatalogQuery) -> CatalogRows:
    """Every listed model that passes the filters, in the query's order; the week's figures from ModelWeek."""
    qs = Model.objects.filter(listed=True).select_related("author")
    if query.q:
        qs = qs.filter(Q(name__icontains=query.q) | Q(slug__icontains=query.q))
    if query.author:
        qs = qs.filter(author__slug=query.author)
    if query.provider:  # a subquery: a join here would narrow the provider count and prices to that provider
        qs = qs.filter(Exists(Endpoint.objects.filter(model=OuterRef("pk"), provider__slug=query.provider)))
    if query.min_context is not None:
        qs = qs.filter(context_length__gte=query.min_context)
    if query.has_traffic:
        qs = qs.filter(week__tokens__gt=0)
    qs = qs.annotate(providers=Count("endpoints", distinct=True), min_prompt=Min("endpoints__prompt_price"),
                     min_completion=Min("endpoints__completion_price"),
                     tokens_7d=Coalesce(F("week__tokens"), 0), speed_bucket=F("week__throughput_p50_bucket"),
                     latency_bucket=F("week__latency_p50_bucket"))
    if query.max_price is not None:
        qs = qs.filter(min_prompt__lte=query.max_price / 1_000_000)
    return CatalogRows(qs.order_by(*_ORDER[query.sort], "slug"))
