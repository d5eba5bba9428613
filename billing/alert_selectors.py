"""Reads of the alerts page and API: an account's channels, their last delivery, a channel's log."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import OuterRef, Subquery

from .models import Account, AlertChannel, AlertDelivery

LOG_LIMIT = 100


@dataclass
class ChannelRow:
    channel: AlertChannel
    last: AlertDelivery | None
    form: object = None  # the page's form, set by the view for owners


def alert_channels_list(*, account: Account) -> list[AlertChannel]:
    """The account's channels, oldest first (one query)."""
    return list(AlertChannel.objects.filter(account=account).order_by("id"))


def alert_channel_rows(*, account: Account) -> list[ChannelRow]:
    """Each channel with its latest delivery (two queries, whatever the number of channels)."""
    latest = AlertDelivery.objects.filter(channel=OuterRef("pk")).order_by("-created", "-id").values("pk")[:1]
    channels = list(AlertChannel.objects.filter(account=account).annotate(last_id=Subquery(latest)).order_by("id"))
    last = AlertDelivery.objects.select_related("event").in_bulk([c.last_id for c in channels if c.last_id])
    return [ChannelRow(channel=c, last=last.get(c.last_id)) for c in channels]


def alert_deliveries(*, account: Account, channel_id: int, limit: int = LOG_LIMIT
                     ) -> tuple[AlertChannel, list[AlertDelivery]]:
    """The account's channel and its latest deliveries, newest first (DoesNotExist for another account's)."""
    channel = AlertChannel.objects.get(account=account, pk=channel_id)
    return channel, list(channel.deliveries.select_related("event").order_by("-created", "-id")[:limit])
