"""Public API: rankings, a model's endpoints with live figures, and the daily rankings dataset."""
from datetime import date, timedelta

from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import FIELD_ERRORS, ErrorSerializer
from core.csvutil import csv_stream
from core.http import csv_response
from core.money import units_to_usd
from core.params import ParamError, date_param
from marketplace import selectors

from . import leaderboards as rankings
from .endpoint_stats import model_endpoints
from .series import daily_top_models

RANKING_PARAMETERS = [
    OpenApiParameter("window", str, enum=list(rankings.WINDOWS), default="week"),
    OpenApiParameter("metric", str, enum=list(rankings.METRICS), default="tokens",
                     description="tokens = prompt + completion; spend = total cost in USD (BYOK excluded)"),
    OpenApiParameter("limit", int, default=20, description="1-100"),
]


class RankOutput(serializers.Serializer):
    rank = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    value = serializers.CharField(help_text="tokens (integer) or spend (exact USD decimal string)")
    previous = serializers.CharField(allow_null=True, help_text="the same in the preceding window")
    change = serializers.FloatField(allow_null=True)
    share = serializers.FloatField()


class RankingOutput(serializers.Serializer):
    """A ranking as the API answers it: the window it covers and its rows."""

    window = serializers.ChoiceField(choices=list(rankings.WINDOWS))
    metric = serializers.ChoiceField(choices=list(rankings.METRICS))
    start = serializers.DateTimeField(allow_null=True, help_text="null for the `all` window")
    end = serializers.DateTimeField()
    results = RankOutput(many=True)


def _rank_output(rows: list[rankings.RankRow], metric: str) -> list[dict]:
    def money(value):
        return None if value is None else (str(units_to_usd(value)) if metric == "spend" else str(value))

    return [{"rank": r.rank, "slug": r.slug, "name": r.name, "value": money(r.value), "previous": money(r.previous),
             "change": r.change, "share": round(r.share, 6)} for r in rows]


class _RankingApi(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    kind = ""

    def rows(self, window, metric, limit, request):
        raise NotImplementedError

    def get(self, request):
        window = rankings.window_parse(request.query_params.get("window"))
        metric = rankings.metric_parse(request.query_params.get("metric"))
        try:
            limit = min(max(int(request.query_params.get("limit", 20)), 1), 100)
        except ValueError:
            raise ValidationError({"limit": "a whole number from 1 to 100"}) from None
        rows = self.rows(window, metric, limit, request)
        return Response({"window": window.name, "metric": metric, "start": window.start, "end": window.end,
                         "results": _rank_output(rows, metric)})


_EXAMPLE = OpenApiExample("week by tokens", value={
    "window": "week", "metric": "tokens", "start": "2026-11-18T05:00:00Z", "end": "2026-11-25T05:00:00Z",
    "results": [{"rank": 1, "slug": "anthropic/claude-sonnet-4", "name": "Claude Sonnet 4", "value": "1204000000",
                 "previous": "1100000000", "change": 0.0945, "share": 0.21}]})


class ModelRankingApi(_RankingApi):
    @extend_schema(operation_id="rankings_models", summary="Top models",
                   parameters=[*RANKING_PARAMETERS, OpenApiParameter("category", str, description="app category slug")],
                   responses={200: RankingOutput, 400: FIELD_ERRORS}, examples=[_EXAMPLE])
    def get(self, request):
        return super().get(request)

    def rows(self, window, metric, limit, request):
        return rankings.ranking_models(window=window, metric=metric, limit=limit,
                                       category=request.query_params.get("category", "")[:64])


class AuthorRankingApi(_RankingApi):
    @extend_schema(operation_id="rankings_authors", summary="Top authors (labs)", parameters=RANKING_PARAMETERS,
                   responses={200: RankingOutput, 400: FIELD_ERRORS})
    def get(self, request):
        return super().get(request)

    def rows(self, window, metric, limit, request):
        return rankings.ranking_authors(window=window, metric=metric, limit=limit)


class ProviderRankingApi(_RankingApi):
    @extend_schema(operation_id="rankings_providers", summary="Top providers", parameters=RANKING_PARAMETERS,
                   responses={200: RankingOutput, 400: FIELD_ERRORS})
    def get(self, request):
        return super().get(request)

    def rows(self, window, metric, limit, request):
        return rankings.ranking_providers(window=window, metric=metric, limit=limit)


class AppRankingApi(_RankingApi):
    @extend_schema(operation_id="rankings_apps", summary="Top public apps (popular, or trending)",
                   parameters=[*RANKING_PARAMETERS, OpenApiParameter("trending", bool, default=False)],
                   responses={200: RankingOutput, 400: FIELD_ERRORS})
    def get(self, request):
        return super().get(request)

    def rows(self, window, metric, limit, request):
        trending = request.query_params.get("trending", "").lower() in ("1", "true", "yes")
        return rankings.ranking_apps(window=window, metric=metric, limit=limit, trending=trending)


class EndpointOutput(serializers.Serializer):
    provider = serializers.CharField()
    prompt_price_per_million = serializers.DecimalField(max_digits=24, decimal_places=9)
    completion_price_per_million = serializers.DecimalField(max_digits=24, decimal_places=9)
    context_length = serializers.IntegerField(allow_null=True)
    latency_p50_ms = serializers.FloatField(allow_null=True)
    latency_p90_ms = serializers.FloatField(allow_null=True)
    throughput_p50 = serializers.FloatField(allow_null=True)
    throughput_p90 = serializers.FloatField(allow_null=True)
    uptime_1d = serializers.FloatField(allow_null=True)
    uptime_7d = serializers.FloatField(allow_null=True)
    share_7d = serializers.FloatField(allow_null=True)
    cheapest = serializers.BooleanField()
    fastest = serializers.BooleanField()
    most_reliable = serializers.BooleanField()


class ModelEndpointsOutput(serializers.Serializer):
    model = serializers.CharField(help_text="the model's slug")
    endpoints = EndpointOutput(many=True)


class ModelEndpointsApi(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(operation_id="model_endpoints", summary="A model's endpoints with live figures (last 7 days)",
                   responses={200: ModelEndpointsOutput, 404: ErrorSerializer})
    def get(self, request, author: str, name: str):
        model = selectors.model_get(author=author, name=name)
        if model is None:
            raise Http404("No such model")
        out = []
        for row in model_endpoints(model=model):
            s = row.stats
            out.append({
                "provider": row.endpoint.provider.name,
                "prompt_price_per_million": row.endpoint.prompt_price * 1_000_000,
                "completion_price_per_million": row.endpoint.completion_price * 1_000_000,
                "context_length": row.endpoint.context_length,
                "latency_p50_ms": s.latency_p50 if s else None, "latency_p90_ms": s.latency_p90 if s else None,
                "throughput_p50": s.throughput_p50 if s else None, "throughput_p90": s.throughput_p90 if s else None,
                "uptime_1d": s.uptime_1d if s else None, "uptime_7d": s.uptime_7d if s else None,
                "share_7d": s.share if s else None, "cheapest": row.cheapest, "fastest": row.fastest,
                "most_reliable": row.most_reliable})
        return Response({"model": model.slug, "endpoints": EndpointOutput(out, many=True).data})


class DailyRowOutput(serializers.Serializer):
    date = serializers.DateField()
    rank = serializers.IntegerField(allow_null=True, help_text="null on the `other` row")
    model = serializers.CharField()
    tokens_prompt = serializers.IntegerField()
    tokens_completion = serializers.IntegerField()
    tokens = serializers.IntegerField()


class DailyOutput(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    licence = serializers.CharField()
    rows = DailyRowOutput(many=True)


DAILY_COLUMNS = ("date", "rank", "model", "tokens_prompt", "tokens_completion", "tokens")
MAX_DAYS = 366


def _date_range(request) -> tuple[date, date]:
    """The dataset's range: dates within core.params' range, at most MAX_DAYS; a clear 400 otherwise."""
    try:
        end = date_param(request.query_params.get("end")) or timezone.now().date()
        start = date_param(request.query_params.get("start")) or end - timedelta(days=29)
    except ParamError as error:
        raise ValidationError({"start": str(error)}) from None
    if start > end or (end - start).days >= MAX_DAYS:
        raise ValidationError({"start": f"start must be on or before end, at most {MAX_DAYS} days apart"})
    return start, end


class DailyRankingsApi(APIView):
    """Like OpenRouter's data API: per day, the top 50 models by tokens and an `other` row."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(operation_id="rankings_daily", summary="Daily rankings dataset (JSON; CSV at daily.csv)",
                   parameters=[OpenApiParameter("start", OpenApiTypes.DATE), OpenApiParameter("end", OpenApiTypes.DATE)],
                   responses={200: DailyOutput, 400: FIELD_ERRORS},
                   examples=[OpenApiExample("one day", value={"start": "2026-11-01", "end": "2026-11-01", "rows": [
                       {"date": "2026-11-01", "rank": 1, "model": "openai/gpt-4o", "tokens_prompt": 9000,
                        "tokens_completion": 1000, "tokens": 10000},
                       {"date": "2026-11-01", "rank": None, "model": "other", "tokens_prompt": 50,
                        "tokens_completion": 5, "tokens": 55}]})])
    def get(self, request):
        start, end = _date_range(request)
        rows = daily_top_models(start=start, end=end)
        return Response({"start": start, "end": end, "licence": "CC-BY-4.0, cite Tokengrid",
                         "rows": [dict(zip(DAILY_COLUMNS, (r.date, r.rank, r.model, r.tokens_prompt,
                                                           r.tokens_completion, r.tokens), strict=True))
                                  for r in rows]})


class DailyRankingsCsvApi(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(operation_id="rankings_daily_csv", summary="Daily rankings dataset as CSV",
                   parameters=[OpenApiParameter("start", OpenApiTypes.DATE), OpenApiParameter("end", OpenApiTypes.DATE)],
                   responses={(200, "text/csv"): OpenApiTypes.STR, 400: FIELD_ERRORS})
    def get(self, request):
        start, end = _date_range(request)
        rows = ((r.date, r.rank if r.rank is not None else "", r.model, r.tokens_prompt, r.tokens_completion, r.tokens)
                for r in daily_top_models(start=start, end=end))
        return csv_response(csv_stream(DAILY_COLUMNS, rows), filename=f"tokengrid-daily-{start}-{end}.csv")
