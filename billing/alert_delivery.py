"""Sending alert events to channels: one attempt per task, retries with backoff, the delivery log.

Each (channel, event) send is a chain of `AlertDelivery` rows, one per attempt. A task sends one
attempt (`alert_delivery_attempt`), outside any transaction and lock: it claims its row
(queued → sending, so a task the broker hands out twice sends once), posts, and records the answer.
A transient failure (connection error, timeout, 408, 429, 5xx) creates the next attempt's row,
due after `BACKOFF[attempt - 1]` seconds; the sweep (`alert_deliveries_queue_due`, every 15 s by
beat) queues rows that are due. The retries are rows, not countdowns held by the broker: a Redis
broker hands a message held past its visibility timeout (5 minutes) out again, so a 13-hour
countdown would be sent many times over. Other answers (3xx, 4xx) fail the event at once.

A channel that keeps failing is paused: when an event's retries are exhausted (a day of failing),
or after `ALERT_CHANNEL_PAUSE_AFTER` failed attempts in a row. The owners are told by e-mail
directly (not through the channels, one of which is what failed).

Webhooks are signed with the `standardwebhooks` library: `webhook-id` is the event's
(`msg_alert_<event id>`: the same on every attempt and resend, so receivers can de-duplicate),
`webhook-timestamp` the attempt's time.
"""
from __future__ import annotations

import json
import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta

import urllib3
from celery import current_app
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import F, Max
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from .alert_urls import AlertUrlRefused, AlertUrlUnreachable, alert_post
from .models import AlertChannel, AlertDelivery, AlertEvent, Membership
from .selectors import owner_emails

# Seconds to wait before attempt 2, 3, …: the first retry within a minute, the last attempt a day
# (86,400 s) after the first: 30 s, 2 min, 8 min, 32 min, 2 h, 8 h, then 13 h 17 min 30 s.
BACKOFF = (30, 120, 480, 1920, 7200, 28800, 47850)
ATTEMPTS = len(BACKOFF) + 1
REQUEUE_AFTER = timedelta(minutes=10)  # a queued attempt whose task was lost is queued again
SEND_TASK = "billing.tasks.alert_delivery_send"
logger = logging.getLogger(__name__)
TEST_EVENT = "channel.test"


def _pause_after() -> int:
    return int(getattr(settings, "ALERT_CHANNEL_PAUSE_AFTER", 20))


def _site() -> str:
    return getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/")


def _queue(delivery_ids: list[int]) -> None:
    """Queue one send task per delivery, after the current transaction commits.

    The task is found by name: billing.tasks imports this module, so importing it here would
    close an import cycle (import-linter's acyclic contract).
    """
    if delivery_ids:
        def send() -> None:
            task = current_app.tasks[SEND_TASK]
            try:
                for delivery_id in delivery_ids:
                    task.delay(delivery_id)
            except Exception:  # the broker is down: the caller's work stands, the sweep queues these later
                logger.warning("alert deliveries %s not queued; the sweep queues them within %s",
                               delivery_ids, REQUEUE_AFTER, exc_info=True)
        transaction.on_commit(send)


def deliveries_queue(*, pairs: list[tuple[AlertChannel, AlertEvent]], round_: int = 0,
                     now: datetime | None = None) -> list[AlertDelivery]:
    """Record attempt 1 of each (channel, event) and queue it (one INSERT, tasks after commit)."""
    now = now or timezone.now()
    rows = AlertDelivery.objects.bulk_create(
        [AlertDelivery(channel=channel, event=event, round=round_, attempt=1, created=now, due_at=now, queued_at=now)
         for channel, event in pairs])
    _queue([row.pk for row in rows])
    return rows


def events_fan_out(*, events: list[AlertEvent]) -> set[int]:
    """Queue each event to each of its account's active channels that want it.

    Returns the accounts that have no active channel (the caller e-mails their owners, as before
    channels existed). One query for the channels of all the events' accounts, one INSERT.
    """
    channels: dict[int, list[AlertChannel]] = {}
    for channel in AlertChannel.objects.filter(account_id__in={e.account_id for e in events}, paused_at__isnull=True):
        channels.setdefault(channel.account_id, []).append(channel)
    pairs = [(channel, event) for event in events for channel in channels.get(event.account_id, [])
             if channel.wants(event.event)]
    if pairs:
        deliveries_queue(pairs=pairs)
    return {event.account_id for event in events} - set(channels)


# --- What is sent ---


def page_url() -> str:
    return _site() + reverse("billing:alerts")


def webhook_id(event: AlertEvent) -> str:
    return f"msg_alert_{event.pk}"


def webhook_body(event: AlertEvent, account_external_id: str) -> str:
    """The Standard Webhooks payload: type, timestamp, data (money as USD strings, as emitted)."""
    return json.dumps({
        "type": event.event, "timestamp": event.created.isoformat().replace("+00:00", "Z"),
        "data": {"id": f"alert_{event.pk}", "account": account_external_id, "subject": event.subject,
                 "text": event.text, "details": event.data, "url": page_url()}}, separators=(",", ":"))


def webhook_headers(*, secret: str, event: AlertEvent, body: str, now: datetime) -> dict[str, str]:
    msg_id = webhook_id(event)
    return {"content-type": "application/json", "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, now, body),
            "user-agent": "Tokengrid-Alerts/1"}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _label(key: str) -> str:
    label = key.removesuffix("_usd").replace("_", " ").strip().capitalize()
    return f"{label} (USD)" if key.endswith("_usd") else label


def _figure(key: str, value) -> str:
    if isinstance(value, dict | list):
        value = json.dumps(value, separators=(", ", ": "))
    text = str(value)
    return f"${text}" if key.endswith("_usd") and not text.startswith("$") else text


def slack_body(event: AlertEvent) -> str:
    """A Block Kit message: header, the text, the figures of `data` as fields, a link to the page."""
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": event.subject[:150], "emoji": False}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(event.text)[:3000] or " "}},
    ]
    fields = [{"type": "mrkdwn", "text": f"*{_slack_escape(_label(k))}*\n{_slack_escape(_figure(k, v))}"[:2000]}
              for k, v in sorted(event.data.items())[:10]]  # jsonb keeps no order: by name
    if fields:
        blocks.append({"type": "section", "fields": fields})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"<{page_url()}|Alerts of the account on Tokengrid> · {event.event}"}]})
    return json.dumps({"text": event.subject, "blocks": blocks}, separators=(",", ":"))


def email_recipients(*, channel: AlertChannel) -> list[str]:
    """The e-mail channel's recipients who are members now (a removed member gets nothing); empty: owners."""
    if not channel.recipients:
        return owner_emails(account_ids=[channel.account_id]).get(channel.account_id, [])
    members = {email.lower(): email for email in Membership.objects.filter(account_id=channel.account_id)
               .exclude(user__email="").values_list("user__email", flat=True)}
    return sorted({members[r.lower()] for r in channel.recipients if r.lower() in members})


# --- One attempt ---


@dataclass(frozen=True)
class Outcome:
    """What an attempt did: `retry_in` seconds when a next attempt was scheduled."""

    status: str
    status_code: int | None = None
    error: str = ""
    retry_in: int | None = None
    paused: bool = False


def _transient(code: int) -> bool:
    return code in (408, 429) or code >= 500


def _send(*, channel: AlertChannel, event: AlertEvent, now: datetime) -> tuple[str, int | None, int | None, str, bool]:
    """Send now: (body sent, status code, ms taken, error or "", transient). Raises nothing."""
    if channel.kind == AlertChannel.Kind.EMAIL:
        body = event.text
        recipients = email_recipients(channel=channel)
        if not recipients:
            return body, None, None, "no recipient is a member of the account with an e-mail address", False
        started = timezone.now()
        try:
            send_mail(subject=event.subject, message=body, from_email=None, recipient_list=recipients)
        except (smtplib.SMTPException, OSError) as error:
            return body, None, None, f"the mail server refused: {error}"[:500], True
        return body, None, round((timezone.now() - started).total_seconds() * 1000), "", False
    if channel.kind == AlertChannel.Kind.WEBHOOK:
        body = webhook_body(event, channel.account.external_id)
        headers = webhook_headers(secret=channel.secret, event=event, body=body, now=now)
    else:
        body = slack_body(event)
        headers = {"content-type": "application/json", "user-agent": "Tokengrid-Alerts/1"}
    try:
        posted = alert_post(url=channel.url, body=body.encode(), headers=headers)
    except AlertUrlRefused as error:
        return body, None, None, f"refused: {error}"[:500], False
    except AlertUrlUnreachable as error:
        return body, None, None, str(error)[:500], True
    except urllib3.exceptions.HTTPError as error:
        return body, None, None, f"{type(error).__name__}: {error}"[:500], True
    if 200 <= posted.status < 300:
        return body, posted.status, posted.duration_ms, "", False
    if 300 <= posted.status < 400:
        return body, posted.status, posted.duration_ms, f"HTTP {posted.status}: redirects are not followed", False
    return body, posted.status, posted.duration_ms, f"HTTP {posted.status}: {posted.answer}".strip()[:500], \
        _transient(posted.status)


def alert_delivery_attempt(*, delivery_id: int) -> Outcome | None:
    """Send one attempt of a delivery; None when it is not queued (already sent, or gone).

    Runs outside any transaction and holds no lock while sending: the claim commits first.
    """
    now = timezone.now()
    if not AlertDelivery.objects.filter(pk=delivery_id, status=AlertDelivery.Status.QUEUED).update(
            status=AlertDelivery.Status.SENDING, sent_at=now):
        return None
    delivery = AlertDelivery.objects.select_related("channel__account", "event").get(pk=delivery_id)
    channel, event = delivery.channel, delivery.event
    if channel.paused_at is not None and event.event != TEST_EVENT:  # a test checks a fix before resuming
        AlertDelivery.objects.filter(pk=delivery_id).update(status=AlertDelivery.Status.CANCELLED,
                                                             error="the channel is paused")
        return Outcome(status=AlertDelivery.Status.CANCELLED, error="the channel is paused")
    body, code, duration_ms, error, transient = _send(channel=channel, event=event, now=now)
    status = AlertDelivery.Status.FAILED if error else AlertDelivery.Status.DELIVERED
    AlertDelivery.objects.filter(pk=delivery_id).update(status=status, status_code=code, duration_ms=duration_ms,
                                                         body=body, error=error)
    if not error:
        AlertChannel.objects.filter(pk=channel.pk).exclude(consecutive_failures=0).update(consecutive_failures=0)
        return Outcome(status=status, status_code=code)
    AlertChannel.objects.filter(pk=channel.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    failures = AlertChannel.objects.values_list("consecutive_failures", flat=True).get(pk=channel.pk)
    retry_in = None
    if transient and delivery.attempt < ATTEMPTS:
        retry_in = BACKOFF[delivery.attempt - 1]
        AlertDelivery.objects.create(channel=channel, event=event, round=delivery.round, attempt=delivery.attempt + 1,
                                     created=now, due_at=now + timedelta(seconds=retry_in))
    reason = ""
    if transient and delivery.attempt >= ATTEMPTS:
        reason = (f"“{event.subject}” could not be delivered in {ATTEMPTS} attempts over a day; "
                  f"the last answer: {error}")
    elif failures >= _pause_after():
        reason = f"{failures} attempts in a row failed; the last answer: {error}"
    paused = bool(reason) and channel_pause(channel=channel, reason=reason, now=now)
    return Outcome(status=status, status_code=code, error=error, retry_in=retry_in, paused=paused)


def alert_deliveries_queue_due(*, now: datetime | None = None) -> list[int]:
    """Queue the attempts that are due (and those whose task was lost): one UPDATE … RETURNING.

    An attempt left `sending` for 10 minutes (its worker died mid-send; the send times out after
    10 s) is sent again: at worst a receiver gets it twice, with the same webhook-id.
    """
    now = now or timezone.now()
    table = AlertDelivery._meta.db_table
    AlertDelivery.objects.filter(status=AlertDelivery.Status.SENDING, sent_at__lte=now - REQUEUE_AFTER).update(
        status=AlertDelivery.Status.QUEUED, queued_at=None)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET queued_at = %s WHERE status = 'queued' AND due_at <= %s"
            f" AND (queued_at IS NULL OR queued_at < %s) RETURNING id", [now, now, now - REQUEUE_AFTER])
        ids = sorted(row[0] for row in cursor.fetchall())
    _queue(ids)
    return ids


def channel_pause(*, channel: AlertChannel, reason: str, now: datetime | None = None) -> bool:
    """Pause the channel (once) and tell the owners by e-mail; False when it already was paused."""
    now = now or timezone.now()
    if not AlertChannel.objects.filter(pk=channel.pk, paused_at__isnull=True).update(
            paused_at=now, paused_reason=reason[:300]):
        return False
    account = channel.account
    recipients = owner_emails(account_ids=[account.pk]).get(account.pk, [])
    if recipients:
        text = (f"The alert channel {channel} of {account} is paused and gets no alerts until it is resumed.\n\n"
                f"Why: {reason}\n\nResume it, or change it, on {page_url()}\n")
        transaction.on_commit(lambda: send_mail(subject=f"Alert channel paused on {account}", message=text,
                                                from_email=None, recipient_list=recipients, fail_silently=True))
    return True


def delivery_resend(*, delivery: AlertDelivery) -> AlertDelivery:
    """Send the delivery's event to its channel again: a new round, at attempt 1."""
    with transaction.atomic():
        last = (AlertDelivery.objects.filter(channel_id=delivery.channel_id, event_id=delivery.event_id)
                .aggregate(last=Max("round"))["last"] or 0)
        [row] = deliveries_queue(pairs=[(delivery.channel, delivery.event)], round_=last + 1)
    return row
