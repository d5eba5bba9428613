"""Reads of billing: key limits and their usage, the credits page and its forecast (statements: `statements`).

A key's limit is its hard key budget (migration 0008 moved the limits there): its usage is the
budget's use in its period of the account's zone (`budget_selectors`), and its alerts read the
budgets' spend rows. The forecast follows the account's time zone; its usage is read through
analytics' own door (`analytics.usage.spend`).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.utils import timezone

from analytics.usage import spend as usage_spend
from core import forecast as spend
from core.bulk import id_set
from core.money import units_to_usd

from .budget_selectors import budget_uses
from .budgets import BudgetUse
from .gateways import GatewayError, gateway_get, units_floor_cents
from .models import Account, ApiKey, Budget, LedgerEntry, Membership, Payment, PaymentMethod, Refund
from .periods import INTERVAL_OF


@dataclass(frozen=True)
class KeyLimit:
    key: ApiKey
    limit_units: int | None
    interval: str
    interval_start: datetime | None
    resets_at: datetime | None
    usage_units: int  # spend in the period plus what open reservations hold (the budget's use)
    time_zone: str = "UTC"  # the account's: the zone of the intervals
    alert_percentages: tuple[int, ...] = (80,)  # its budget's (billing.thresholds; 100% always)

    @property
    def remaining_units(self) -> int | None:
        return None if self.limit_units is None else max(0, self.limit_units - self.usage_units)

    @property
    def limit_input(self) -> str:
        """The limit as a form value: dollars without trailing zeros."""
        if self.limit_units is None:
            return ""
        return f"{units_to_usd(self.limit_units).normalize():f}"

    @property
    def used_share(self) -> float | None:
        if not self.limit_units:
            return None
        return self.usage_units / self.limit_units

    @property
    def exhausted(self) -> bool:
        return self.limit_units is not None and self.usage_units >= self.limit_units


def key_limits(*, account_id: int, key_ids: list[int] | None = None, now: datetime | None = None) -> list[KeyLimit]:
    """Read every key of the account (or the given ones) with its limit: its hard key budget (the one
    with the least left, if several), used in the budget's current period. Five queries."""
    now = now or timezone.now()
    account = Account.objects.get(pk=account_id)
    keys = ApiKey.objects.filter(account_id=account_id).order_by("name", "external_id")
    if key_ids is not None:
        keys = keys.filter(pk__in=key_ids)
    limits: dict[int, BudgetUse] = {}
    for use in budget_uses(account=account, now=now, scope=Budget.Scope.KEY):
        if use.hard and (use.budget.api_key_id not in limits
                         or use.left_units < limits[use.budget.api_key_id].left_units):
            limits[use.budget.api_key_id] = use
    result = []
    for key in keys:
        use = limits.get(key.pk)
        if use is None:
            result.append(KeyLimit(key=key, limit_units=None, interval=ApiKey.Interval.MONTHLY, interval_start=None,
                                   resets_at=None, usage_units=0, time_zone=account.time_zone))
            continue
        result.append(KeyLimit(key=key, limit_units=use.budget.amount_units, interval=INTERVAL_OF[use.budget.period],
                               interval_start=use.period_start, resets_at=use.resets_at, usage_units=use.used_units,
                               time_zone=account.time_zone, alert_percentages=tuple(use.budget.alert_percentages)))
    return result


def owner_emails(*, account_ids: Iterable[int]) -> dict[int, list[str]]:
    """Return the owners' email addresses of each of these accounts (sorted, no blanks), in one query."""
    emails: dict[int, set[str]] = {}
    rows = (Membership.objects.filter(account_id__in=id_set(account_ids), role=Membership.Role.OWNER)
            .exclude(user__email="").values_list("account_id", "user__email"))
    for account_id, email in rows:
        emails.setdefault(account_id, set()).add(email)
    return {account_id: sorted(found) for account_id, found in emails.items()}



def credits_recent(*, account: Account, limit: int) -> tuple[int, list[LedgerEntry]]:
    """Read an account's balance now and its latest `limit` ledger entries, newest first."""
    account.refresh_from_db(fields=["balance_units"])
    return account.balance_units, list(account.ledger.order_by("-created", "-id")[:limit])








# The forecast ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SpendForecast:
    """The month-end projection and runway (core.forecast) beside the balance and the next auto top-up."""

    projection: spend.Forecast
    balance_units: int
    topup_enabled: bool
    topup_threshold_units: int
    topup_amount_units: int


def spend_days(*, account_id: int, now: datetime | None = None, zone: tzinfo = UTC) -> dict[date, int]:
    """Read the account's spend per day of `zone` (BYOK excluded) from the earlier of the month's first day
    and the forecast history's, to today: one query of the daily rollup (UTC) or of the hourly one, summed
    per hour by the database (at most 45 x 24 rows) and into local days here."""
    today = (now or timezone.now()).astimezone(zone).date()
    since = min(today.replace(day=1), today - timedelta(days=spend.HISTORY_DAYS))
    return usage_spend.spend_by_day(account_id=account_id, since=since, until=today, zone=zone)


def spend_forecast(*, account: Account, now: datetime | None = None,
                   by_day: dict[date, int] | None = None) -> SpendForecast:
    """Project the account's month-end spend and its credit runway from its daily spend (`spend_days`, read
    unless given: the overview passes its cached copy) and its balance now.

    Days and the month are the account's zone's.
    """
    now = now or timezone.now()
    zone = account.zone
    by_day = spend_days(account_id=account.pk, now=now, zone=zone) if by_day is None else by_day
    today, first = now.astimezone(zone).date(), spend.month_start(now=now, tz=zone)
    start = spend.history_start(today=today, first_day=min([account.created.astimezone(zone).date(), *by_day]))
    daily = [by_day.get(start + timedelta(days=n), 0) for n in range((today - start).days)]
    topup = account.auto_topup_enabled
    return SpendForecast(
        projection=spend.forecast(
            daily_units=daily, month_to_date_units=sum(v for d, v in by_day.items() if d >= first),
            days_left=spend.days_left_in_month(now=now, tz=zone), balance_units=account.balance_units,
            topup_threshold_units=account.auto_topup_threshold_units if topup else None),
        balance_units=account.balance_units, topup_enabled=topup,
        topup_threshold_units=account.auto_topup_threshold_units, topup_amount_units=account.auto_topup_amount_units)


# The credits page ----------------------------------------------------------------------------------

def purchase_limits() -> tuple[Decimal, Decimal]:
    """Return the smallest and the largest purchase, in USD."""
    return Decimal(settings.BILLING_PURCHASE_MIN_USD), Decimal(settings.BILLING_PURCHASE_MAX_USD)


def refund_deadline(payment: Payment) -> datetime:
    """Return the end of a purchase's refund window."""
    return (payment.completed_at or payment.created) + timedelta(days=settings.BILLING_REFUND_WINDOW_DAYS)


def refundable_units(*, payment: Payment, balance_units: int, now: datetime | None = None) -> int:
    """Return what of a purchase can be paid back now: its unrefunded credits, no more than the
    balance allows, in whole cents, within the refund window (the fee is kept)."""
    now = now or timezone.now()
    if payment.status != Payment.Status.SUCCEEDED or now > refund_deadline(payment):
        return 0
    return max(0, units_floor_cents(min(payment.amount_units - payment.refunded_units, balance_units)))


def gateway_name() -> str:
    """Return the configured gateway's name, or `unavailable` when none can take payments."""
    try:
        return gateway_get().name
    except GatewayError:
        return "unavailable"


@dataclass(frozen=True)
class PurchaseRow:
    """A purchase as the credits page lists it: what can be refunded now, and until when, or the
    refund already requested and not yet answered by the gateway."""

    payment: Payment
    refundable_units: int
    refund_until: datetime
    refund_requested_units: int = 0


@dataclass(frozen=True)
class CreditsPage:
    """What the credits page shows: balance, purchases and ledger (one page of each), and the terms."""

    balance_units: int
    payments: Page
    purchases: list[PurchaseRow]
    ledger: Page
    method: PaymentMethod | None
    gateway: str
    fee_percent: Decimal
    fee_min: Decimal
    purchase_min: Decimal
    purchase_max: Decimal
    refund_days: int
    forecast: SpendForecast
    unpriced_requests: int  # in the last UNPRICED_DAYS UTC days: logged, not priced, not debited


UNPRICED_DAYS = 30


def unpriced_requests(*, account_id: int, today: date, days: int = UNPRICED_DAYS) -> int:
    """The account's requests of its last `days` UTC days (today included) that Tokengrid could not price."""
    return usage_spend.unpriced_requests_since(account_id=account_id, since=today - timedelta(days=days))


def credits_page(*, account: Account, payments_page: str | None = None, ledger_page: str | None = None,
                 now: datetime | None = None) -> CreditsPage:
    """Read the credits page of an account: 10 purchases and 25 ledger entries a page, newest first."""
    now = now or timezone.now()
    payments = Paginator(Payment.objects.filter(account=account), 10).get_page(payments_page)
    low, high = purchase_limits()
    # Refunds in flight hold their credits until the gateway answers (purchases.refund_claim's rule).
    requested = dict(Refund.objects.filter(account=account, status=Refund.Status.REQUESTED)
                     .values_list("payment_id", "amount_units"))
    available = account.balance_units - sum(requested.values())
    return CreditsPage(
        balance_units=account.balance_units, payments=payments,
        purchases=[PurchaseRow(payment=payment, refund_until=refund_deadline(payment),
                               refund_requested_units=requested.get(payment.pk, 0),
                               refundable_units=0 if payment.pk in requested else refundable_units(
                                   payment=payment, balance_units=available, now=now)) for payment in payments],
        ledger=Paginator(account.ledger.order_by("-created", "-id"), 25).get_page(ledger_page),
        method=PaymentMethod.objects.filter(account=account).first(), gateway=gateway_name(),
        fee_percent=Decimal(settings.BILLING_FEE_PERCENT), fee_min=Decimal(settings.BILLING_FEE_MIN_USD),
        purchase_min=low, purchase_max=high, refund_days=settings.BILLING_REFUND_WINDOW_DAYS,
        forecast=spend_forecast(account=account, now=now),
        unpriced_requests=unpriced_requests(account_id=account.pk, today=now.astimezone(UTC).date()))
