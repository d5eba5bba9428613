"""Live figures of a model's endpoints, from rollups: traffic share, uptime, latency, throughput;
and the model page's endpoint table with the cheapest, fastest and most reliable marked.

uptime = successful attempts / attempts (every provider_responses entry, or the final status);
latency (ms to first token) and throughput (completion tokens / generation time) come as p50 and
p90 from the mergeable daily histograms, within 5% of the exact percentiles.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import F, Sum

from analytics import histograms
from analytics.models import EndpointHistogram, EndpointHour
from core.timerange import hour_end
from marketplace.models import Endpoint, Model

from .cache import rankings_cached

STATS_DAYS = 7


@dataclass(frozen=True)
class EndpointStats:
    provider_id: int
    tokens_7d: int
    share: float
    uptime_1d: float | None
    uptime_7d: float | None
    rate_limited_7d: float | None  # share of the attempts answered 429 (left out of uptime)
    latency_p50: float | None
    latency_p90: float | None
    throughput_p50: float | None
    throughput_p90: float | None


def uptime(attempts: int, failed: int, rate_limited: int) -> float | None:
    """Successful attempts over the attempts that were not rate-limited (None: none such)."""
    answered = attempts - rate_limited
    return (answered - failed) / answered if answered > 0 else None


def endpoint_stats(*, model_id: int, now: datetime | None = None) -> dict[int, EndpointStats]:
    """Figures per provider of one model over the last 7 days (uptime also over the last day).

    Cached under the rankings version, like the rankings: new traffic moves it.
    """
    end = hour_end(now)
    return rankings_cached(f"endpoint-stats:{model_id}:{end:%Y%m%d%H}", lambda: _endpoint_stats(model_id, end))


def _endpoint_stats(model_id: int, end: datetime) -> dict[int, EndpointStats]:
    week_start, day_start = end - timedelta(days=STATS_DAYS), end - timedelta(days=1)
    week = {row["provider_id"]: row for row in EndpointHour.objects.filter(
        model_id=model_id, hour__gte=week_start, hour__lt=end).values("provider_id").annotate(
        tokens=Sum(F("tokens_prompt") + F("tokens_completion")), attempts=Sum("attempts"),
        failed=Sum("failed_attempts"), limited=Sum("rate_limited_attempts"))}
    day = {row["provider_id"]: row for row in EndpointHour.objects.filter(
        model_id=model_id, hour__gte=day_start, hour__lt=end).values("provider_id").annotate(
        attempts=Sum("attempts"), failed=Sum("failed_attempts"), limited=Sum("rate_limited_attempts"))}
    counts: dict[tuple[int, int], dict[int, int]] = defaultdict(dict)
    first_day = (end - timedelta(days=STATS_DAYS)).date()
    for provider_id, metric, bucket, count in EndpointHistogram.objects.filter(
            model_id=model_id, day__gte=first_day).values("provider_id", "metric", "bucket").annotate(
            n=Sum("count")).values_list("provider_id", "metric", "bucket", "n").order_by():
        counts[(provider_id, metric)][bucket] = count
    total = sum(row["tokens"] or 0 for row in week.values())
    stats = {}
    for provider_id in set(week) | {p for p, _ in counts}:
        row = week.get(provider_id, {})
        today = day.get(provider_id, {})
        latency = counts.get((provider_id, EndpointHistogram.Metric.LATENCY), {})
        speed = counts.get((provider_id, EndpointHistogram.Metric.THROUGHPUT), {})
        tokens = row.get("tokens") or 0
        attempts = row.get("attempts") or 0
        stats[provider_id] = EndpointStats(
            provider_id=provider_id, tokens_7d=tokens, share=tokens / total if total else 0.0,
            uptime_1d=uptime(today.get("attempts") or 0, today.get("failed") or 0, today.get("limited") or 0),
            uptime_7d=uptime(attempts, row.get("failed") or 0, row.get("limited") or 0),
            rate_limited_7d=(row.get("limited") or 0) / attempts if attempts else None,
            latency_p50=histograms.percentile(latency, 0.5), latency_p90=histograms.percentile(latency, 0.9),
            throughput_p50=histograms.percentile(speed, 0.5), throughput_p90=histograms.percentile(speed, 0.9))
    return stats


@dataclass(frozen=True)
class EndpointRow:
    endpoint: Endpoint
    cheapest: bool
    stats: EndpointStats | None = None
    fastest: bool = False
    most_reliable: bool = False

    @property
    def blended(self) -> Decimal:
        return self.endpoint.prompt_price + self.endpoint.completion_price


def model_endpoints(*, model: Model) -> list[EndpointRow]:
    """The model's endpoints with live figures; the cheapest, fastest and most reliable marked."""
    endpoints = sorted(Endpoint.objects.filter(model=model).select_related("provider"),
                       key=lambda e: (e.prompt_price + e.completion_price, e.provider.name))
    stats = endpoint_stats(model_id=model.pk)
    cheapest = endpoints[0].prompt_price + endpoints[0].completion_price if endpoints else None
    speeds = [s.throughput_p50 for s in stats.values() if s.throughput_p50 is not None]
    uptimes = [s.uptime_7d for s in stats.values() if s.uptime_7d is not None]
    fastest, best_uptime = (max(speeds) if speeds else None), (max(uptimes) if uptimes else None)
    rows = []
    for e in endpoints:
        figures = stats.get(e.provider_id)
        rows.append(EndpointRow(
            e, cheapest is not None and e.prompt_price + e.completion_price == cheapest, figures,
            fastest=figures is not None and figures.throughput_p50 is not None and figures.throughput_p50 == fastest,
            most_reliable=figures is not None and figures.uptime_7d is not None and figures.uptime_7d == best_uptime))
    return rows
