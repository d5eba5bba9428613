"""Celery tasks of billing (queue "billing"): thin wrappers that call the services."""
from celery import shared_task

from core.retry import TRANSIENT

# Imports point one way, tasks -> services: no billing module imports this one (analytics' chunk
# fan-out queues billing_after_debit after commit, by a late import), so no cycle can close here.
from . import alert_delivery, alerts, budgets, pace, promos, unusual


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def billing_after_debit(account_ids: list[int]) -> None:
    """Due promo expiries, low-balance alerts, auto top-up and key-limit alerts for the accounts a
    chunk just debited (tens of thousands): a constant number of statements selects the few that
    crossed something.

    Safe to run twice: every alert and top-up is claimed by a conditional UPDATE.
    """
    alerts.billing_after_debit(account_ids=account_ids)


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def billing_grants_expire() -> int:
    """Post the expiry of promo credits that are due (run daily, or `manage.py credits_expire`)."""
    return promos.grants_expire()


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def billing_reservations_prune() -> int:
    """Delete reservations older than SPEND_RESERVATION_RETENTION_DAYS (run daily). Expiry needs no
    task: an open hold stops counting when its `expires_at` passes."""
    return budgets.reservations_prune()


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def alert_delivery_send(delivery_id: int) -> None:
    """Send one attempt of an alert delivery (webhook, Slack, e-mail); a failed send schedules the
    next attempt as a row (`alert_delivery`), so only database errors retry this task."""
    alert_delivery.alert_delivery_attempt(delivery_id=delivery_id)


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def alert_deliveries_due() -> int:
    """Queue the alert delivery attempts that are due (run every 15 s by beat)."""
    return len(alert_delivery.alert_deliveries_queue_due())


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=5)
def billing_alerts_hourly() -> int:
    """Unusual spend of the last complete hour, for every account in one query, and the pace
    forecasts (run hourly, or `manage.py alerts_hourly`); returns the alerts recorded now (a second
    run records none)."""
    return len(unusual.unusual_spend_check()) + len(pace.pace_alerts_check())
