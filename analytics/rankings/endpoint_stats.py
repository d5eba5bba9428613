"""Live figures of a model's endpoints, from rollups: traffic share, uptime, latency, throughput;
and the model page's endpoint table with the cheapest, fastest and most reliable marked.

uptime = successful attempts / attempts that were not rate-limited (every provider_responses entry,
or the final status; a 429 is counted apart); latency (ms to first token) and throughput (completion
tokens / generation time) come as p50, p75, p90 and p99 from the mergeable daily histograms, within
5% of the exact percentiles. A window is the last hour, day or 7 days (STATS_WINDOWS) for traffic
and uptime; the percentiles cover the UTC days the window touches (the histograms are daily).
Every provider that served the model in the window is a row, in the catalog or not.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import F, Sum

from analytics import histograms
from analytics.models import EndpointHistogram, EndpointHour
from core.charts import Series
from core.timerange import hour_end
from marketplace.models import Endpoint, Model, Provider

from .cache import rankings_cached

STATS_WINDOWS = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7)}
UPTIME_HOURS = 72
UPTIME_PROVIDERS = 8
QUANTILES = (0.5, 0.75, 0.9, 0.99)


@dataclass(frozen=True)
class EndpointStats:
    provider_id: int
    window: str
    tokens: int
    share: float  # of the model's tokens in the window
    requests: int  # requests this provider answered (served); attempts count fallbacks tried too
    attempts: int
    uptime: float | None  # None: no attempt that was not rate-limited
    rate_limited: float | None  # share of the attempts answered 429
    latency: tuple[float | None, ...]  # ms at QUANTILES
    throughput: tuple[float | None, ...]  # tokens/s at QUANTILES

    @property
    def latency_p50(self) -> float | None:
        return self.latency[0]

    @property
    def latency_p90(self) -> float | None:
        return self.latency[2]

    @property
    def throughput_p50(self) -> float | None:
        return self.throughput[0]

    @property
    def throughput_p90(self) -> float | None:
        return self.throughput[2]


def uptime(attempts: int, failed: int, rate_limited: int) -> float | None:
    """Successful attempts over the attempts that were not rate-limited (None: none such)."""
    answered = attempts - rate_limited
    return (answered - failed) / answered if answered > 0 else None


def endpoint_stats(*, model_id: int, now: datetime | None = None, window: str = "7d") -> dict[int, EndpointStats]:
    """Figures per provider of one model over the window (a key of STATS_WINDOWS) ending at this hour's end.

    Cached under the rankings version, like the rankings: new traffic moves it.
    """
    window = window if window in STATS_WINDOWS else "7d"
    end = hour_end(now)
    return rankings_cached(f"endpoint-stats:{model_id}:{window}:{end:%Y%m%d%H}",
                           lambda: _endpoint_stats(model_id, end, window))


def _endpoint_stats(model_id: int, end: datetime, window: str) -> dict[int, EndpointStats]:
    start = end - STATS_WINDOWS[window]
    served = {row["provider_id"]: row for row in EndpointHour.objects.filter(
        model_id=model_id, hour__gte=start, hour__lt=end).values("provider_id").annotate(
        tokens=Sum(F("tokens_prompt") + F("tokens_completion")), requests=Sum("requests"), attempts=Sum("attempts"),
        failed=Sum("failed_attempts"), limited=Sum("rate_limited_attempts"))}
    counts: dict[tuple[int, int], dict[int, int]] = defaultdict(dict)
    # The daily histograms of every UTC day the window touches (the last hour may straddle midnight).
    for provider_id, metric, bucket, count in EndpointHistogram.objects.filter(
            model_id=model_id, day__gte=start.date(), day__lte=(end - timedelta(microseconds=1)).date()).values(
            "provider_id", "metric", "bucket").annotate(n=Sum("count")).values_list(
            "provider_id", "metric", "bucket", "n").order_by():
        counts[(provider_id, metric)][bucket] = count
    total = sum(row["tokens"] or 0 for row in served.values())
    stats = {}
    for provider_id in set(served) | {p for p, _ in counts}:
        row = served.get(provider_id, {})
        latency = counts.get((provider_id, EndpointHistogram.Metric.LATENCY), {})
        speed = counts.get((provider_id, EndpointHistogram.Metric.THROUGHPUT), {})
        tokens, attempts = row.get("tokens") or 0, row.get("attempts") or 0
        limited = row.get("limited") or 0
        stats[provider_id] = EndpointStats(
            provider_id=provider_id, window=window, tokens=tokens, share=tokens / total if total else 0.0,
            requests=row.get("requests") or 0, attempts=attempts, uptime=uptime(attempts, row.get("failed") or 0, limited),
            rate_limited=limited / attempts if attempts else None,
            latency=tuple(histograms.percentile(latency, q) for q in QUANTILES),
            throughput=tuple(histograms.percentile(speed, q) for q in QUANTILES))
    return stats


def hourly_uptime(*, model_id: int, now: datetime | None = None) -> Series:
    """Uptime per hour over the last UPTIME_HOURS hours of the UPTIME_PROVIDERS providers that served the most
    requests then (None where nothing was attempted)."""
    end = hour_end(now)
    start = end - timedelta(hours=UPTIME_HOURS)

    def compute() -> Series:
        rows = list(EndpointHour.objects.filter(model_id=model_id, hour__gte=start, hour__lt=end)
                    .values_list("hour", "provider__name", "requests", "attempts", "failed_attempts",
                                 "rate_limited_attempts"))
        # The providers that served the model in these hours, the busiest UPTIME_PROVIDERS (a router
        # tries dozens of others as fallbacks: a line each would hide the ones that matter).
        served: dict[str, int] = defaultdict(int)
        for _, provider, requests, *_ in rows:
            served[provider] += requests
        shown = set(sorted((p for p, n in served.items() if n), key=lambda p: (-served[p], p))[:UPTIME_PROVIDERS])
        hours = [start + timedelta(hours=i) for i in range(UPTIME_HOURS)]
        at = {hour: i for i, hour in enumerate(hours)}
        series: dict[str, list] = {}
        for hour, provider, _, attempts, failed, limited in rows:
            if provider not in shown:
                continue
            values = series.setdefault(provider, [None] * UPTIME_HOURS)
            share = uptime(attempts, failed, limited)
            values[at[hour]] = None if share is None else round(100 * share, 2)
        return Series(periods=[f"{h:%Y-%m-%d %H:00}" for h in hours], series=dict(sorted(series.items())))

    return rankings_cached(f"hourly-uptime:{model_id}:{end:%Y%m%d%H}", compute)


@dataclass(frozen=True)
class EndpointRow:
    provider: Provider
    endpoint: Endpoint | None  # None: seen in the traffic only, no catalog price
    cheapest: bool
    stats: EndpointStats | None = None
    fastest: bool = False
    most_reliable: bool = False

    @property
    def blended(self) -> Decimal | None:
        return None if self.endpoint is None else self.endpoint.prompt_price + self.endpoint.completion_price


def model_endpoints(*, model: Model, window: str = "7d") -> list[EndpointRow]:
    """Every provider of the model, in the catalog or seen serving it in the window, with live figures;
    the cheapest, fastest and most reliable marked. Catalog endpoints first, by price; then the others."""
    endpoints = sorted(Endpoint.objects.filter(model=model).select_related("provider"),
                       key=lambda e: (e.prompt_price + e.completion_price, e.provider.name))
    stats = endpoint_stats(model_id=model.pk, window=window)
    listed = {e.provider_id for e in endpoints}
    # A provider only tried (a fallback's failed attempt) served nothing: no row of its own.
    served = [p for p, figures in stats.items() if p not in listed and figures.requests]
    unlisted = sorted(Provider.objects.filter(pk__in=served), key=lambda p: (-stats[p.pk].tokens, p.name))
    cheapest = endpoints[0].prompt_price + endpoints[0].completion_price if endpoints else None
    speeds = [s.throughput_p50 for s in stats.values() if s.throughput_p50 is not None]
    uptimes = [s.uptime for s in stats.values() if s.uptime is not None]
    fastest, best_uptime = (max(speeds) if speeds else None), (max(uptimes) if uptimes else None)

    def row(provider: Provider, endpoint: Endpoint | None) -> EndpointRow:
        figures = stats.get(provider.pk)
        return EndpointRow(
            provider, endpoint,
            endpoint is not None and cheapest is not None and endpoint.prompt_price + endpoint.completion_price
            == cheapest, figures,
            fastest=figures is not None and figures.throughput_p50 is not None and figures.throughput_p50 == fastest,
            most_reliable=figures is not None and figures.uptime is not None and figures.uptime == best_uptime)

    return [*(row(e.provider, e) for e in endpoints), *(row(p, None) for p in unlisted)]
