"""Budget periods: a day, a week (from the account's chosen weekday), a month or none, in the account's zone.

A period is named by its first local date (`period_key`); its edges are that date's midnight and the
next period's, in the zone (`period_bounds`). Both come from arithmetic on the clock, so nothing
resets a budget: a new period is a new key. A day is 23 or 25 hours when the clocks move; a
midnight that does not exist (a zone that springs forward at 00:00) starts at the first moment
that does. `none` is one period for ever, keyed by NONE_KEY.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

DAY, WEEK, MONTH, NONE = "day", "week", "month", "none"
PERIODS = (DAY, WEEK, MONTH, NONE)
NONE_KEY = date(1970, 1, 1)
# A key limit's interval (the keys page, `GET /api/v1/keys/<id>`) is its hard key budget's period.
INTERVAL_OF = {DAY: "daily", WEEK: "weekly", MONTH: "monthly", NONE: "never"}
PERIOD_OF = {interval: period for period, interval in INTERVAL_OF.items()}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def period_key(*, period: str, moment: datetime, zone: tzinfo, week_start: int = 0) -> date:
    """The first local date of the period that holds `moment` (`week_start`: 0 Monday … 6 Sunday)."""
    if period == NONE:
        return NONE_KEY
    local = moment.astimezone(zone).date()
    if period == DAY:
        return local
    if period == WEEK:
        return local - timedelta(days=(local.weekday() - week_start) % 7)
    if period == MONTH:
        return local.replace(day=1)
    raise ValueError(f"unknown period {period!r}")


def _next_key(period: str, key: date) -> date:
    if period == DAY:
        return key + timedelta(days=1)
    if period == WEEK:
        return key + timedelta(days=7)
    return key.replace(year=key.year + key.month // 12, month=key.month % 12 + 1)


def local_midnight(day: date, zone: tzinfo) -> datetime:
    """The UTC moment `day` starts in `zone` (the first moment that exists, if midnight does not)."""
    moment = datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)
    # A skipped midnight (fold=0 read with the offset before the jump) lands after the gap: that
    # is the day's first moment. An ambiguous one (fold=0) is its first occurrence.
    return moment


def period_bounds(*, period: str, key: date, zone: tzinfo) -> tuple[datetime | None, datetime | None]:
    """[start, end) of the period named `key`, UTC moments; (None, None) for `none`."""
    if period == NONE:
        return None, None
    return local_midnight(key, zone), local_midnight(_next_key(period, key), zone)


def period_now(*, period: str, now: datetime, zone: tzinfo,
               week_start: int = 0) -> tuple[date, datetime | None, datetime | None]:
    """The key, start and end of the period that holds `now`."""
    key = period_key(period=period, moment=now, zone=zone, week_start=week_start)
    return (key, *period_bounds(period=period, key=key, zone=zone))
