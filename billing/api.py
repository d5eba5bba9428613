"""The credits and key-limit API, authenticated by an account API token (`Authorization: Bearer tg_…`).

The gateway asks `GET /api/v1/keys/<id>` before routing a request and refuses a key whose
`remaining_usd` is 0. Only the token's account is in reach: another account's key answers 404.
"""
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.money import units_to_usd
from core.params import int64_fits

from . import selectors
from .access import AccountTokenAuthentication, api_account

RECENT_DEFAULT, RECENT_MAX = 20, 200


def _usd(units: int | None) -> str | None:
    return None if units is None else f"{units_to_usd(units):f}"


class KeyLimitSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField(help_text="the gateway's key id")
    name = serializers.CharField()
    limit_usd = serializers.DecimalField(max_digits=30, decimal_places=10, allow_null=True,
                                         help_text="null: no limit")
    interval = serializers.ChoiceField(choices=["daily", "weekly", "monthly", "never"])
    usage_usd = serializers.DecimalField(max_digits=30, decimal_places=10,
                                         help_text="spend in the current interval (BYOK excluded)")
    remaining_usd = serializers.DecimalField(max_digits=30, decimal_places=10, allow_null=True)
    exhausted = serializers.BooleanField(help_text="true when the key has reached its limit")
    interval_start = serializers.DateTimeField(allow_null=True)
    resets_at = serializers.DateTimeField(allow_null=True, help_text="null for `never`")


def _key_limit(limit: selectors.KeyLimit) -> dict:
    return {"id": limit.key.pk, "key": limit.key.external_id, "name": limit.key.name,
            "limit_usd": _usd(limit.limit_units), "interval": limit.interval, "usage_usd": _usd(limit.usage_units),
            "remaining_usd": _usd(limit.remaining_units), "exhausted": limit.exhausted,
            "interval_start": limit.interval_start, "resets_at": limit.resets_at}


class _AccountApi(APIView):
    authentication_classes = [AccountTokenAuthentication]
    permission_classes = [IsAuthenticated]


class KeyLimitApi(_AccountApi):

    @extend_schema(operation_id="key_limit", tags=["account"], responses=KeyLimitSerializer,
                   description="A key's limit, its usage in the current UTC interval, what remains and when it "
                               "resets; 404 for keys of other accounts.")
    def get(self, request, key_id: int):
        account = api_account(request)
        # An id past 64 bits names no key; the database would refuse to compare it.
        limits = selectors.key_limits(account_id=account.pk, key_ids=[key_id]) if int64_fits(key_id) else []
        if not limits:
            raise Http404
        return Response(KeyLimitSerializer(_key_limit(limits[0])).data)


class KeyLimitListApi(_AccountApi):

    @extend_schema(operation_id="key_limits", tags=["account"], responses=KeyLimitSerializer(many=True),
                   description="Every key of the token's account with its limit and usage.")
    def get(self, request):
        limits = selectors.key_limits(account_id=api_account(request).pk)
        return Response(KeyLimitSerializer([_key_limit(limit) for limit in limits], many=True).data)


class LedgerEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created = serializers.DateTimeField()
    kind = serializers.CharField()
    amount_usd = serializers.DecimalField(max_digits=30, decimal_places=10)
    balance_after_usd = serializers.DecimalField(max_digits=30, decimal_places=10)
    reference = serializers.CharField()
    memo = serializers.CharField()


class CreditsSerializer(serializers.Serializer):
    balance_usd = serializers.DecimalField(max_digits=30, decimal_places=10)
    overdrawn = serializers.BooleanField()
    recent = LedgerEntrySerializer(many=True, help_text="the latest ledger entries, newest first")


class CreditsApi(_AccountApi):

    @extend_schema(operation_id="credits", tags=["account"], responses=CreditsSerializer,
                   parameters=[OpenApiParameter("limit", int, description=f"entries, at most {RECENT_MAX} "
                                                                          f"(default {RECENT_DEFAULT})")],
                   description="The credit balance of the token's account and its latest ledger entries.")
    def get(self, request):
        account = api_account(request)
        try:
            limit = min(max(int(request.query_params.get("limit", RECENT_DEFAULT)), 0), RECENT_MAX)
        except ValueError:
            limit = RECENT_DEFAULT
        account.refresh_from_db(fields=["balance_units"])
        entries = account.ledger.order_by("-created", "-id")[:limit]
        return Response(CreditsSerializer({
            "balance_usd": _usd(account.balance_units), "overdrawn": account.balance_units < 0,
            "recent": [{"id": e.pk, "created": e.created, "kind": e.kind, "amount_usd": _usd(e.amount_units),
                        "balance_after_usd": _usd(e.balance_after_units), "reference": e.reference, "memo": e.memo}
                       for e in entries]}).data)
