"""The gateway's spend check and reservations: `POST /api/v1/spend/check`, `POST /api/v1/spend/reserve`,
`DELETE /api/v1/spend/reserve/<id>`.

The gateway sends `Authorization: Bearer $GATEWAY_TOKEN` and its own ids (the `account`,
`api_key`, `user` and `tags` of the log formats); an account API token works too, for its own
account's keys only (another account's key is unknown: 404). Bad input answers 400 with the field
and the reason.
"""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated, NotFound, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import FIELD_ERRORS, BearerTokenScheme, ErrorSerializer, StaticTokenAuthentication, usd
from core.money import MAX_AMOUNT_USD, usd_to_units

from . import budgets
from .access import AccountTokenAuthentication, api_account
from .accounts import TOKEN_PREFIX
from .models import AccountToken, ApiKey, Membership, Reservation

GATEWAY = "gateway"


class GatewayTokenAuthentication(StaticTokenAuthentication):
    """`Authorization: Bearer $GATEWAY_TOKEN`, compared in constant time; account tokens pass on."""

    setting, label, pass_prefix = "GATEWAY_TOKEN", GATEWAY, TOKEN_PREFIX.encode()


class GatewayTokenScheme(BearerTokenScheme):
    target_class = "billing.gateway_api.GatewayTokenAuthentication"
    name = "gatewayToken"
    token = "the gateway's GATEWAY_TOKEN"


class HasGatewayOrAccountToken(BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.auth == GATEWAY or isinstance(request.auth, AccountToken)


def _confined_account_id(request, *, write: bool) -> int | None:
    """None for the gateway (every account); an account token's account, if its creator's role allows."""
    token = request.auth
    if token == GATEWAY:
        return None
    if not isinstance(token, AccountToken):
        raise NotAuthenticated("send the gateway token or an account API token")
    return api_account(request, role=Membership.Role.MEMBER if write else Membership.Role.VIEWER).pk


class _GatewayApi(APIView):
    authentication_classes = [GatewayTokenAuthentication, AccountTokenAuthentication]
    permission_classes = [HasGatewayOrAccountToken]


class _SpendApi(_GatewayApi):
    """A spend check or reservation: its body parsed by `InputSerializer`, its key found."""

    InputSerializer: type[serializers.Serializer]
    writes = False  # a reservation changes what a key may spend: an account token's creator needs member

    def _parsed(self, request) -> tuple[dict, ApiKey]:
        """The request's fields and its key: 400 with the field and the reason, 404 for an unknown key."""
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        account_id = _confined_account_id(request, write=self.writes)
        try:
            key = budgets.gateway_key(api_key=data["api_key"], account=data["account"] or None, account_id=account_id)
        except ApiKey.DoesNotExist:
            raise NotFound("unknown key") from None
        except budgets.AmbiguousKey as error:
            raise ValidationError({"account": [str(error)]}) from None
        return data, key


_ID_MAX = 128


@extend_schema_serializer(component_name="SpendRequest")
class _RequestSerializer(serializers.Serializer):
    api_key = serializers.CharField(max_length=_ID_MAX, help_text="the gateway's key id")
    account = serializers.CharField(max_length=_ID_MAX, required=False, allow_blank=True, default="",
                                    help_text="the gateway's account id; needed only when accounts share key ids")
    user = serializers.CharField(max_length=_ID_MAX, required=False, allow_blank=True, default="",
                                 trim_whitespace=False, help_text="the end user")
    tags = serializers.ListField(child=serializers.CharField(max_length=budgets.TAG_MAX_LENGTH), required=False,
                                 default=list, max_length=16, help_text="at most 16 tags of 64 characters")

    def validate_tags(self, value: list[str]) -> list[str]:
        if any("," in tag for tag in value):
            raise serializers.ValidationError("a tag holds no comma")
        return value


@extend_schema_serializer(component_name="SpendBinding")
class _BindingSerializer(serializers.Serializer):
    scope = serializers.CharField(help_text="`balance`, or the binding budget's scope")
    id = serializers.IntegerField(allow_null=True)
    target = serializers.CharField()
    period = serializers.CharField(allow_null=True)
    resets_at = serializers.DateTimeField(allow_null=True)
    remaining_usd = serializers.CharField()


@extend_schema_serializer(component_name="BudgetUse")
class BudgetUseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    scope = serializers.CharField()
    target = serializers.CharField()
    subject = serializers.CharField(help_text="the end user of an each_user budget")
    mode = serializers.CharField()
    period = serializers.CharField()
    amount_usd = serializers.CharField()
    spent_usd = serializers.CharField()
    reserved_usd = serializers.CharField()
    used_usd = serializers.CharField()
    remaining_usd = serializers.CharField()
    over_usd = serializers.CharField(help_text="how far use went past the amount (never clamped)")
    period_start = serializers.DateTimeField(allow_null=True)
    resets_at = serializers.DateTimeField(allow_null=True)


class SpendCheckApi(_SpendApi):
    """May this request go ahead? The balance and every budget that applies."""

    InputSerializer = _RequestSerializer

    @extend_schema_serializer(component_name="SpendCheck")
    class OutputSerializer(serializers.Serializer):
        allowed = serializers.BooleanField()
        remaining_usd = serializers.CharField(help_text="the least of the balance's and every hard budget's")
        binding = _BindingSerializer()
        account = serializers.CharField()
        api_key = serializers.CharField()
        balance_usd = serializers.CharField()
        balance_reserved_usd = serializers.CharField()
        budgets = BudgetUseSerializer(many=True)

    @extend_schema(operation_id="spend_check", tags=["gateway"], request=InputSerializer,
                   responses={200: OutputSerializer, 400: FIELD_ERRORS, 401: ErrorSerializer, 404: ErrorSerializer})
    def post(self, request):
        data, key = self._parsed(request)
        view = budgets.spend_view(key=key, account=key.account, user=data["user"],
                                  tags=budgets.tags_text(data["tags"]))
        return Response(budgets.check_answer(view))


@extend_schema_serializer(component_name="SpendReserveRequest")
class _ReserveSerializer(_RequestSerializer):
    id = serializers.CharField(max_length=_ID_MAX, help_text="the generation id the gateway will log")
    amount_usd = serializers.DecimalField(max_digits=20, decimal_places=10, min_value=0, max_value=MAX_AMOUNT_USD,
                                          help_text="USD to hold, as a decimal string")

    def validate_amount_usd(self, value):
        if value <= 0:
            raise serializers.ValidationError("must be more than 0")
        return value


class SpendReserveApi(_SpendApi):
    """Hold an amount for a request, all or nothing, against the balance and every hard budget."""

    InputSerializer = _ReserveSerializer
    writes = True

    @extend_schema(operation_id="spend_reserve", tags=["gateway"], request=InputSerializer,
                   responses={201: FIELD_ERRORS, 402: FIELD_ERRORS, 400: FIELD_ERRORS, 401: ErrorSerializer,
                              404: ErrorSerializer, 409: ErrorSerializer})
    def post(self, request):
        data, key = self._parsed(request)
        try:
            code, answer = budgets.spend_reserve(reservation_id=data["id"], key=key, user=data["user"],
                                                 tags=budgets.tags_text(data["tags"]),
                                                 amount_units=usd_to_units(data["amount_usd"]))
        except budgets.ReservationConflict as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response(answer, status=code)


class SpendReleaseApi(_GatewayApi):
    """Release a reservation: the gateway will not run the request."""

    @extend_schema_serializer(component_name="SpendRelease")
    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField()
        status = serializers.CharField()
        amount_usd = serializers.CharField()
        cost_usd = serializers.CharField(allow_null=True)

    @extend_schema(operation_id="spend_release", tags=["gateway"], request=None,
                   responses={200: OutputSerializer, 401: ErrorSerializer, 404: ErrorSerializer})
    def delete(self, request, reservation_id: str):
        account_id = _confined_account_id(request, write=True)
        try:
            reservation = budgets.reservation_release(reservation_id=reservation_id, account_id=account_id)
        except Reservation.DoesNotExist:
            return Response({"detail": "unknown reservation"}, status=status.HTTP_404_NOT_FOUND)
        return Response(self.OutputSerializer({"id": reservation.pk, "status": reservation.status,
                                               "amount_usd": usd(reservation.amount_units),
                                               "cost_usd": usd(reservation.cost_units)}).data)
