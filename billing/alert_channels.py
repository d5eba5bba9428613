"""An account's alert channels: create, choose their events, rotate a secret, pause, test, resend.

Every function takes the account and looks the channel or delivery up within it, so another
account's id raises DoesNotExist (404 on the pages and the API). Owners manage channels; viewers
and members read them (never a secret).

The first channel an account adds ends the fallback to the owners' e-mail (`alert_events_deliver`):
so that the owners keep hearing about alerts, adding a webhook or Slack channel first also adds an
e-mail channel to the owners, which the page shows and which they may delete.
"""
from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from .alert_delivery import deliveries_queue, delivery_resend
from .alert_events import EVENTS
from .alert_urls import AlertUrlRefused, alert_url_check
from .lock_objects import account_lock
from .models import Account, AlertChannel, AlertDelivery, AlertEvent, Membership

RECIPIENTS_MAX = 50
SECRET_PREFIX = "whsec_"


class ChannelInvalid(ValueError):
    """A channel's field cannot be saved: `field` and the reason, for the person who entered it."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def secret_new() -> str:
    """A Standard Webhooks secret: `whsec_` and 24 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _events(events: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(e.strip() for e in events if e.strip()))
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown:
        raise ChannelInvalid("events", f"unknown event {unknown[0]!r}; the events are {', '.join(EVENTS)}")
    return chosen


def _recipients(*, account: Account, recipients: Iterable[str | int]) -> list[str]:
    """Members' e-mail addresses, from member user ids or addresses (anything else is refused)."""
    wanted = [str(r).strip() for r in recipients if str(r).strip()]
    if len(wanted) > RECIPIENTS_MAX:
        raise ChannelInvalid("recipients", f"at most {RECIPIENTS_MAX} recipients")
    members = list(Membership.objects.filter(account=account).exclude(user__email="")
                   .values_list("user_id", "user__email"))
    by_id, by_email = {str(uid): email for uid, email in members}, {email.lower(): email for _, email in members}
    found = []
    for item in wanted:
        email = by_id.get(item) or by_email.get(item.lower())
        if email is None:
            raise ChannelInvalid("recipients", f"{item} is not a member of this account with an e-mail address")
        found.append(email)
    return sorted(set(found))


def _url(*, kind: str, url: str) -> str:
    url = (url or "").strip()
    if kind == AlertChannel.Kind.EMAIL:
        if url:
            raise ChannelInvalid("url", "an e-mail channel has no URL (choose its recipients)")
        return ""
    if not url:
        raise ChannelInvalid("url", f"a {kind} channel needs a URL")
    if len(url) > 500:
        raise ChannelInvalid("url", "at most 500 characters")
    try:
        alert_url_check(url)
    except AlertUrlRefused as error:
        raise ChannelInvalid("url", str(error)) from None
    return url


def alert_channel_create(*, account: Account, kind: str, url: str = "", events: Iterable[str] = (),
                         recipients: Iterable[str | int] = (), now: datetime | None = None) -> AlertChannel:
    """Add a channel; a webhook's `secret` is on the returned object (show it once)."""
    if kind not in AlertChannel.Kind.values:
        raise ChannelInvalid("kind", f"one of {', '.join(AlertChannel.Kind.values)}")
    now = now or timezone.now()
    fields = {"url": _url(kind=kind, url=url), "events": _events(events),
              "recipients": _recipients(account=account, recipients=recipients) if kind == "email" else [],
              "secret": secret_new() if kind == AlertChannel.Kind.WEBHOOK else ""}
    with transaction.atomic():
        # The account row orders concurrent first channels, so the owners' channel is added once
        # (held for two short statements; adding a channel is rare).
        account_lock(account_id=account.pk)
        first = not AlertChannel.objects.filter(account=account).exists()
        if first and kind != AlertChannel.Kind.EMAIL:
            AlertChannel.objects.create(account=account, kind=AlertChannel.Kind.EMAIL, created=now)
        return AlertChannel.objects.create(account=account, kind=kind, created=now, **fields)


def alert_channel_get(*, account: Account, channel_id: int) -> AlertChannel:
    """The account's channel (DoesNotExist for another account's)."""
    return AlertChannel.objects.select_related("account").get(account=account, pk=channel_id)


def alert_channel_update(*, account: Account, channel_id: int, events: Iterable[str] | None = None,
                         recipients: Iterable[str | int] | None = None) -> AlertChannel:
    """Choose which events go to the channel (empty: all), and an e-mail channel's recipients."""
    channel = alert_channel_get(account=account, channel_id=channel_id)
    changed = []
    if events is not None:
        channel.events, changed = _events(events), [*changed, "events"]
    if recipients is not None and channel.kind == AlertChannel.Kind.EMAIL:
        channel.recipients, changed = _recipients(account=account, recipients=recipients), [*changed, "recipients"]
    if changed:
        channel.save(update_fields=changed)
    return channel


def alert_channel_secret_rotate(*, account: Account, channel_id: int) -> str:
    """Give a webhook a new secret (the old one stops signing at once); return it to show once."""
    channel = alert_channel_get(account=account, channel_id=channel_id)
    if channel.kind != AlertChannel.Kind.WEBHOOK:
        raise ChannelInvalid("kind", "only a webhook has a signing secret")
    channel.secret = secret_new()
    channel.save(update_fields=["secret"])
    return channel.secret


def alert_channel_pause(*, account: Account, channel_id: int, paused: bool, reason: str = "") -> AlertChannel:
    """Pause (by hand) or resume a channel; resuming forgets its failures."""
    channel = alert_channel_get(account=account, channel_id=channel_id)
    if paused:
        channel.paused_at, channel.paused_reason = channel.paused_at or timezone.now(), reason or "paused by hand"
    else:
        channel.paused_at, channel.paused_reason, channel.consecutive_failures = None, "", 0
    channel.save(update_fields=["paused_at", "paused_reason", "consecutive_failures"])
    return channel


def alert_channel_delete(*, account: Account, channel_id: int) -> None:
    """Delete a channel and its delivery log (queued attempts find nothing to send)."""
    alert_channel_get(account=account, channel_id=channel_id).delete()


def alert_channel_test(*, account: Account, channel_id: int, now: datetime | None = None) -> AlertDelivery:
    """Send a `channel.test` event to this channel only; also when it is paused, to check a fix before resuming."""
    channel = alert_channel_get(account=account, channel_id=channel_id)
    now = now or timezone.now()
    with transaction.atomic():
        event = AlertEvent.objects.create(
            account=account, event="channel.test", dedupe_key=f"test:{channel.pk}:{secrets.token_hex(8)}",
            subject=f"Test alert from Tokengrid for {account}",
            text=f"This is a test of the alert channel {channel}. If you read it, the channel works.",
            data={"channel": channel.pk, "kind": channel.kind}, created=now)
        [delivery] = deliveries_queue(pairs=[(channel, event)], now=now)
    return delivery


def alert_delivery_get(*, account: Account, delivery_id: int) -> AlertDelivery:
    """The account's delivery (DoesNotExist for another account's)."""
    return AlertDelivery.objects.select_related("channel", "event").get(channel__account=account, pk=delivery_id)


def alert_delivery_resend(*, account: Account, delivery_id: int) -> AlertDelivery:
    """Send a delivery's event to its channel again (a new delivery, attempt 1)."""
    return delivery_resend(delivery=alert_delivery_get(account=account, delivery_id=delivery_id))
