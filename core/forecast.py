"""Month-end spend and credit runway from a history of daily spends: exact integer arithmetic.

Amounts are integer units (core.money); fractions are `Fraction`, so nothing drifts, and each figure
is rounded once at the end. The method, in the words the pages show (METHOD):

- the history is the last HISTORY_DAYS complete days before today (fewer for a younger account);
- month-end spend = spent this month so far (today included) + mean daily spend x days left, where
  the days left run from now to the month's end and count the rest of today as a fraction of a day;
- the band is +/- the standard deviation of the daily spends (population: divided by the number of
  days) x the square root of the days left, as if the days ahead vary independently; its low end is
  never below what is already spent;
- runway = balance / mean daily spend, in days (rounded down to a tenth).

Dates are those of `tz` (the account's time zone).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from fractions import Fraction

HISTORY_DAYS = 14
DAY_SECONDS = 86_400
METHOD = (f"Spent this month so far plus the mean daily spend of the last {HISTORY_DAYS} complete days "
          "(fewer for a younger account) times the days left in the month; the band is ± their standard "
          "deviation times the square root of the days left; runway is the balance divided by the mean "
          "daily spend.")


class Runway:
    DAYS = "days"
    NO_RECENT_SPEND = "no_recent_spend"
    OVERDRAWN = "overdrawn"


@dataclass(frozen=True)
class Forecast:
    history_days: int  # complete days the mean and spread come from
    mean_daily_units: int  # rounded half-even, for display
    month_to_date_units: int
    days_left: Fraction  # from now to the month's end
    month_end_units: int
    low_units: int
    high_units: int
    runway: str  # a Runway value
    runway_days: Decimal | None  # for Runway.DAYS only
    topup_in_days: Decimal | None  # days until the balance falls below the auto top-up threshold
    method: str = METHOD


def _round(value: Fraction) -> int:
    """Round half to even to a whole unit."""
    return round(value)


def _days_exact(value: Fraction) -> Decimal:
    """floor(value, 0.1) without trusting Decimal division's precision: integer arithmetic only."""
    tenths = math.floor(value * 10)
    return Decimal(tenths).scaleb(-1)


def history_start(*, today: date, first_day: date | None) -> date:
    """The history's first day: HISTORY_DAYS before today, or the account's first day if later."""
    start = today - timedelta(days=HISTORY_DAYS)
    return max(start, first_day) if first_day else start


def month_start(*, now: datetime, tz: tzinfo = UTC) -> date:
    return now.astimezone(tz).date().replace(day=1)


def days_left_in_month(*, now: datetime, tz: tzinfo = UTC) -> Fraction:
    """Days from now to the next month's first midnight in `tz`, exact to the microsecond."""
    local = now.astimezone(tz)
    first = local.date().replace(day=1)
    following = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
    end = datetime.combine(following, time(0), tzinfo=tz)
    left = end.astimezone(UTC) - local.astimezone(UTC)  # the same tzinfo would subtract wall clocks (DST)
    micros = (left.days * DAY_SECONDS + left.seconds) * 1_000_000 + left.microseconds
    return Fraction(micros, DAY_SECONDS * 1_000_000)


def forecast(*, daily_units: Sequence[int], month_to_date_units: int, days_left: Fraction, balance_units: int,
             topup_threshold_units: int | None = None) -> Forecast:
    """Project the month's end and the runway from the complete days' spends (oldest first, any order)."""
    n = len(daily_units)
    mean = Fraction(sum(daily_units), n) if n else Fraction(0)
    variance = sum((Fraction(x) - mean) ** 2 for x in daily_units) / n if n else Fraction(0)
    projected = month_to_date_units + _round(mean * days_left)
    # floor(sqrt(variance x days_left)) in units: isqrt of the floor is the floor of the root.
    half_band = math.isqrt(math.floor(variance * days_left))
    low = max(month_to_date_units, projected - half_band)
    if balance_units < 0:
        runway, runway_days = Runway.OVERDRAWN, None
    elif mean == 0:
        runway, runway_days = Runway.NO_RECENT_SPEND, None
    else:
        runway, runway_days = Runway.DAYS, _days_exact(balance_units / mean)
    topup_in = None
    if topup_threshold_units is not None and mean > 0:
        topup_in = _days_exact(max(Fraction(0), (balance_units - topup_threshold_units) / mean))
    return Forecast(history_days=n, mean_daily_units=_round(mean), month_to_date_units=month_to_date_units,
                    days_left=days_left, month_end_units=projected, low_units=low, high_units=projected + half_band,
                    runway=runway, runway_days=runway_days, topup_in_days=topup_in)
