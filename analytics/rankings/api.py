"""Public API: rankings, a model's endpoints with live figures, and the daily rankings dataset.

Open to anyone, so every view is a `_PublicApi`: throttled per client address (PUBLIC_API_RATE,
30 a minute by default, as OpenRouter's data API), answered with `Cache-Control: public` and an
`ETag` (a request whose If-None-Match names it gets 304 and no body).

(Longer than 400 lines: one API view per operation, each with its nested Input/Output serializers
and schema examples, all sharing `_PublicApi`'s throttle and caching.)
"""
from datetime import date, timedelta

from django.conf import settings
from django.db.models import Max
from django.http import Http404
from django.utils import timezone
from django.utils.cache import get_conditional_response, patch_cache_control, set_response_etag
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from analytics.models import IngestBatch
from core.api import FIELD_ERRORS, ErrorSerializer
from core.csvutil import csv_stream
from core.http import csv_response
from core.money import units_to_usd
from core.params import ParamError, date_param
from marketplace import selectors

from . import leaderboards as rankings
from .capabilities import CAPABILITIES, capability_ranking
from .endpoint_stats import endpoint_stats, model_endpoints
from .series import daily_top_models


class PublicApiThrottle(SimpleRateThrottle):
    """PUBLIC_API_RATE requests per client address, over every public view together."""

    scope = "public"

    def get_rate(self) -> str:
        return settings.PUBLIC_API_RATE  # read at each request (settings may change under tests)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


_PUBLIC_ERRORS = {304: None, 429: ErrorSerializer}  # not modified (no body); throttled, with Retry-After


class _PublicApi(APIView):
    """Anonymous, throttled, cacheable: a GET's 200 carries an ETag of its body and Cache-Control."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [PublicApiThrottle]

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method not in ("GET", "HEAD") or response.status_code != 200:
            return response
        patch_cache_control(response, public=True, max_age=settings.PUBLIC_API_MAX_AGE)
        if response.streaming:
            return response
        response.render()
        set_response_etag(response)
        return get_conditional_response(request, etag=response["ETag"], response=response)


def data_as_of():
    """When the public figures last changed: the newest batch the rankings refresh took in (None: none yet)."""
    return IngestBatch.objects.aggregate(at=Max("ranked_at"))["at"]


class _Known(serializers.ChoiceField):
    """A choice where an unknown value reads as the default, as the pages read it (old links keep working)."""

    def to_internal_value(self, data):
        return data if data in self.choices else self.default


class _Limit(serializers.IntegerField):
    """Rows of a ranking: a whole number brought within 1..100; anything else is refused."""

    default_error_messages = {"invalid": "a whole number from 1 to 100"}

    def to_internal_value(self, data) -> int:
        return min(max(super().to_internal_value(data), 1), 100)


class _WindowInput(serializers.Serializer):
    """What every leaderboard reads: its window and how many rows."""

    window = _Known(choices=list(rankings.WINDOWS), required=False, default="week")
    limit = _Limit(required=False, default=20, help_text="1-100")


class _RankingApi(_PublicApi):
    # A leaderboard of one kind: each subclass says which rows, with its own filters.

    class InputSerializer(_WindowInput):
        metric = _Known(choices=list(rankings.METRICS), required=False, default="tokens",
                        help_text="tokens = prompt + completion; spend = total cost in USD (BYOK excluded)")

    @extend_schema_serializer(component_name="RankingOutput")
    class OutputSerializer(serializers.Serializer):
        """A ranking as the API answers it: the window it covers and its rows."""

        @extend_schema_serializer(component_name="RankOutput")
        class RankSerializer(serializers.Serializer):
            rank = serializers.IntegerField()
            slug = serializers.CharField()
            name = serializers.CharField()
            value = serializers.CharField(help_text="tokens (integer) or spend (exact USD decimal string)")
            previous = serializers.CharField(allow_null=True, help_text="the same in the preceding window")
            change = serializers.FloatField(allow_null=True)
            share = serializers.FloatField()

        window = serializers.ChoiceField(choices=list(rankings.WINDOWS))
        metric = serializers.ChoiceField(choices=list(rankings.METRICS))
        start = serializers.DateTimeField(allow_null=True, help_text="null for the `all` window")
        end = serializers.DateTimeField()
        unpriced_requests = serializers.IntegerField(
            allow_null=True, help_text="by spend: the window's requests left out, not priced (no catalog price, "
                                       "so no spend); null by tokens, which counts them")
        unpriced_share = serializers.FloatField(
            allow_null=True, help_text="by spend: unpriced_requests as a share of the ranked traffic's requests")
        results = RankSerializer(many=True)

    coverage_of = "models"  # which traffic the leaderboard ranks (rankings.ranking_coverage)

    def rows(self, window, metric, limit, params: dict):
        raise NotImplementedError

    def coverage(self, window, params: dict) -> rankings.Coverage:
        return rankings.ranking_coverage(window=window, of=self.coverage_of)

    def get(self, request):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        window = rankings.window_parse(params.validated_data["window"])
        metric, limit = params.validated_data["metric"], params.validated_data["limit"]
        rows = self.rows(window, metric, limit, params.validated_data)

        def money(value):
            return None if value is None else (str(units_to_usd(value)) if metric == "spend" else str(value))

        coverage = self.coverage(window, params.validated_data) if metric == "spend" else None
        return Response(self.OutputSerializer({
            "window": window.name, "metric": metric, "start": window.start, "end": window.end,
            "unpriced_requests": coverage.unpriced_requests if coverage else None,
            "unpriced_share": round(coverage.unpriced_share, 6) if coverage else None,
            "results": [{"rank": r.rank, "slug": r.slug, "name": r.name, "value": money(r.value),
                         "previous": money(r.previous), "change": r.change, "share": round(r.share, 6)}
                        for r in rows]}).data)


_EXAMPLE = OpenApiExample("week by tokens", value={
    "window": "week", "metric": "tokens", "start": "2026-11-18T05:00:00Z", "end": "2026-11-25T05:00:00Z",
    "unpriced_requests": None, "unpriced_share": None,
    "results": [{"rank": 1, "slug": "anthropic/claude-sonnet-4", "name": "Claude Sonnet 4", "value": "1204000000",
                 "previous": "1100000000", "change": 0.0945, "share": 0.21}]})
_RANKING = {"responses": {200: _RankingApi.OutputSerializer, 400: FIELD_ERRORS, **_PUBLIC_ERRORS}}


class ModelRankingApi(_RankingApi):
    class InputSerializer(_RankingApi.InputSerializer):
        category = serializers.CharField(required=False, default="", allow_blank=True, help_text="app category slug")

    @extend_schema(operation_id="rankings_models", summary="Top models", parameters=[InputSerializer],
                   examples=[_EXAMPLE], **_RANKING)
    def get(self, request):
        return super().get(request)

    def rows(self, window, metric, limit, params: dict):
        return rankings.ranking_models(window=window, metric=metric, limit=limit,
                                       category=params["category"][:64])

    def coverage(self, window, params: dict) -> rankings.Coverage:
        return rankings.ranking_coverage(window=window, category=params["category"][:64])


class AuthorRankingApi(_RankingApi):
    @extend_schema(operation_id="rankings_authors", summary="Top authors (labs)",
                   parameters=[_RankingApi.InputSerializer], **_RANKING)
    def get(self, request):
        return super().get(request)

    def rows(self, window, metric, limit, params: dict):
        return rankings.ranking_authors(window=window, metric=metric, limit=limit)


class ProviderRankingApi(_RankingApi):
    @extend_schema(operation_id="rankings_providers", summary="Top providers",
                   parameters=[_RankingApi.InputSerializer], **_RANKING)
    def get(self, request):
        return super().get(request)

    def rows(self, window, metric, limit, params: dict):
        return rankings.ranking_providers(window=window, metric=metric, limit=limit)


class AppRankingApi(_RankingApi):
    coverage_of = "apps"

    class InputSerializer(_RankingApi.InputSerializer):
        trending = serializers.BooleanField(required=False, default=False,
                                            help_text="rank by growth against the preceding window")

    @extend_schema(operation_id="rankings_apps", summary="Top public apps (popular, or trending)",
                   parameters=[InputSerializer], **_RANKING)
    def get(self, request):
        return super().get(request)

    def rows(self, window, metric, limit, params: dict):
        return rankings.ranking_apps(window=window, metric=metric, limit=limit, trending=params["trending"])


class CapabilityRankingApi(_PublicApi):
    """Listed models by one capability: tool calls, images, long prompts, reasoning or cache hits."""

    class InputSerializer(_WindowInput):
        capability = serializers.ChoiceField(choices=list(CAPABILITIES))

    @extend_schema_serializer(component_name="CapabilityRankingOutput")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="CapabilityRankOutput")
        class RankSerializer(serializers.Serializer):
            rank = serializers.IntegerField()
            slug = serializers.CharField()
            name = serializers.CharField()
            value = serializers.IntegerField(help_text="the count (or the share's numerator: tokens)")
            base = serializers.IntegerField(help_text="the model's requests, completion or prompt tokens")
            rate = serializers.FloatField(allow_null=True, help_text="value / base")
            previous = serializers.IntegerField(allow_null=True, help_text="the value in the preceding window")
            change = serializers.FloatField(allow_null=True, help_text="of the count, or of the rate for shares")
            share = serializers.FloatField(help_text="of the window's total value")

        capability = serializers.ChoiceField(choices=list(CAPABILITIES))
        label = serializers.CharField()
        measure = serializers.CharField()
        ranked_by = serializers.ChoiceField(choices=["count", "share"])
        window = serializers.ChoiceField(choices=list(rankings.WINDOWS))
        start = serializers.DateTimeField(allow_null=True)
        end = serializers.DateTimeField()
        results = RankSerializer(many=True)

    @extend_schema(operation_id="rankings_capabilities", summary="Top models by a capability",
                   parameters=[InputSerializer],
                   responses={200: OutputSerializer, 400: FIELD_ERRORS, **_PUBLIC_ERRORS})
    def get(self, request):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        name = params.validated_data["capability"]
        spec = CAPABILITIES[name]
        window = rankings.window_parse(params.validated_data["window"])
        rows = capability_ranking(capability=name, window=window, limit=params.validated_data["limit"])
        return Response(self.OutputSerializer({
            "capability": name, "label": spec.label, "measure": spec.measure,
            "ranked_by": "share" if spec.by_share else "count", "window": window.name, "start": window.start,
            "end": window.end,
            "results": [{"rank": r.rank, "slug": r.slug, "name": r.name, "value": r.value, "base": r.base,
                         "rate": r.rate, "previous": r.previous, "change": r.change, "share": round(r.share, 6)}
                        for r in rows]}).data)


class ModelEndpointsApi(_PublicApi):
    @extend_schema_serializer(component_name="ModelEndpointsOutput")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="EndpointOutput")
        class EndpointSerializer(serializers.Serializer):
            provider = serializers.CharField()
            in_catalog = serializers.BooleanField(help_text="false: seen serving the model, no catalog price")
            prompt_price_per_million = serializers.DecimalField(max_digits=24, decimal_places=9, allow_null=True,
                                                                help_text="null: unknown")
            completion_price_per_million = serializers.DecimalField(max_digits=24, decimal_places=9,
                                                                    allow_null=True, help_text="null: unknown")
            context_length = serializers.IntegerField(allow_null=True)
            max_output = serializers.IntegerField(allow_null=True)
            latency_p50_ms = serializers.FloatField(allow_null=True)
            latency_p75_ms = serializers.FloatField(allow_null=True)
            latency_p90_ms = serializers.FloatField(allow_null=True)
            latency_p99_ms = serializers.FloatField(allow_null=True)
            throughput_p50 = serializers.FloatField(allow_null=True)
            throughput_p75 = serializers.FloatField(allow_null=True)
            throughput_p90 = serializers.FloatField(allow_null=True)
            throughput_p99 = serializers.FloatField(allow_null=True)
            uptime_1h = serializers.FloatField(allow_null=True)
            uptime_1d = serializers.FloatField(allow_null=True)
            uptime_7d = serializers.FloatField(allow_null=True, help_text="429 answers left out")
            rate_limited_7d = serializers.FloatField(allow_null=True, help_text="share of attempts answered 429")
            share_7d = serializers.FloatField(allow_null=True)
            cheapest = serializers.BooleanField()
            fastest = serializers.BooleanField()
            most_reliable = serializers.BooleanField()

        model = serializers.CharField(help_text="the model's slug")
        endpoints = EndpointSerializer(many=True)

    @extend_schema(operation_id="model_endpoints", summary="A model's endpoints with live figures (last 7 days)",
                   responses={200: OutputSerializer, 404: ErrorSerializer, **_PUBLIC_ERRORS})
    def get(self, request, author: str, name: str):
        model = selectors.model_get(author=author, name=name)
        if model is None:
            raise Http404("No such model")
        hour, day = (endpoint_stats(model_id=model.pk, window=w) for w in ("1h", "1d"))
        out = []
        for row in model_endpoints(model=model):
            s, e = row.stats, row.endpoint
            latency, speed = (s.latency, s.throughput) if s else ((None,) * 4, (None,) * 4)
            out.append({
                "provider": row.provider.name, "in_catalog": e is not None,
                "prompt_price_per_million": e.prompt_price * 1_000_000 if e else None,
                "completion_price_per_million": e.completion_price * 1_000_000 if e else None,
                "context_length": e.context_length if e else None, "max_output": e.max_output if e else None,
                **{f"latency_p{q}_ms": v for q, v in zip((50, 75, 90, 99), latency, strict=True)},
                **{f"throughput_p{q}": v for q, v in zip((50, 75, 90, 99), speed, strict=True)},
                "uptime_1h": getattr(hour.get(row.provider.pk), "uptime", None),
                "uptime_1d": getattr(day.get(row.provider.pk), "uptime", None),
                "uptime_7d": s.uptime if s else None, "rate_limited_7d": s.rate_limited if s else None,
                "share_7d": s.share if s else None, "cheapest": row.cheapest, "fastest": row.fastest,
                "most_reliable": row.most_reliable})
        return Response(self.OutputSerializer({"model": model.slug, "endpoints": out}).data)


DAILY_COLUMNS = ("date", "rank", "model", "tokens_prompt", "tokens_completion", "tokens", "spend_usd",
                 "price_per_million_usd")


def _daily_values(r) -> tuple:
    return (r.date, r.rank, r.model, r.tokens_prompt, r.tokens_completion, r.tokens, f"{units_to_usd(r.spend_units):f}",
            None if r.price_per_million is None else f"{r.price_per_million:f}")
LICENCE = "CC-BY-4.0, cite Tokengrid"
DAILY_METHOD = ("Per UTC day, the 50 listed models with the most tokens (prompt + completion, BYOK included) "
                "over every ingested request, ties by slug; the other listed models summed in one `other` row.")
MAX_DAYS = 366


class _Day(serializers.DateField):
    """A YYYY-MM-DD date within core.params' range (the database's dates)."""

    def to_internal_value(self, value):
        try:
            return date_param(value)
        except ParamError as error:
            raise ValidationError(str(error)) from None


class _DailyRangeInput(serializers.Serializer):
    """The dataset's range: the 30 days to `end` (today) unless given, at most MAX_DAYS."""

    start = _Day(required=False, allow_null=True, default=None, help_text="default: 29 days before end")
    end = _Day(required=False, allow_null=True, default=None, help_text="default: today (UTC)")

    def validate(self, attrs: dict) -> dict:
        end = attrs["end"] or timezone.now().date()
        start = attrs["start"] or end - timedelta(days=29)
        if start > end or (end - start).days >= MAX_DAYS:
            raise ValidationError({"start": f"start must be on or before end, at most {MAX_DAYS} days apart"})
        return {"start": start, "end": end}


def _date_range(request) -> tuple[date, date]:
    params = _DailyRangeInput(data=request.query_params)
    params.is_valid(raise_exception=True)
    return params.validated_data["start"], params.validated_data["end"]


class DailyRankingsApi(_PublicApi):
    """Like OpenRouter's data API: per day, the top 50 models by tokens and an `other` row."""

    InputSerializer = _DailyRangeInput

    @extend_schema_serializer(component_name="DailyOutput")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="DailyRowOutput")
        class RowSerializer(serializers.Serializer):
            date = serializers.DateField()
            rank = serializers.IntegerField(allow_null=True, help_text="null on the `other` row")
            model = serializers.CharField()
            tokens_prompt = serializers.IntegerField()
            tokens_completion = serializers.IntegerField()
            tokens = serializers.IntegerField()
            spend_usd = serializers.DecimalField(max_digits=30, decimal_places=10, help_text="BYOK excluded")
            price_per_million_usd = serializers.DecimalField(
                max_digits=30, decimal_places=6, allow_null=True,
                help_text="spend / tokens not BYOK, per 1M tokens (the token price index's ingredient)")

        @extend_schema_serializer(component_name="DatasetMeta")
        class MetaSerializer(serializers.Serializer):
            as_of = serializers.DateTimeField(allow_null=True,
                                              help_text="when the figures last changed (null: nothing ingested)")
            licence = serializers.CharField()
            source = serializers.CharField()
            method = serializers.CharField()

        start = serializers.DateField()
        end = serializers.DateField()
        licence = serializers.CharField(help_text="as meta.licence (kept for readers of the first version)")
        meta = MetaSerializer()
        rows = RowSerializer(many=True)

    @extend_schema(operation_id="rankings_daily", summary="Daily rankings dataset (JSON; CSV at daily.csv)",
                   parameters=[InputSerializer],
                   responses={200: OutputSerializer, 400: FIELD_ERRORS, **_PUBLIC_ERRORS},
                   examples=[OpenApiExample("one day", value={"start": "2026-11-01", "end": "2026-11-01", "rows": [
                       {"date": "2026-11-01", "rank": 1, "model": "openai/gpt-4o", "tokens_prompt": 9000,
                        "tokens_completion": 1000, "tokens": 10000, "spend_usd": "0.0325000000",
                        "price_per_million_usd": "3.250000"},
                       {"date": "2026-11-01", "rank": None, "model": "other", "tokens_prompt": 50,
                        "tokens_completion": 5, "tokens": 55, "spend_usd": "0.0000000000",
                        "price_per_million_usd": "0.000000"}]})])
    def get(self, request):
        start, end = _date_range(request)
        rows = daily_top_models(start=start, end=end)
        return Response(self.OutputSerializer({
            "start": start, "end": end, "licence": LICENCE,
            "meta": {"as_of": data_as_of(), "licence": LICENCE, "source": "Tokengrid, from routed-traffic logs",
                     "method": DAILY_METHOD},
            "rows": [dict(zip(DAILY_COLUMNS, _daily_values(r), strict=True)) for r in rows]}).data)


class DailyRankingsCsvApi(_PublicApi):
    @extend_schema(operation_id="rankings_daily_csv", summary="Daily rankings dataset as CSV",
                   parameters=[_DailyRangeInput], responses={(200, "text/csv"): OpenApiTypes.STR, 400: FIELD_ERRORS, 429: ErrorSerializer})
    def get(self, request):
        start, end = _date_range(request)
        rows = (tuple("" if v is None else v for v in _daily_values(r)) for r in daily_top_models(start=start, end=end))
        return csv_response(csv_stream(DAILY_COLUMNS, rows), filename=f"tokengrid-daily-{start}-{end}.csv")
