"""The account API: usage (the rows of usage.csv, as JSON), the generation log and the savings advisor.

Authenticated by an account API token (`Authorization: Bearer tg_…`, made on /account/tokens/);
every answer is about the token's account only.
"""
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from billing.access import AccountApi, api_account
from core.api import FIELD_ERRORS, ClampedIntegerField, ErrorSerializer, ParamRefused, usd
from core.params import ParamError
from core.timerange import TimeRange, date_range_parse, days_span, zone_label

from . import exports, generation_log, params, savings

PAGE_DEFAULT, PAGE_MAX = 50, 500


class UsageInputSerializer(serializers.Serializer):
    """The report's range (dates of the account's zone, `context["zone"]`) and its grouping, parsed once."""

    start = serializers.DateField(required=False, help_text="first UTC date (default: 29 days before end)")
    end = serializers.DateField(required=False, help_text="last UTC date, included (default: today)")
    group_by = serializers.CharField(required=False, default=",".join(params.REPORT_DEFAULT),
                                     help_text=f"comma list of {', '.join(params.REPORT_GROUPS)}")

    def validate(self, attrs: dict) -> dict:
        given = [attrs[f].isoformat() if attrs.get(f) else None for f in ("start", "end")]
        try:
            first, last = date_range_parse(*given, zone=self.context["zone"])
        except ParamError as error:
            raise ParamRefused(str(error)) from None
        return {"start": first, "end": last, "group_by": params.report_groups_parse(attrs["group_by"])}


class UsageRowSerializer(serializers.Serializer):
    date = serializers.CharField(required=False)
    week = serializers.CharField(required=False)
    month = serializers.CharField(required=False)
    model = serializers.CharField(required=False)
    api_key = serializers.CharField(required=False)
    api_key_name = serializers.CharField(required=False)
    provider = serializers.CharField(required=False)
    app = serializers.CharField(required=False)
    app_origin = serializers.CharField(required=False)
    user = serializers.CharField(required=False, allow_blank=True, help_text='end user; "" for none')
    tag = serializers.CharField(required=False, allow_blank=True,
                                help_text='one tag; "" for no tags. A request with two tags counts in both rows')
    requests = serializers.IntegerField()
    failures = serializers.IntegerField()
    tokens_prompt = serializers.IntegerField()
    tokens_completion = serializers.IntegerField()
    tokens_reasoning = serializers.IntegerField()
    tokens_cached = serializers.IntegerField()
    tokens_total = serializers.IntegerField()
    byok_tokens = serializers.IntegerField()
    spend_usd = serializers.DecimalField(max_digits=30, decimal_places=10)
    unpriced_requests = serializers.IntegerField(
        help_text="requests not priced yet (the catalog has no price): in requests and tokens, not in spend_usd")


class UsageReportSerializer(serializers.Serializer):
    start = serializers.DateField(help_text="first date, in `time_zone`")
    end = serializers.DateField(help_text="last date, included, in `time_zone`")
    time_zone = serializers.CharField(help_text="the account's time zone (IANA name): its dates, weeks and months")
    day_starts_at = serializers.CharField(
        allow_null=True, help_text='"00:30" for a zone such as Asia/Kolkata whose midnight falls inside a UTC '
                                   "hour: usage is kept per UTC hour, so its days run from that time; null otherwise")
    group_by = serializers.ListField(child=serializers.CharField())
    rows = UsageRowSerializer(many=True)


class AccountGenerationSerializer(serializers.Serializer):
    id = serializers.CharField()
    created_at = serializers.DateTimeField()
    model_id = serializers.IntegerField()
    provider_id = serializers.IntegerField()
    app_id = serializers.IntegerField(allow_null=True)
    api_key_id = serializers.IntegerField(allow_null=True)
    tokens_prompt = serializers.IntegerField()
    tokens_completion = serializers.IntegerField()
    tokens_reasoning = serializers.IntegerField()
    tokens_cached = serializers.IntegerField()
    total_cost_usd = serializers.SerializerMethodField()
    is_byok = serializers.BooleanField()
    latency = serializers.IntegerField(allow_null=True)
    generation_time = serializers.IntegerField(allow_null=True)
    end_user = serializers.CharField(allow_blank=True)
    session_id = serializers.CharField(allow_blank=True)
    tags = serializers.SerializerMethodField()
    status = serializers.IntegerField()
    finish_reason = serializers.CharField()
    provider_responses = serializers.JSONField(allow_null=True)

    def get_tags(self, obj) -> list[str]:
        return [tag for tag in obj.tags.split(",") if tag]

    def get_total_cost_usd(self, obj) -> str:
        return usd(obj.cost_units)


class GenerationPageSerializer(serializers.Serializer):
    results = AccountGenerationSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="pass as `after` for the next (older) page")

    def to_representation(self, page: generation_log.LogPage) -> dict:
        return super().to_representation({"results": page.rows, "next": page.next_cursor})


class GenerationsInputSerializer(serializers.Serializer):
    """The page size and cursor, and the log's filter (generation_log.log_filter_parse, in the account's
    zone, `context["zone"]`) as `log_filter`. The schema lists the parameters one by one (GenerationsApi)."""

    limit = ClampedIntegerField(low=1, high=PAGE_MAX, required=False, default=PAGE_DEFAULT)

    def validate(self, attrs: dict) -> dict:
        # The cursor as sent: a mangled one reads as the first page (generation_log.cursor_decode).
        attrs["after"] = self.initial_data.get("after")
        try:  # repeated parameters (model=1&model=2): the filter reads the whole query string
            attrs["log_filter"] = generation_log.log_filter_parse(self.initial_data, zone=self.context["zone"])
        except ParamError as error:
            raise ParamRefused(str(error)) from None
        return attrs


class UsageApi(AccountApi):
    InputSerializer = UsageInputSerializer
    OutputSerializer = UsageReportSerializer

    @extend_schema(
        operation_id="account_usage", tags=["account"],
        parameters=[InputSerializer], responses={200: OutputSerializer, 400: FIELD_ERRORS, 401: ErrorSerializer},
        examples=[OpenApiExample("a day", value={
            "start": "2026-11-01", "end": "2026-11-01", "time_zone": "UTC", "day_starts_at": None,
            "group_by": ["day", "model", "api_key"],
            "rows": [{"date": "2026-11-01", "model": "openai/gpt-5", "api_key": "key_91c2", "api_key_name": "",
                      "requests": 12, "failures": 0, "tokens_prompt": 4200, "tokens_completion": 900,
                      "tokens_reasoning": 300, "tokens_cached": 1000, "tokens_total": 5100, "byok_tokens": 0,
                      "spend_usd": "0.0142500000", "unpriced_requests": 0}]}, response_only=True)],
        description="Usage of the token's account per group over the account's days (its time zone, UTC unless "
                    "set on the account's settings page): the rows of usage.csv.")
    def get(self, request):
        account = api_account(request)
        zone = account.zone
        query = self.InputSerializer(data=request.query_params, context={"zone": zone})
        query.is_valid(raise_exception=True)
        first, last, group_by = (query.validated_data[name] for name in ("start", "end", "group_by"))
        header = exports.usage_csv_header(group_by)
        rows = exports.usage_report(account_id=account.pk, first=first, last=last, group_by=group_by, zone=zone)
        return Response(self.OutputSerializer({
            "start": first, "end": last, "time_zone": zone_label(zone),
            "day_starts_at": TimeRange("report", *days_span(first, last, zone), True, zone=zone).day_starts_at,
            "group_by": list(group_by), "rows": [dict(zip(header, row, strict=True)) for row in rows]}).data)


class GenerationsApi(AccountApi):
    InputSerializer = GenerationsInputSerializer
    OutputSerializer = GenerationPageSerializer

    @extend_schema(
        operation_id="account_generations", tags=["account"],
        responses={200: OutputSerializer, 400: FIELD_ERRORS, 401: ErrorSerializer},
        parameters=[OpenApiParameter(name, int, many=True, description=f"{name} id; repeated: any of them")
                    for name in ("model", "api_key", "provider", "app")] + [
            OpenApiParameter("user", str, many=True, description='end user; repeated: any of them; empty: none'),
            OpenApiParameter("tag", str, many=True, description="a tag; repeated: rows with any of them"),
            OpenApiParameter("session", str, description="session id, exact; empty: none"),
            OpenApiParameter("id", str, description="one generation id of this account (exact)"),
            OpenApiParameter("status", str, enum=list(generation_log.STATUSES)),
            OpenApiParameter("start", str, description="first date in the account's time zone, YYYY-MM-DD"),
            OpenApiParameter("end", str, description="last date in the account's time zone, included"),
            OpenApiParameter("after", str, description="the `next` cursor of the previous page"),
            OpenApiParameter("limit", int, description=f"rows per page, at most {PAGE_MAX} (default {PAGE_DEFAULT})")],
        description="The token's account's generations, newest first, paged by cursor.")
    def get(self, request):
        account = api_account(request)
        query = self.InputSerializer(data=request.query_params, context={"zone": account.zone})
        query.is_valid(raise_exception=True)
        data = query.validated_data
        page = generation_log.generations_page(account_id=account.pk, log_filter=data["log_filter"],
                                               after=data["after"], size=data["limit"])
        return Response(self.OutputSerializer(page).data)


class SavingsApi(AccountApi):
    """Answer the savings advisor: the top models against their cheapest reliable provider."""

    @extend_schema_serializer(component_name="AccountSavings")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="ModelSaving")
        class ModelSerializer(serializers.Serializer):
            model = serializers.CharField()
            paid_usd = serializers.DecimalField(max_digits=30, decimal_places=10, help_text="spend, BYOK excluded")
            provider = serializers.CharField(allow_null=True, help_text="the cheapest provider with uptime ≥ 99%")
            provider_uptime = serializers.FloatField(allow_null=True)
            alternative_usd = serializers.DecimalField(
                max_digits=30, decimal_places=10, allow_null=True,
                help_text="the same tokens at that provider's prices in force; null: no priced alternative")
            saving_usd = serializers.DecimalField(max_digits=30, decimal_places=10, allow_null=True,
                                                  help_text="paid - alternative (negative: it would cost more)")
            no_alternative_reason = serializers.CharField(allow_null=True)

            def to_representation(self, row: savings.ModelSaving) -> dict:
                return super().to_representation({
                    "model": row.model, "paid_usd": usd(row.paid_units), "provider": row.provider,
                    "provider_uptime": row.uptime, "alternative_usd": usd(row.alternative_units),
                    "saving_usd": usd(row.saving_units), "no_alternative_reason": row.reason})

        start = serializers.DateField()
        end = serializers.DateField(help_text="included")
        models = ModelSerializer(many=True, help_text=f"the top {savings.TOP_MODELS} models by spend")
        left_out_usd = serializers.DecimalField(max_digits=30, decimal_places=10,
                                                help_text="spend in rollup rows holding BYOK tokens, compared on "
                                                          "neither side")
        method = serializers.CharField()

        def to_representation(self, shown: savings.Savings) -> dict:
            return super().to_representation({
                "start": shown.first_day, "end": shown.last_day, "models": shown.models,
                "left_out_usd": usd(shown.left_out_units), "method": shown.method})

    @extend_schema(operation_id="account_savings", tags=["account"],
                   responses={200: OutputSerializer, 401: ErrorSerializer},
                   description="What the token's account's top models of the last 30 UTC days would have cost "
                               "at the cheapest provider of the same model with uptime ≥ 99%, at the prices in "
                               "force then.")
    def get(self, request):
        shown = savings.account_savings(account_id=api_account(request).pk)
        return Response(self.OutputSerializer(shown).data)
