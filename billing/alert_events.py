"""Alert events: what happened to an account that someone should hear about, recorded once.

Every alert of billing (budget thresholds, low balance, auto top-up, the pace forecast, unusual
spend) is an `AlertEvent` with a `dedupe_key` unique per account: the key names the crossing
(for example `budget:12:80:2026-12-01:3`, the budget, the level, the period and how many times
the crossing was undone), so that a duplicate or concurrent emit of the same crossing records
nothing and sends nothing. Emitting is one INSERT … ON CONFLICT DO NOTHING RETURNING for all the
alerts a run found (work on sets); only the new rows are delivered, after the transaction commits.

Delivery goes to the account's alert channels (e-mail to chosen members, signed webhooks, Slack;
`billing.alert_delivery`), or, for an account without an active channel, to its owners by e-mail.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from .alert_delivery import events_fan_out
from .models import Account, AlertEvent
from .selectors import owner_emails

# The events an account can hear about; the value is how a person reads the event's name.
EVENTS = {
    "budget.threshold": "Budget threshold crossed",
    "budget.exhausted": "Budget exhausted",
    "key.threshold": "API key threshold crossed",
    "balance.low": "Low credit balance",
    "topup.charged": "Auto top-up charged",
    "topup.failed": "Auto top-up failed",
    "topup.disabled": "Auto top-up turned off",
    "forecast.runs_out": "Runs out before the period ends",
    "spend.unusual": "Unusual spend",
    "channel.test": "Test of an alert channel",
}


@dataclass(frozen=True)
class Alert:
    """One alert to emit: `data` is JSON (money as USD strings, never floats)."""

    account_id: int
    event: str
    dedupe_key: str
    subject: str
    text: str
    data: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.event not in EVENTS:
            raise ValueError(f"unknown alert event {self.event!r}")


def alerts_emit(*, alerts: Iterable[Alert]) -> list[AlertEvent]:
    """Record each alert once per (account, dedupe key) and deliver the new ones after commit.

    Returns the events recorded now; an alert whose key was already recorded (the same crossing,
    emitted twice or by a concurrent run) is left out and sent to nobody.
    """
    alerts = list({(a.account_id, a.dedupe_key): a for a in alerts}.values())
    if not alerts:
        return []
    table = AlertEvent._meta.db_table
    now = timezone.now()
    rows = [(a.account_id, a.event, a.dedupe_key, a.subject, a.text, json.dumps(a.data), now) for a in alerts]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s::jsonb, %s)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (account_id, event, dedupe_key, subject, text, data, created)"
            f" VALUES {values} ON CONFLICT (account_id, dedupe_key) DO NOTHING RETURNING id",
            [value for row in rows for value in row])
        ids = [row[0] for row in cursor.fetchall()]
    events = list(AlertEvent.objects.filter(pk__in=ids).order_by("pk"))
    if events:
        alert_events_deliver(events=events)
    return events


def alert_events_deliver(*, events: list[AlertEvent]) -> None:
    """Send these newly recorded events (after the current transaction commits).

    Each goes to every active channel of its account that wants it, one Celery task per
    (channel, event) (`alert_delivery`). An account with no active channel, which is every account
    until it adds one, gets the owners' e-mail as before channels existed.
    """
    without_channels = events_fan_out(events=events)
    if not without_channels:
        return
    emails = owner_emails(account_ids=without_channels)
    messages = [(event.subject, event.text, emails.get(event.account_id, [])) for event in events
                if event.account_id in without_channels]

    def send() -> None:
        from django.core.mail import send_mail
        for subject, text, recipients in messages:
            if recipients:
                send_mail(subject=subject, message=text, from_email=None, recipient_list=recipients)

    transaction.on_commit(send)


def alert_emit(*, account: Account | int, event: str, dedupe_key: str, subject: str, text: str,
               data: dict | None = None) -> AlertEvent | None:
    """Emit one alert (`alerts_emit` for one); returns the event, or None when it was already sent."""
    account_id = account if isinstance(account, int) else account.pk
    events = alerts_emit(alerts=[Alert(account_id=account_id, event=event, dedupe_key=dedupe_key,
                                       subject=subject, text=text, data=data or {})])
    return events[0] if events else None
