"""The account's budgets through the account API (`Authorization: Bearer tg_…`), for scripts.

`GET`/`POST /api/v1/account/budgets`, `GET`/`PATCH`/`DELETE /api/v1/account/budgets/<id>`, and the
zone and first weekday their periods follow: `GET`/`PATCH /api/v1/account/budget-settings`. Reads
need the viewer role, writes the owner role (as on the budgets page). Another account's budget
answers 404; bad input answers 400 with the field and the reason.
"""
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from core.api import FIELD_ERRORS, ErrorSerializer
from core.money import MAX_AMOUNT_USD, usd_to_units
from core.params import int64_fits

from . import budgets
from .access import AccountApi, api_account
from .accounts import account_time_zone_set
from .budget_selectors import budget_uses
from .gateway_api import BudgetUseSerializer
from .models import Budget, Membership
from .periods import PERIODS, WEEKDAYS

OWNER = Membership.Role.OWNER


@extend_schema_serializer(component_name="Budget")
class BudgetOutputSerializer(BudgetUseSerializer):
    """A budget's fields and its use in the current period (the spend check's answer per budget)."""

    alert_percentages = serializers.ListField(child=serializers.IntegerField())

    def to_representation(self, use) -> dict:
        answer = budgets.use_answer(use)
        answer["alert_percentages"] = use.budget.alert_percentages
        return super().to_representation(answer)


@extend_schema_serializer(component_name="BudgetInput")
class _BudgetInput(serializers.Serializer):
    scope = serializers.ChoiceField(choices=Budget.Scope.values)
    target = serializers.CharField(max_length=budgets.TARGET_MAX_LENGTH, required=False, allow_blank=True, default="")
    amount_usd = serializers.DecimalField(max_digits=20, decimal_places=10, min_value=0, max_value=MAX_AMOUNT_USD)
    period = serializers.ChoiceField(choices=PERIODS)
    mode = serializers.ChoiceField(choices=Budget.Mode.values, default=Budget.Mode.HARD)
    alert_percentages = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=1000),
                                              max_length=budgets.ALERTS_MAX, required=False, default=list)


def _changes(data: dict) -> dict:
    changes = {k: v for k, v in data.items() if k != "amount_usd"}
    if "amount_usd" in data:
        changes["amount_units"] = usd_to_units(data["amount_usd"])
    return changes


def _invalid(error: budgets.BudgetInvalid) -> Response:
    return Response({error.field: [error.reason]}, status=status.HTTP_400_BAD_REQUEST)


class BudgetListApi(AccountApi):
    """The account's budgets, each with its use in the current period; create one."""

    InputSerializer = _BudgetInput
    OutputSerializer = BudgetOutputSerializer

    @extend_schema(operation_id="budgets", tags=["account"], responses=OutputSerializer(many=True))
    def get(self, request):
        return Response(self.OutputSerializer(budget_uses(account=api_account(request)), many=True).data)

    @extend_schema(operation_id="budget_create", tags=["account"], request=InputSerializer,
                   responses={201: OutputSerializer, 400: FIELD_ERRORS, 403: ErrorSerializer})
    def post(self, request):
        account = api_account(request, role=OWNER)
        params = self.InputSerializer(data=request.data)
        if not params.is_valid():
            return Response(params.errors, status=status.HTTP_400_BAD_REQUEST)
        try:
            budget = budgets.budget_create(account=account, **_changes(params.validated_data))
        except budgets.BudgetInvalid as error:
            return _invalid(error)
        [use] = budget_uses(account=account, budget_id=budget.pk)
        return Response(self.OutputSerializer(use).data, status=status.HTTP_201_CREATED)


class BudgetApi(AccountApi):
    """One budget of the account: read, change, delete."""

    InputSerializer = _BudgetInput
    OutputSerializer = BudgetOutputSerializer

    def _id(self, budget_id: int) -> Response | None:
        if not int64_fits(budget_id):
            return Response({"id": ["a budget id fits in 64 bits"]}, status=status.HTTP_400_BAD_REQUEST)
        return None

    @extend_schema(operation_id="budget", tags=["account"], responses={200: OutputSerializer, 404: ErrorSerializer})
    def get(self, request, budget_id: int):
        account = api_account(request)
        if (bad := self._id(budget_id)) is not None:
            return bad
        uses = budget_uses(account=account, budget_id=budget_id)
        if not uses:
            return Response({"detail": "no such budget"}, status=status.HTTP_404_NOT_FOUND)
        return Response(self.OutputSerializer(uses[0]).data)

    @extend_schema(operation_id="budget_update", tags=["account"], request=InputSerializer(partial=True),
                   responses={200: OutputSerializer, 400: FIELD_ERRORS, 404: ErrorSerializer})
    def patch(self, request, budget_id: int):
        account = api_account(request, role=OWNER)
        if (bad := self._id(budget_id)) is not None:
            return bad
        params = self.InputSerializer(data=request.data, partial=True)
        if not params.is_valid():
            return Response(params.errors, status=status.HTTP_400_BAD_REQUEST)
        try:
            budgets.budget_update(account=account, budget_id=budget_id, **_changes(params.validated_data))
        except Budget.DoesNotExist:
            return Response({"detail": "no such budget"}, status=status.HTTP_404_NOT_FOUND)
        except budgets.BudgetInvalid as error:
            return _invalid(error)
        [use] = budget_uses(account=account, budget_id=budget_id)
        return Response(self.OutputSerializer(use).data)

    @extend_schema(operation_id="budget_delete", tags=["account"], responses={204: None, 404: ErrorSerializer})
    def delete(self, request, budget_id: int):
        account = api_account(request, role=OWNER)
        if (bad := self._id(budget_id)) is not None:
            return bad
        try:
            budgets.budget_delete(account=account, budget_id=budget_id)
        except Budget.DoesNotExist:
            return Response({"detail": "no such budget"}, status=status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BudgetSettingsApi(AccountApi):
    """The zone and the first weekday the account's budget periods follow."""

    @extend_schema_serializer(component_name="BudgetSettingsInput")
    class InputSerializer(serializers.Serializer):
        time_zone = serializers.CharField(max_length=64, required=False, help_text="an IANA zone name")
        week_start = serializers.ChoiceField(choices=list(range(7)), required=False,
                                             help_text="0 Monday … 6 Sunday")

    @extend_schema_serializer(component_name="BudgetSettings")
    class OutputSerializer(serializers.Serializer):
        time_zone = serializers.CharField()
        week_start = serializers.IntegerField()
        week_start_name = serializers.CharField()

    def _answer(self, account) -> Response:
        return Response(self.OutputSerializer({"time_zone": account.time_zone, "week_start": account.week_start,
                                               "week_start_name": WEEKDAYS[account.week_start]}).data)

    @extend_schema(operation_id="budget_settings", tags=["account"], responses=OutputSerializer)
    def get(self, request):
        return self._answer(api_account(request))

    @extend_schema(operation_id="budget_settings_update", tags=["account"], request=InputSerializer,
                   responses={200: OutputSerializer, 400: FIELD_ERRORS})
    def patch(self, request):
        account = api_account(request, role=OWNER)
        params = self.InputSerializer(data=request.data, partial=True)
        if not params.is_valid():
            return Response(params.errors, status=status.HTTP_400_BAD_REQUEST)
        data = params.validated_data
        if "time_zone" in data:
            try:
                account_time_zone_set(account=account, time_zone=data["time_zone"])
            except ValueError:
                return Response({"time_zone": ["not a time zone this server knows"]},
                                status=status.HTTP_400_BAD_REQUEST)
        if "week_start" in data:
            budgets.account_week_start_set(account=account, week_start=data["week_start"])
        return self._answer(account)
