"""Auto top-up reads: what it charged this month, whether the next crossing would be charged (and
why not), and who changed it. `auto_topup_claim` decides from the same `auto_topup_outlook` that the
credits page shows, so the page says what the next crossing will do."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from core.numbers import money

from .models import Account, AutoTopupChange, Payment
from .periods import MONTH, period_now

# An automatic charge counts against the month's cap from its claim (pending) until it fails.
CHARGED = (Payment.Status.PENDING, Payment.Status.SUCCEEDED)


@dataclass(frozen=True)
class TopupOutlook:
    """An account's auto top-up now. `used_units`: credits charged automatically in its month (the
    account's zone), pending ones included; `refusal`: why a crossing now would not be charged ("" when
    it would be)."""

    enabled: bool
    threshold_units: int
    amount_units: int
    cap_units: int
    used_units: int
    next_allowed_at: datetime | None
    in_flight: bool
    failures: int
    refusal: str

    @property
    def summary(self) -> str:
        """What happens next, in a sentence."""
        return (f"Tops up {money(self.amount_units)} when the balance falls under {money(self.threshold_units)}; "
                f"{money(self.used_units)} of the {money(self.cap_units)} monthly cap used")


def min_interval() -> timedelta:
    return timedelta(minutes=settings.BILLING_AUTO_TOPUP_MIN_INTERVAL_MINUTES)


def _minute_after(moment: datetime) -> datetime:
    """`moment` rounded up to the minute (UTC), so that "after 14:32" is true at 14:32."""
    return datetime.fromtimestamp(math.ceil(moment.timestamp() / 60) * 60, tz=UTC)


def auto_topup_refusal(*, amount_units: int, cap_units: int, used_units: int, in_flight: bool,
                       next_allowed_at: datetime | None, now: datetime) -> str:
    """Why a top-up of `amount_units` may not be charged now, or "" (the cap, then the interval)."""
    if in_flight:
        return "a top-up is already in flight"
    if used_units + amount_units > cap_units:
        return (f"the monthly cap would be exceeded: {money(used_units)} of the {money(cap_units)} used, "
                f"and a top-up adds {money(amount_units)}")
    if next_allowed_at is not None and now < next_allowed_at:
        at = _minute_after(next_allowed_at)
        shown = f"{at:%H:%M}" if at.date() == now.astimezone(UTC).date() else f"{at:%Y-%m-%d %H:%M}"
        return f"next top-up allowed after {shown} UTC"
    return ""


def auto_topup_outlook(*, account: Account, now: datetime | None = None) -> TopupOutlook:
    """The account's auto top-up now, from one query of its automatic charges."""
    now = now or timezone.now()
    _, month_start, _ = period_now(period=MONTH, now=now, zone=account.zone)
    row = Payment.objects.filter(account_id=account.pk, kind=Payment.Kind.AUTO_TOPUP).aggregate(
        used=Sum("amount_units", filter=Q(status__in=CHARGED, created__gte=month_start), default=0),
        last=Max("created"), pending=Count("pk", filter=Q(status=Payment.Status.PENDING)))
    next_allowed_at = row["last"] + min_interval() if row["last"] else None
    used, in_flight = int(row["used"]), bool(row["pending"])
    return TopupOutlook(
        enabled=account.auto_topup_enabled, threshold_units=account.auto_topup_threshold_units,
        amount_units=account.auto_topup_amount_units, cap_units=account.auto_topup_monthly_cap_units,
        used_units=used, next_allowed_at=next_allowed_at, in_flight=in_flight,
        failures=account.auto_topup_failures,
        refusal=auto_topup_refusal(amount_units=account.auto_topup_amount_units,
                                   cap_units=account.auto_topup_monthly_cap_units, used_units=used,
                                   in_flight=in_flight, next_allowed_at=next_allowed_at, now=now))


def auto_topup_changes(*, account: Account, limit: int = 10) -> list[AutoTopupChange]:
    """The account's latest auto top-up changes, newest first (the audit trail)."""
    return list(AutoTopupChange.objects.filter(account_id=account.pk).order_by("-created", "-id")[:limit])
