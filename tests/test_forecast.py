"""The month-end projection, its band and the runway (core.forecast) on made-up histories, against
numbers worked out by hand. Amounts in dollars are written as `usd(...)` integer units."""
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest

from core.forecast import Runway, days_left_in_month, forecast, history_start
from core.money import usd_to_units as usd


def test_days_left_count_the_rest_of_today_as_a_fraction():
    assert days_left_in_month(now=datetime(2027, 3, 15, 12, tzinfo=UTC)) == Fraction(33, 2)  # 15th noon -> Apr 1
    assert days_left_in_month(now=datetime(2027, 3, 31, 18, tzinfo=UTC)) == Fraction(1, 4)  # the last day
    assert days_left_in_month(now=datetime(2027, 4, 1, 0, tzinfo=UTC)) == 30  # the 1st at midnight: all of April
    assert days_left_in_month(now=datetime(2027, 2, 25, tzinfo=UTC)) == 4  # February 2027 has 28 days
    assert days_left_in_month(now=datetime(2026, 12, 31, 12, tzinfo=UTC)) == Fraction(1, 2)  # into January


def test_days_left_follow_the_zone_given():
    # 03:00 UTC on April 1st is still March 31st, 22:00 at UTC-5: two hours of March are left there.
    eastern = timezone(timedelta(hours=-5))
    assert days_left_in_month(now=datetime(2027, 4, 1, 3, tzinfo=UTC), tz=eastern) == Fraction(1, 12)


def test_history_starts_14_days_back_or_at_the_accounts_first_day():
    today = date(2027, 3, 15)
    assert history_start(today=today, first_day=None) == date(2027, 3, 1)
    assert history_start(today=today, first_day=date(2026, 1, 1)) == date(2027, 3, 1)
    assert history_start(today=today, first_day=date(2027, 3, 12)) == date(2027, 3, 12)  # created 3 days ago


def test_a_flat_history():
    # $1 a day; on the 15th at noon $14.50 is spent (14 days and half of today); 16.5 days left.
    result = forecast(daily_units=[usd(1)] * 14, month_to_date_units=usd("14.5"), days_left=Fraction(33, 2),
                      balance_units=usd(20), topup_threshold_units=usd(5))
    assert result.history_days == 14
    assert result.mean_daily_units == usd(1)
    assert result.month_end_units == usd(31)  # 14.5 + 1 x 16.5
    assert (result.low_units, result.high_units) == (usd(31), usd(31))  # no spread, no band
    assert (result.runway, result.runway_days) == (Runway.DAYS, Decimal("20.0"))
    assert result.topup_in_days == Decimal("15.0")  # from $20 down to $5 at $1 a day


def test_a_rising_history_has_a_band_from_its_spread():
    # 2, 4, 4, 4, 5, 5, 7, 9 dollars: mean 5, population standard deviation 2 (variance 32/8 = 4).
    # Four days left: 40 + 5 x 4 = 60, +/- 2 x sqrt(4) = 4.
    daily = [usd(x) for x in (2, 4, 4, 4, 5, 5, 7, 9)]
    result = forecast(daily_units=daily, month_to_date_units=usd(40), days_left=Fraction(4),
                      balance_units=usd(12), topup_threshold_units=usd(5))
    assert result.month_end_units == usd(60)
    assert (result.low_units, result.high_units) == (usd(56), usd(64))
    assert result.runway_days == Decimal("2.4")  # 12 / 5
    assert result.topup_in_days == Decimal("1.4")  # (12 - 5) / 5


def test_no_spend_means_no_runway_figure():
    result = forecast(daily_units=[0] * 14, month_to_date_units=0, days_left=Fraction(10), balance_units=usd(10),
                      topup_threshold_units=usd(5))
    assert (result.month_end_units, result.low_units, result.high_units) == (0, 0, 0)
    assert (result.runway, result.runway_days, result.topup_in_days) == (Runway.NO_RECENT_SPEND, None, None)


def test_an_account_with_no_complete_day_yet():
    result = forecast(daily_units=[], month_to_date_units=usd(3), days_left=Fraction(10), balance_units=usd(10))
    assert result.history_days == 0
    assert (result.month_end_units, result.low_units, result.high_units) == (usd(3), usd(3), usd(3))
    assert result.runway == Runway.NO_RECENT_SPEND


def test_three_days_of_history_for_an_account_created_three_days_ago():
    # $1, $2, $3: mean 2, variance ((1)^2 + 0 + (1)^2) / 3 = 2/3 dollars^2. On March 4th at noon $6.50 is
    # spent and 27.5 days are left: 6.5 + 2 x 27.5 = 61.5; band sqrt(2/3 x 27.5) = sqrt(18.333...) = $4.2817441928
    # (4.2817441928^2 = 18.33333333... <= 18.3333... < 4.2817441929^2).
    result = forecast(daily_units=[usd(1), usd(2), usd(3)], month_to_date_units=usd("6.5"),
                      days_left=Fraction(55, 2), balance_units=usd(100))
    assert result.history_days == 3
    assert result.month_end_units == usd("61.5")
    band = 42_817_441_928
    assert band**2 <= Fraction(2, 3) * Fraction(55, 2) * 10**20 < (band + 1) ** 2
    assert (result.low_units, result.high_units) == (usd("61.5") - band, usd("61.5") + band)
    assert result.runway_days == Decimal("50.0")


def test_an_overdrawn_balance():
    result = forecast(daily_units=[usd(2)] * 14, month_to_date_units=usd(20), days_left=Fraction(5),
                      balance_units=usd(-1), topup_threshold_units=usd(5))
    assert (result.runway, result.runway_days) == (Runway.OVERDRAWN, None)
    assert result.topup_in_days == Decimal("0.0")  # already below the threshold: due now
    assert result.month_end_units == usd(30)


def test_the_last_day_of_a_month():
    # 18:00 on March 31st: a quarter of a day left. $2 and $6: mean 4, deviation 2; 10 + 4/4 = 11, +/- 2 x 1/2.
    result = forecast(daily_units=[usd(2), usd(6)], month_to_date_units=usd(10), days_left=Fraction(1, 4),
                      balance_units=usd(1))
    assert result.month_end_units == usd(11)
    assert (result.low_units, result.high_units) == (usd(10), usd(12))
    assert result.runway_days == Decimal("0.2")  # 1 / 4 = 0.25, rounded down


def test_the_first_of_a_month_projects_from_last_months_days():
    # 06:00 on April 1st: $1 spent today, the 14 complete days are all March's, $4 a day; 29.75 days left.
    result = forecast(daily_units=[usd(4)] * 14, month_to_date_units=usd(1), days_left=Fraction(119, 4),
                      balance_units=usd(50))
    assert result.month_end_units == usd(120)  # 1 + 4 x 29.75
    assert result.low_units == usd(120)


def test_the_band_never_reaches_below_what_is_spent():
    # $0, $0, $30: mean 10, variance (100 + 100 + 400) / 3 = 200, deviation $14.1421356237 (floor); one day
    # left: 1.5 + 10 = 11.5, whose low end 11.5 - 14.14 would be below the $1.50 already spent.
    result = forecast(daily_units=[0, 0, usd(30)], month_to_date_units=usd("1.5"), days_left=Fraction(1),
                      balance_units=usd(1))
    assert result.month_end_units == usd("11.5")
    assert (result.low_units, result.high_units) == (usd("1.5"), usd("11.5") + 141_421_356_237)


@pytest.mark.parametrize(("daily", "left", "projected"), [([5], Fraction(1, 2), 2), ([7], Fraction(1, 2), 4)])
def test_the_projection_rounds_half_to_even_once(daily, left, projected):
    assert forecast(daily_units=daily, month_to_date_units=0, days_left=left, balance_units=0).month_end_units == projected
