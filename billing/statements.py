"""Monthly statements of an account: opening and closing balance, movements by kind, usage by model.

Months are the account's time zone's. The ledger's usage is what was debited in the month (logs may
arrive late); usage by model is by the hour the requests ran, read through analytics' own door
(`analytics.usage.spend`), so the two can differ at month edges.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Min, Sum
from django.utils import timezone

from analytics.usage import spend as usage_spend
from core.timerange import midnight
from marketplace.models import Model

from .models import Account, LedgerEntry


def month_after(start: date) -> date:
    """The first day (or moment) of the month after `start`'s, which is a month's first day or moment."""
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)



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
    # One line per reprice posted in the month: ("Repricing of <model> from <date>", units).
    repricings: list[tuple[str, int]] = field(default_factory=list)

    @property
    def start(self) -> datetime:
        """The month's first midnight in the account's zone (UTC moment)."""
        return midnight(self.month.replace(day=1), self.account.zone)

    @property
    def end(self) -> datetime:
        return midnight(month_after(self.month.replace(day=1)), self.account.zone)

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
                ("Adjustments", self.kind(kinds.ADJUSTMENT)), *self.repricings,
                ("Expired credits", self.kind(kinds.EXPIRY))]

    @property
    def model_usage_units(self) -> int:
        return sum(row.spend_units for row in self.usage_by_model)



def statement_months(*, account: Account, today: date | None = None) -> list[date]:
    """List the months with a statement, newest first: from the account's creation, first entry or first usage to now.

    Usage counts because logs may be ingested after the fact: an account registered today by a
    backfill has statements for the months its requests ran in.
    """
    zone = account.zone
    today = today or timezone.now().astimezone(zone).date()
    first_entry = LedgerEntry.objects.filter(account=account).aggregate(at=Min("created"))["at"]
    first_use = usage_spend.spend_first_day(account_id=account.pk, zone=zone)
    starts = [moment.astimezone(zone).date() for moment in (account.created, first_entry) if moment]
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
    """Read the opening and closing balance of a month of the account's zone, its movements by kind, and
    usage by model.

    The ledger's usage is what was debited in the month (logs may arrive late); usage by model
    is by the hour the requests ran, so the two can differ at month edges.
    """
    statement = Statement(account=account, month=month.replace(day=1), opening_units=0, closing_units=0, by_kind={})
    start, end = statement.start, statement.end
    statement.opening_units = _balance_before(account, start)
    statement.closing_units = _balance_before(account, end)
    statement.by_kind = dict(LedgerEntry.objects.filter(account=account, created__gte=start, created__lt=end)
                             .values_list("kind").annotate(s=Sum("amount_units")).values_list("kind", "s"))
    # A reprice's entry carries its line's text as memo (analytics.repricing).
    statement.repricings = [(memo, units) for memo, units in LedgerEntry.objects.filter(
        account=account, kind=LedgerEntry.Kind.REPRICING, created__gte=start, created__lt=end).order_by(
        "id").values_list("memo", "amount_units")]
    rows = usage_spend.spend_by_model(account_id=account.pk, start=start, end=end, zone=account.zone)
    names = dict(Model.objects.filter(pk__in=[r.model_id for r in rows]).values_list("pk", "slug"))
    statement.usage_by_model = [
        ModelUsage(model=names.get(r.model_id, f"model {r.model_id}"), requests=r.requests, tokens=r.tokens,
                   spend_units=r.spend_units) for r in rows]
    return statement

