"""The account's alert channels through the account API (`Authorization: Bearer tg_…`), for scripts.

`GET`/`POST /api/v1/account/alert-channels` and `GET /api/v1/account/alert-channels/<id>/deliveries`.
Reads need the viewer role, adding a channel the owner role (as on the alerts page). The `POST`
answer carries a webhook's `secret` once; no other answer ever does. Another account's channel
answers 404; bad input answers 400 with the field and the reason.
"""
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from core.api import FIELD_ERRORS, ErrorSerializer
from core.params import int64_fits

from . import alert_channels
from .access import AccountApi, api_account
from .alert_events import EVENTS
from .alert_selectors import alert_channels_list, alert_deliveries
from .models import AlertChannel, Membership


@extend_schema_serializer(component_name="AlertChannel")
class AlertChannelOutputSerializer(serializers.Serializer):
    """A channel as everyone on the account may read it: never its secret."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=AlertChannel.Kind.values)
    url = serializers.CharField(help_text="empty for e-mail")
    events = serializers.ListField(child=serializers.CharField(), help_text="empty: every event")
    recipients = serializers.ListField(child=serializers.CharField(),
                                       help_text="e-mail only: members' addresses; empty: the owners")
    paused = serializers.SerializerMethodField()
    paused_reason = serializers.CharField()
    consecutive_failures = serializers.IntegerField()
    created = serializers.DateTimeField()

    def get_paused(self, channel) -> bool:
        return channel.paused_at is not None


@extend_schema_serializer(component_name="AlertChannelCreated")
class _CreatedSerializer(AlertChannelOutputSerializer):
    secret = serializers.CharField(help_text="a webhook's whsec_… signing secret, shown in this answer only; "
                                             "empty for e-mail and Slack")


@extend_schema_serializer(component_name="AlertChannelInput")
class _ChannelInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=AlertChannel.Kind.values)
    url = serializers.CharField(max_length=500, required=False, allow_blank=True, default="",
                                help_text="https:// address of the webhook or Slack incoming webhook")
    events = serializers.ListField(child=serializers.ChoiceField(choices=list(EVENTS)), required=False,
                                   default=list, max_length=len(EVENTS), help_text="empty: every event")
    recipients = serializers.ListField(child=serializers.CharField(max_length=254), required=False, default=list,
                                       max_length=alert_channels.RECIPIENTS_MAX,
                                       help_text="e-mail only: member user ids or members' addresses; empty: the owners")


@extend_schema_serializer(component_name="AlertDelivery")
class AlertDeliveryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event = serializers.CharField(source="event.event")
    event_id = serializers.IntegerField()
    subject = serializers.CharField(source="event.subject")
    round = serializers.IntegerField(help_text="0 the first sending, then one per resend")
    attempt = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["queued", "sending", "delivered", "failed", "cancelled"])
    status_code = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    body = serializers.CharField(help_text="what was sent")
    error = serializers.CharField()
    created = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)


class AlertChannelListApi(AccountApi):
    """The account's alert channels; add one (owners)."""

    InputSerializer = _ChannelInput
    OutputSerializer = AlertChannelOutputSerializer

    @extend_schema(operation_id="alert_channels", tags=["account"], responses=OutputSerializer(many=True))
    def get(self, request):
        return Response(self.OutputSerializer(alert_channels_list(account=api_account(request)), many=True).data)

    @extend_schema(operation_id="alert_channel_create", tags=["account"], request=InputSerializer,
                   responses={201: _CreatedSerializer, 400: FIELD_ERRORS, 403: ErrorSerializer})
    def post(self, request):
        account = api_account(request, role=Membership.Role.OWNER)
        params = self.InputSerializer(data=request.data)
        if not params.is_valid():
            return Response(params.errors, status=status.HTTP_400_BAD_REQUEST)
        try:
            channel = alert_channels.alert_channel_create(account=account, **params.validated_data)
        except alert_channels.ChannelInvalid as error:
            return Response({error.field: [error.reason]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(_CreatedSerializer(channel).data, status=status.HTTP_201_CREATED)


class AlertDeliveryListApi(AccountApi):
    """One channel's delivery log, newest first (the last 100 attempts)."""

    OutputSerializer = AlertDeliveryOutputSerializer

    @extend_schema(operation_id="alert_channel_deliveries", tags=["account"],
                   responses={200: OutputSerializer(many=True), 400: FIELD_ERRORS, 404: ErrorSerializer})
    def get(self, request, channel_id: int):
        account = api_account(request)
        if not int64_fits(channel_id):
            return Response({"id": ["a channel id fits in 64 bits"]}, status=status.HTTP_400_BAD_REQUEST)
        try:
            _, deliveries = alert_deliveries(account=account, channel_id=channel_id)
        except AlertChannel.DoesNotExist:
            return Response({"detail": "no such alert channel"}, status=status.HTTP_404_NOT_FOUND)
        return Response(self.OutputSerializer(deliveries, many=True).data)
