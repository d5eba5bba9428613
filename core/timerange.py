"""One time range type for every page: a rankings window and an account page's period, and time zones.

A range is [start, end) of UTC moments. `start` None means since the beginning (the rankings' `all`);
`by_day` says it covers whole days of its `zone` (UTC for the public pages, the account's own zone
on its pages): in UTC the daily rollups answer it exactly, in another zone the hourly ones do.

A zone whose offset is not a whole number of hours (Asia/Kolkata, +05:30) starts its days inside a
UTC hour, which the hourly rollups cannot split: such a range holds the whole UTC hours that start
in it, so its days run from the first whole UTC hour after local midnight (00:30 to 00:30 in
Kolkata); `day_starts_at` says so and the pages show it.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.utils import timezone

from .params import date_param


@dataclass(frozen=True)
class TimeRange:
    name: str
    start: datetime | None  # inclusive, UTC; None: since the beginning
    end: datetime  # exclusive, UTC
    by_day: bool = False  # whole days of `zone`
    label: str = ""
    zone: tzinfo = UTC  # whose days, weeks and months: datetime.UTC or a ZoneInfo

    @property
    def daily_rollup(self) -> bool:
        """Whole UTC days: the daily rollups answer; any other range is read from the hourly ones."""
        return self.by_day and self.zone is UTC

    @property
    def previous(self) -> TimeRange | None:
        """The range of the same length just before (as many local days, whatever DST did); None for a
        range with no start."""
        if self.start is None:
            return None
        if self.by_day and self.zone is not UTC:
            count = (self.last_day - self.first_day).days + 1
            return replace(self, start=midnight(self.first_day - timedelta(days=count), self.zone), end=self.start)
        return replace(self, start=self.start - (self.end - self.start), end=self.start)

    @property
    def days(self) -> int | None:
        if self.start is None:
            return None
        return (self.last_day - self.first_day).days + 1 if self.by_day else (self.end - self.start).days

    @property
    def key(self) -> str:
        """The range in a cache key."""
        span = f"{self.start:%Y%m%d%H%M}-{self.end:%Y%m%d%H%M}" if self.start else f"-{self.end:%Y%m%d%H%M}"
        return span if self.zone is UTC else f"{span}@{zone_label(self.zone)}"

    @property
    def first_day(self) -> date | None:
        """The date the range starts on (in its zone)."""
        return None if self.start is None else self.start.astimezone(self.zone).date()

    @property
    def day_starts_at(self) -> str | None:
        """"00:30" when the zone's days cannot start at midnight in the hourly rollups (see the module
        docstring); None when they do."""
        if self.start is None or not self.by_day:
            return None
        return _hour_start(self.start)

    @property
    def first_counted_day(self) -> date | None:
        """The first date the daily rollups count: the one after the date of the moment before the start.

        So a rankings `day` is today so far and `week` today and the six days before, without
        overlap between windows, also in the day's last hour, when the window starts at midnight.
        """
        return None if self.start is None else (self.start - timedelta(microseconds=1)).date() + timedelta(days=1)

    @property
    def last_day(self) -> date:
        """The last date the range touches (inclusive, in its zone)."""
        return (self.end - timedelta(microseconds=1)).astimezone(self.zone).date()


UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu",
                       "Etc/GMT", "GMT", "Etc/GMT0", "GMT0", "Etc/GMT+0", "Etc/GMT-0", "Etc/Greenwich", "Greenwich"})


@functools.cache
def zone_named(name: str) -> tzinfo:
    """The time zone of an IANA name: datetime.UTC for UTC and its aliases, and for a name this machine
    does not know (so a page never fails on a zone removed from the database)."""
    if not name or name in UTC_NAMES:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


@functools.cache
def zone_choices() -> tuple[str, ...]:
    """Every IANA zone name this machine knows, sorted, UTC first."""
    return ("UTC", *sorted(available_timezones() - UTC_NAMES - {"localtime", "Factory"}))


def _hour_start(local_midnight: datetime) -> str | None:
    minutes = (60 - local_midnight.minute) % 60
    return f"00:{minutes:02d}" if minutes else None


def day_starts_at(zone: tzinfo, day: date) -> str | None:
    """When `day` starts in the hourly rollups of `zone`: "00:30" in Asia/Kolkata, None in a whole-hour zone."""
    return _hour_start(midnight(day, zone))


def zone_label(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or "UTC"


def zone_offset(zone: tzinfo, at: datetime) -> str:
    """The zone's offset from UTC at a moment, as "UTC+05:30"."""
    offset = int(at.astimezone(zone).utcoffset().total_seconds() // 60)
    sign = "+" if offset >= 0 else "-"
    return f"UTC{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"


def midnight(day: date, zone: tzinfo = UTC) -> datetime:
    """The moment (in UTC) a date starts in `zone`."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def days_span(first: date, last: date, zone: tzinfo = UTC) -> tuple[datetime, datetime]:
    """An inclusive range of dates of `zone` as [start, end) moments."""
    return midnight(first, zone), midnight(last + timedelta(days=1), zone)


def whole_hours(start: datetime, end: datetime) -> list[datetime]:
    """The UTC hours that start in [start, end): the hourly rollup rows a range holds."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if hour < start:
        hour += timedelta(hours=1)
    hours = []
    while hour < end:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def local_day(moment: datetime, zone: tzinfo) -> date:
    """The date of a moment in `zone`; the hourly rollups put an hour on the date its start falls on."""
    return moment.astimezone(zone).date()


def hour_label(moment: datetime, zone: tzinfo = UTC) -> str:
    """An hour bucket's label in `zone`: "2026-11-01 01:00"; the repeated hour when clocks go back carries
    the zone's abbreviation ("2026-11-01 01:00 EST"), so every hour of a range has its own label."""
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local:%Z}" if local.fold else f"{local:%Y-%m-%d %H:%M}"


def hour_end(now: datetime | None = None) -> datetime:
    """The end of the current hour: where the rolling windows end."""
    now = now or timezone.now()
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def date_range_parse(start: str | None, end: str | None, *, default_days: int = 30,
                     now: datetime | None = None, zone: tzinfo = UTC) -> tuple[date, date]:
    """An inclusive range of dates for reports: a missing end is today (in `zone`), a missing start N days
    before it, reversed values are swapped; an invalid or out-of-range date raises ParamError."""
    today = (now or timezone.now()).astimezone(zone).date()
    last = date_param(end) or today
    first = date_param(start) or last - timedelta(days=default_days - 1)
    if first > last:
        first, last = last, first
    return first, last
