"""The credits and key-limit API, authenticated by an account API token (`Authorization: Bearer tg_…`).

The gateway asks `GET /api/v1/keys/<id>` before routing a request and refuses a key whose
`remaining_usd` is 0. Only the token's account is in reach: another account's key answers 404.
"""
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from core import forecast as spend
from core.api import ClampedIntegerField, usd
from core.params import int64_fits

from . import selectors
from .access import AccountApi, api_account

RECENT_DEFAULT, RECENT_MAX = 20, 200


@extend_schema_serializer(component_name="KeyLimit")
class _KeyLimitOutput(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField(help_text="the gateway's key id")
    name = serializers.CharField()
    limit_usd = serializers.DecimalField(max_digits=30, decimal_places=10, allow_null=True,
                                         help_text="null: no limit")
    interval = serializers.ChoiceField(
        choices=["daily", "weekly", "monthly", "never"],
        help_text="days, weeks (from the account's first weekday) and months of the account's time zone: the "
                  "period of the key's hard key budget, which is its limit")
    interval_time_zone = serializers.CharField(help_text="the account's time zone: the zone of the intervals")
    usage_usd = serializers.DecimalField(max_digits=30, decimal_places=10,
                                         help_text="spend in the current interval (BYOK excluded) plus what open "
                                                   "reservations hold")
    remaining_usd = serializers.DecimalField(max_digits=30, decimal_places=10, allow_null=True)
    exhausted = serializers.BooleanField(help_text="true when the key has reached its limit")
    interval_start = serializers.DateTimeField(allow_null=True)
    resets_at = serializers.DateTimeField(allow_null=True, help_text="null for `never`")

    def to_representation(self, limit: selectors.KeyLimit) -> dict:
        return super().to_representation({
            "id": limit.key.pk, "key": limit.key.external_id, "name": limit.key.name,
            "limit_usd": usd(limit.limit_units), "interval": limit.interval, "usage_usd": usd(limit.usage_units),
            "remaining_usd": usd(limit.remaining_units), "exhausted": limit.exhausted,
            "interval_start": limit.interval_start, "resets_at": limit.resets_at,
            "interval_time_zone": limit.time_zone})


class KeyLimitApi(AccountApi):
    """Answer the gateway: one key's limit and usage."""

    OutputSerializer = _KeyLimitOutput

    @extend_schema(operation_id="key_limit", tags=["account"], responses=OutputSerializer,
                   description="A key's limit (its hard key budget), its usage in the current interval of the "
                               "account's zone, what remains and when it resets; 404 for keys of other accounts.")
    def get(self, request, key_id: int):
        account = api_account(request)
        # An id past 64 bits names no key; the database would refuse to compare it.
        limits = selectors.key_limits(account_id=account.pk, key_ids=[key_id]) if int64_fits(key_id) else []
        if not limits:
            raise Http404
        return Response(self.OutputSerializer(limits[0]).data)


class KeyLimitListApi(AccountApi):
    """List every key of the account with its limit and usage."""

    OutputSerializer = _KeyLimitOutput  # the same answer per key as KeyLimitApi's

    @extend_schema(operation_id="key_limits", tags=["account"], responses=OutputSerializer(many=True),
                   description="Every key of the token's account with its limit and usage.")
    def get(self, request):
        limits = selectors.key_limits(account_id=api_account(request).pk)
        return Response(self.OutputSerializer(limits, many=True).data)


class CreditsApi(AccountApi):
    """Answer the account's balance and latest ledger entries."""

    class InputSerializer(serializers.Serializer):
        limit = ClampedIntegerField(low=0, high=RECENT_MAX, required=False, default=RECENT_DEFAULT,
                                    help_text=f"entries, at most {RECENT_MAX} (default {RECENT_DEFAULT})")

    @extend_schema_serializer(component_name="Credits")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="LedgerEntry")
        class EntrySerializer(serializers.Serializer):
            id = serializers.IntegerField()
            created = serializers.DateTimeField()
            kind = serializers.CharField()
            amount_usd = serializers.DecimalField(max_digits=30, decimal_places=10)
            balance_after_usd = serializers.DecimalField(max_digits=30, decimal_places=10)
            reference = serializers.CharField()
            memo = serializers.CharField()

        @extend_schema_serializer(component_name="CreditsForecast")
        class ForecastSerializer(serializers.Serializer):
            month_end_spend_usd = serializers.DecimalField(max_digits=30, decimal_places=10,
                                                           help_text="projected spend of this UTC month")
            low_usd = serializers.DecimalField(max_digits=30, decimal_places=10)
            high_usd = serializers.DecimalField(max_digits=30, decimal_places=10)
            month_to_date_usd = serializers.DecimalField(max_digits=30, decimal_places=10)
            mean_daily_usd = serializers.DecimalField(max_digits=30, decimal_places=10)
            history_days = serializers.IntegerField(help_text="complete days the mean and spread come from")
            runway = serializers.ChoiceField(choices=[spend.Runway.DAYS, spend.Runway.NO_RECENT_SPEND,
                                                      spend.Runway.OVERDRAWN])
            runway_days = serializers.DecimalField(max_digits=30, decimal_places=1, allow_null=True,
                                                   help_text="balance / mean daily spend, rounded down; null "
                                                             "unless `runway` is `days`")
            auto_topup_in_days = serializers.DecimalField(
                max_digits=30, decimal_places=1, allow_null=True,
                help_text="days until the balance falls below the auto top-up threshold; null when auto "
                          "top-up is off or there is no recent spend")
            method = serializers.CharField()

            def to_representation(self, shown: selectors.SpendForecast) -> dict:
                p = shown.projection
                return super().to_representation({
                    "month_end_spend_usd": usd(p.month_end_units), "low_usd": usd(p.low_units),
                    "high_usd": usd(p.high_units), "month_to_date_usd": usd(p.month_to_date_units),
                    "mean_daily_usd": usd(p.mean_daily_units), "history_days": p.history_days, "runway": p.runway,
                    "runway_days": p.runway_days, "auto_topup_in_days": p.topup_in_days, "method": p.method})

        balance_usd = serializers.DecimalField(max_digits=30, decimal_places=10)
        overdrawn = serializers.BooleanField()
        recent = EntrySerializer(many=True, help_text="the latest ledger entries, newest first")
        forecast = ForecastSerializer(help_text="month-end spend and credit runway from the daily spend")
        unpriced_requests = serializers.IntegerField(
            help_text=f"requests of the last {selectors.UNPRICED_DAYS} UTC days (today included) not priced yet: "
                      "the catalog has no price for them, so they are not debited and not in the forecast")

    @extend_schema(operation_id="credits", tags=["account"], parameters=[InputSerializer],
                   responses=OutputSerializer,
                   description="The credit balance of the token's account, its latest ledger entries and the "
                               "month-end forecast with the credit runway.")
    def get(self, request):
        account = api_account(request)
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        balance_units, entries = selectors.credits_recent(account=account, limit=params.validated_data["limit"])
        return Response(self.OutputSerializer({
            "balance_usd": usd(balance_units), "overdrawn": balance_units < 0,
            "recent": [{"id": e.pk, "created": e.created, "kind": e.kind, "amount_usd": usd(e.amount_units),
                        "balance_after_usd": usd(e.balance_after_units), "reference": e.reference, "memo": e.memo}
                       for e in entries],
            "forecast": selectors.spend_forecast(account=account),
            "unpriced_requests": selectors.unpriced_requests(account_id=account.pk, today=timezone.now().date()),
        }).data)
