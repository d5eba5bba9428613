"""Reads of budgets for the account's page and API: each budget's use in its period, and its pace.

Three queries for the whole list whatever the number of budgets: the budgets, their spend rows of
the current periods, the account's open holds (few: they last minutes). An `each_user` budget shows
the end user nearest to (or furthest past) the cap.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from django.db.models import Q
from django.utils import timezone

from analytics.usage.spend import spend_by_utc_day
from core import forecast

from .budgets import BudgetUse, period_of
from .models import Account, Budget, BudgetSpend, Reservation


def _holds(budget: Budget, start: datetime | None, end: datetime | None, holds: list[tuple]) -> dict[str, int]:
    """Open holds that count against the budget in [start, end), by subject."""
    found: dict[str, int] = {}
    for api_key_id, end_user, tags, created, amount in holds:
        if start is not None and not start <= created < end:
            continue
        scope = budget.scope
        if scope == Budget.Scope.KEY and api_key_id != budget.api_key_id:
            continue
        if scope == Budget.Scope.USER and end_user != budget.target:
            continue
        if scope == Budget.Scope.EACH_USER and not end_user:
            continue
        if scope == Budget.Scope.TAG and f",{budget.target}," not in tags:
            continue
        subject = end_user if scope == Budget.Scope.EACH_USER else ""
        found[subject] = found.get(subject, 0) + amount
    return found


def budget_uses(*, account: Account, now: datetime | None = None, budget_id: int | None = None,
                scope: str | None = None) -> list[BudgetUse]:
    """Every budget of the account (or one, or those of one scope) with its use in the current period."""
    now = now or timezone.now()
    budgets = Budget.objects.filter(account=account).order_by("scope", "target", "period", "pk")
    if budget_id is not None:
        budgets = budgets.filter(pk=budget_id)
    if scope is not None:
        budgets = budgets.filter(scope=scope)
    budgets = list(budgets)
    if not budgets:
        return []
    periods = {b.pk: period_of(budget=b, account=account, now=now) for b in budgets}
    wanted = Q()
    for b in budgets:
        wanted |= Q(budget_id=b.pk, period_key=periods[b.pk][0])
    spends: dict[int, dict[str, int]] = {}
    for budget_pk, subject, units in BudgetSpend.objects.filter(wanted).values_list("budget_id", "subject",
                                                                                     "spent_units"):
        spends.setdefault(budget_pk, {})[subject] = units
    holds = list(Reservation.objects.filter(account=account, status=Reservation.Status.OPEN, expires_at__gt=now)
                 .values_list("api_key_id", "end_user", "tags", "created", "amount_units"))
    uses = []
    for b in budgets:
        key, start, end = periods[b.pk]
        spent, held = spends.get(b.pk, {}), _holds(b, start, end, holds)
        subjects = set(spent) | set(held) or {""}
        # each_user: the end user with the most use (the one nearest the cap); the others have less.
        subject = max(sorted(subjects), key=lambda s: spent.get(s, 0) + held.get(s, 0))
        uses.append(BudgetUse(budget=b, subject=subject, period_key=key, period_start=start, resets_at=end,
                              spent_units=spent.get(subject, 0), reserved_units=held.get(subject, 0)))
    return uses


@dataclass(frozen=True)
class BudgetPace:
    """At this pace: the spend by the period's end and the day the budget runs out (None: not this period)."""

    mean_daily_units: int
    period_end_units: int | None  # None for a budget without period end
    runs_out_on: date | None
    history_days: int


def budget_pace(*, use: BudgetUse, account: Account, now: datetime | None = None) -> BudgetPace:
    """The budget's daily spend over the forecast's history (core.forecast), carried to the period's end.

    The history is read from the daily rollups of the budget's level (UTC days: a pace, not a limit).
    """
    now = now or timezone.now()
    zone = account.zone
    today = now.astimezone(zone).date()
    first = forecast.history_start(today=today, first_day=None)
    b = use.budget
    level: dict = {}
    if b.scope == Budget.Scope.USER or b.scope == Budget.Scope.EACH_USER:
        level = {"end_user": b.target or use.subject}
    elif b.scope == Budget.Scope.TAG:
        level = {"tag": b.target}
    elif b.scope == Budget.Scope.KEY:
        level = {"api_key_id": b.api_key_id}
    by_day = spend_by_utc_day(account_id=account.pk, since=first, before=today, **level)
    days = (today - first).days
    total = sum(int(v or 0) for v in by_day.values())
    mean = Fraction(total, days) if days else Fraction(0)
    if use.resets_at is None:
        end_units = None
        left_days = None
    else:
        left_days = Fraction(int((use.resets_at - now).total_seconds()), forecast.DAY_SECONDS)
        end_units = use.used_units + round(mean * left_days)
    runs_out = None
    if mean > 0:
        if use.remaining_units <= 0:
            runs_out = today
        else:
            days_to_cap = Fraction(use.remaining_units) / mean
            if left_days is None or days_to_cap < left_days:
                runs_out = (now + timedelta(seconds=float(days_to_cap * forecast.DAY_SECONDS))).astimezone(zone).date()
    return BudgetPace(mean_daily_units=round(mean), period_end_units=end_units, runs_out_on=runs_out,
                      history_days=days)


def budget_share(use: BudgetUse) -> Decimal:
    """Use over the amount, for the bar (1 when the amount is 0 and something was used)."""
    if use.budget.amount_units == 0:
        return Decimal(1 if use.used_units else 0)
    return Decimal(use.used_units) / Decimal(use.budget.amount_units)


def reservations_settled(*, account_id: int, generation_ids: Iterable[str]) -> dict[str, Reservation]:
    """The reservations these generations of the account settled, by generation id (one query)."""
    return {r.pk: r for r in Reservation.objects.filter(account_id=account_id, pk__in=list(generation_ids),
                                                        status=Reservation.Status.SETTLED)}
