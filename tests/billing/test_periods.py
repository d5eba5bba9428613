"""Budget periods in an account's zone: edges by clock arithmetic, across DST, weeks from any weekday."""
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from billing.periods import NONE_KEY, period_bounds, period_key, period_now

NY = ZoneInfo("America/New_York")
SUNDAY, MONDAY = 6, 0


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("moment", "key"), [
    (utc(2026, 3, 8, 4, 59, 59), date(2026, 3, 7)),   # 23:59:59 EST on the 7th
    (utc(2026, 3, 8, 5, 0), date(2026, 3, 8)),        # 00:00 EST: the short day starts
    (utc(2026, 3, 9, 3, 59, 59), date(2026, 3, 8)),   # 23:59:59 EDT: still the 8th
    (utc(2026, 3, 9, 4, 0), date(2026, 3, 9)),        # 00:00 EDT
    (utc(2026, 11, 1, 3, 59), date(2026, 10, 31)),    # 23:59 EDT
    (utc(2026, 11, 2, 4, 59), date(2026, 11, 1)),     # 23:59 EST: the long day's last minute
    (utc(2026, 11, 2, 5, 0), date(2026, 11, 2)),
])
def test_a_new_york_day_follows_the_clocks(moment, key):
    assert period_key(period="day", moment=moment, zone=NY) == key


def test_the_days_the_clocks_change_are_23_and_25_hours():
    start, end = period_bounds(period="day", key=date(2026, 3, 8), zone=NY)
    assert (start, end) == (utc(2026, 3, 8, 5), utc(2026, 3, 9, 4))
    assert end - start == timedelta(hours=23)
    start, end = period_bounds(period="day", key=date(2026, 11, 1), zone=NY)
    assert (start, end) == (utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))
    assert end - start == timedelta(hours=25)


@pytest.mark.parametrize(("moment", "key"), [
    (utc(2026, 3, 8, 4, 59), date(2026, 3, 1)),   # Saturday 23:59 EST, March 7: the week of Sunday the 1st
    (utc(2026, 3, 8, 5, 0), date(2026, 3, 8)),    # Sunday 00:00 EST: a new week, on the day clocks spring forward
    (utc(2026, 3, 15, 3, 59), date(2026, 3, 8)),  # Saturday 23:59 EDT
    (utc(2026, 3, 15, 4, 0), date(2026, 3, 15)),
])
def test_a_week_starting_on_sunday(moment, key):
    assert period_key(period="week", moment=moment, zone=NY, week_start=SUNDAY) == key


def test_a_sunday_week_over_the_spring_change_is_167_hours():
    start, end = period_bounds(period="week", key=date(2026, 3, 8), zone=NY)
    assert (start, end) == (utc(2026, 3, 8, 5), utc(2026, 3, 15, 4))
    assert end - start == timedelta(hours=167)


def test_a_week_starting_on_monday_is_the_default():
    # Sunday March 8 belongs to the week of Monday March 2.
    assert period_key(period="week", moment=utc(2026, 3, 8, 12), zone=NY) == date(2026, 3, 2)
    assert period_key(period="week", moment=utc(2026, 3, 9, 4), zone=NY, week_start=MONDAY) == date(2026, 3, 9)


@pytest.mark.parametrize(("moment", "key"), [
    (utc(2026, 11, 1, 3, 59, 59), date(2026, 10, 1)),  # Oct 31 23:59:59 EDT
    (utc(2026, 11, 1, 4, 0), date(2026, 11, 1)),       # Nov 1 00:00 EDT (the day clocks fall back)
    (utc(2027, 1, 1, 4, 59), date(2026, 12, 1)),       # Dec 31 23:59 EST
    (utc(2027, 1, 1, 5, 0), date(2027, 1, 1)),
])
def test_a_new_york_month(moment, key):
    assert period_key(period="month", moment=moment, zone=NY) == key


def test_a_month_with_a_clock_change_is_an_hour_longer_or_shorter():
    start, end = period_bounds(period="month", key=date(2026, 11, 1), zone=NY)
    assert (start, end) == (utc(2026, 11, 1, 4), utc(2026, 12, 1, 5))
    assert end - start == timedelta(days=30, hours=1)
    start, end = period_bounds(period="month", key=date(2026, 3, 1), zone=NY)
    assert end - start == timedelta(days=31, hours=-1)
    assert period_bounds(period="month", key=date(2026, 12, 1), zone=NY)[1] == utc(2027, 1, 1, 5)


def test_none_is_one_period_for_ever():
    assert period_key(period="none", moment=utc(2030, 5, 5), zone=NY) == NONE_KEY
    assert period_now(period="none", now=utc(2026, 1, 1), zone=NY) == (NONE_KEY, None, None)


def test_a_midnight_that_does_not_exist_starts_the_day_at_its_first_moment():
    # America/Santiago sprang forward at 00:00 on 2026-09-06: the day starts at 01:00 -03.
    santiago = ZoneInfo("America/Santiago")
    start, _ = period_bounds(period="day", key=date(2026, 9, 6), zone=santiago)
    assert start.astimezone(santiago).hour == 1
    assert period_key(period="day", moment=start, zone=santiago) == date(2026, 9, 6)
    assert period_key(period="day", moment=start - timedelta(microseconds=1), zone=santiago) == date(2026, 9, 5)


def test_an_unknown_period_is_refused():
    with pytest.raises(ValueError, match="unknown period"):
        period_key(period="fortnight", moment=utc(2026, 1, 1), zone=UTC)
