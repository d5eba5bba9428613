"""The account's alert thresholds through the account API: `GET` / `PATCH /api/v1/account/alert-settings`.

The low-balance amount and the unusual-spend k and minimum (issue 33). A budget's or key limit's
percentages are the budget's `alert_percentages` (`/api/v1/account/budgets/<id>`; a key limit is
its hard key budget). Reading needs any token of the account; changing, a token of an owner.
"""
from decimal import Decimal

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from core.api import FIELD_ERRORS
from core.money import MAX_AMOUNT_USD, units_text, usd_to_units

from .access import AccountApi, api_account
from .alerts import low_balance_threshold_set, unusual_spend_settings_set
from .models import Membership


class AlertSettingsApi(AccountApi):
    """The low-balance alert's amount and the unusual-spend alert's k and minimum."""

    @extend_schema_serializer(component_name="AlertSettingsInput")
    class InputSerializer(serializers.Serializer):
        low_balance_usd = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal(0),
                                                   max_value=MAX_AMOUNT_USD, allow_null=True, required=False,
                                                   help_text="alert under this balance; null: no alert")
        unusual_spend_k = serializers.DecimalField(max_digits=4, decimal_places=1, min_value=Decimal("0.5"),
                                                   max_value=Decimal("99.9"), required=False,
                                                   help_text="alert when the hour is over the usual by more than k × MAD")
        unusual_spend_min_usd = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal(0),
                                                         max_value=MAX_AMOUNT_USD, required=False,
                                                         help_text="and by at least this amount")

    @extend_schema_serializer(component_name="AlertSettings")
    class OutputSerializer(serializers.Serializer):
        low_balance_usd = serializers.CharField(allow_null=True)
        unusual_spend_k = serializers.CharField()
        unusual_spend_min_usd = serializers.CharField()

    def _answer(self, account) -> Response:
        low = account.low_balance_threshold_units
        return Response(self.OutputSerializer({
            "low_balance_usd": None if low is None else units_text(low), "unusual_spend_k": str(account.unusual_spend_k),
            "unusual_spend_min_usd": units_text(account.unusual_spend_min_units)}).data)

    @extend_schema(operation_id="alert_settings", tags=["account"], responses=OutputSerializer)
    def get(self, request):
        return self._answer(api_account(request))

    @extend_schema(operation_id="alert_settings_update", tags=["account"], request=InputSerializer,
                   responses={200: OutputSerializer, 400: FIELD_ERRORS})
    def patch(self, request):
        account = api_account(request, role=Membership.Role.OWNER)
        params = self.InputSerializer(data=request.data, partial=True)
        if not params.is_valid():
            return Response(params.errors, status=status.HTTP_400_BAD_REQUEST)
        data = params.validated_data
        if "low_balance_usd" in data:
            low = data["low_balance_usd"]
            low_balance_threshold_set(account=account, threshold_units=None if low is None else usd_to_units(low))
        if "unusual_spend_k" in data or "unusual_spend_min_usd" in data:
            k = data.get("unusual_spend_k", account.unusual_spend_k)
            minimum = (usd_to_units(data["unusual_spend_min_usd"]) if "unusual_spend_min_usd" in data
                       else account.unusual_spend_min_units)
            unusual_spend_settings_set(account=account, k=k, minimum_units=minimum)
        return self._answer(account)
