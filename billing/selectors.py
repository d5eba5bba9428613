"""Reads of billing: key limits and their usage, monthly statements, refundable purchases.

Key usage and statement usage by model read the daily rollup `AccountDay` (spend without
BYOK), never raw generations: every interval and month starts at a UTC midnight, so whole days
answer exactly, with 24x fewer rows than the hourly rollup.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db.models import Min, Sum
from django.utils import timezone

from analytics.models import AccountDay
from core.money import units_to_usd
from marketplace.models import Model

from .models import Account, ApiKey, LedgerEntry


def interval_bounds(interval: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The current interval's start and the next reset, UTC; (None, None) for `never`."""
    now = now.astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == ApiKey.Interval.DAILY:
        return midnight, midnight + timedelta(days=1)
    if interval == ApiKey.Interval.WEEKLY:  # weeks start on Monday
        start = midnight - timedelta(days=midnight.weekday())
        return start, start + timedelta(days=7)
    if interval == ApiKey.Interval.MONTHLY:
        start = midnight.replace(day=1)
        return start, month_after(start)
    return None, None


def month_after(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


@dataclass(frozen=True)
class KeyLimit:
    key: ApiKey
    limit_units: int | None
    interval: str
    interval_start: datetime | None
    resets_at: datetime | None
    usage_units: int

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
    """Every key of the account (or the given ones) with its usage in its current interval: one
    rollup query per distinct interval start."""
    now = now or timezone.now()
    keys = ApiKey.objects.filter(account_id=account_id).order_by("name", "external_id")
    if key_ids is not None:
        keys = keys.filter(pk__in=key_ids)
    keys = list(keys)
    starts: dict[datetime | None, list[int]] = {}
    for key in keys:
        starts.setdefault(interval_bounds(key.limit_interval, now)[0], []).append(key.pk)
    spend: dict[int, int] = {}
    for start, ids in starts.items():
        rows = AccountDay.objects.filter(account_id=account_id, api_key_id__in=ids)
        if start is not None:
            rows = rows.filter(day__gte=start.date())
        spend.update(rows.values_list("api_key_id").annotate(s=Sum("spend_units")).values_list("api_key_id", "s"))
    result = []
    for key in keys:
        start, reset = interval_bounds(key.limit_interval, now)
        result.append(KeyLimit(key=key, limit_units=key.limit_units, interval=key.limit_interval,
                               interval_start=start, resets_at=reset, usage_units=int(spend.get(key.pk) or 0)))
    return result


# Statements --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelUsage:
    model: str
    requests: int
    tokens: int
    spend_units: int


@dataclass
class Statement:
    account: Account
    month: date
    opening_units: int
    closing_units: int
    by_kind: dict[str, int]
    usage_by_model: list[ModelUsage] = field(default_factory=list)

    @property
    def start(self) -> datetime:
        return datetime(self.month.year, self.month.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return month_after(self.start)

    @property
    def label(self) -> str:
        return self.month.strftime("%B %Y")

    @property
    def slug(self) -> str:
        return self.month.strftime("%Y-%m")

    def kind(self, kind: str) -> int:
        return self.by_kind.get(kind, 0)

    @property
    def lines(self) -> list[tuple[str, int]]:
        """The movements from opening to closing balance, in reading order."""
        kinds = LedgerEntry.Kind
        return [("Purchases", self.kind(kinds.PURCHASE)), ("Promo grants", self.kind(kinds.GRANT)),
                ("Refunds", self.kind(kinds.REFUND)), ("Usage", self.kind(kinds.USAGE)),
                ("Adjustments", self.kind(kinds.ADJUSTMENT)), ("Expired credits", self.kind(kinds.EXPIRY))]

    @property
    def model_usage_units(self) -> int:
        return sum(row.spend_units for row in self.usage_by_model)


def statement_months(*, account: Account, today: date | None = None) -> list[date]:
    """Months with a statement, newest first: from the account's creation, first entry or first usage to now.

    Usage counts because logs may be ingested after the fact: an account registered today by a
    backfill has statements for the months its requests ran in.
    """
    today = today or timezone.now().date()
    first_entry = LedgerEntry.objects.filter(account=account).aggregate(at=Min("created"))["at"]
    first_use = AccountDay.objects.filter(account=account).aggregate(day=Min("day"))["day"]
    starts = [moment.astimezone(UTC).date() for moment in (account.created, first_entry) if moment]
    begin = min([*starts, first_use] if first_use else starts).replace(day=1)
    months, month = [], today.replace(day=1)
    while month >= begin:
        months.append(month)
        month = (month - timedelta(days=1)).replace(day=1)
    return months


def _balance_before(account: Account, moment: datetime) -> int:
    last = (LedgerEntry.objects.filter(account=account, created__lt=moment).order_by("-created", "-id")
            .values_list("balance_after_units", flat=True).first())
    return last or 0


def statement_month(*, account: Account, month: date) -> Statement:
    """Opening and closing balance of a UTC month, its movements by kind, and usage by model.

    The ledger's usage is what was debited in the month (logs may arrive late); usage by model
    is by the hour the requests ran, so the two can differ at month edges.
    """
    statement = Statement(account=account, month=month.replace(day=1), opening_units=0, closing_units=0, by_kind={})
    start, end = statement.start, statement.end
    statement.opening_units = _balance_before(account, start)
    statement.closing_units = _balance_before(account, end)
    statement.by_kind = dict(LedgerEntry.objects.filter(account=account, created__gte=start, created__lt=end)
                             .values_list("kind").annotate(s=Sum("amount_units")).values_list("kind", "s"))
    rows = (AccountDay.objects.filter(account=account, day__gte=start.date(), day__lt=end.date()).values("model_id")
            .annotate(requests=Sum("requests"), prompt=Sum("tokens_prompt"), completion=Sum("tokens_completion"),
                      spend=Sum("spend_units")).order_by("-spend", "model_id"))
    names = dict(Model.objects.filter(pk__in=[r["model_id"] for r in rows]).values_list("pk", "slug"))
    statement.usage_by_model = [
        ModelUsage(model=names.get(r["model_id"], f"model {r['model_id']}"), requests=r["requests"],
                   tokens=r["prompt"] + r["completion"], spend_units=r["spend"]) for r in rows]
    return statement
