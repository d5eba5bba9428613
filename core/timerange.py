"""One UTC time range type for every page: a rankings window and an account page's period.

A range is [start, end) in UTC. `start` None means since the beginning (the rankings' `all`);
`by_day` says it covers whole UTC days, so the daily rollups answer it exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from django.utils import timezone

from .params import date_param


@dataclass(frozen=True)
class TimeRange:
    name: str
    start: datetime | None  # inclusive, UTC; None: since the beginning
    end: datetime  # exclusive, UTC
    by_day: bool = False  # whole UTC days: the daily rollups can answer
    label: str = ""

    @property
    def previous(self) -> TimeRange | None:
        """The range of the same length just before; None for a range with no start."""
        if self.start is None:
            return None
        return replace(self, start=self.start - (self.end - self.start), end=self.start)

    @property
    def days(self) -> int | None:
        return None if self.start is None else (self.end - self.start).days

    @property
    def key(self) -> str:
        """The range in a cache key."""
        return f"{self.start:%Y%m%d%H}-{self.end:%Y%m%d%H}" if self.start else f"-{self.end:%Y%m%d%H}"

    @property
    def first_day(self) -> date | None:
        """The date the range starts on."""
        return None if self.start is None else self.start.date()

    @property
    def first_counted_day(self) -> date | None:
        """The first date the daily rollups count: the one after the date of the moment before the start.

        So a rankings `day` is today so far and `week` today and the six days before, without
        overlap between windows, also in the day's last hour, when the window starts at midnight.
        """
        return None if self.start is None else (self.start - timedelta(microseconds=1)).date() + timedelta(days=1)

    @property
    def last_day(self) -> date:
        """The last date the range touches (inclusive)."""
        return (self.end - timedelta(microseconds=1)).date()


def midnight(day: date) -> datetime:
    """The start of a UTC date."""
    return datetime.combine(day, time(), tzinfo=UTC)


def days_span(first: date, last: date) -> tuple[datetime, datetime]:
    """An inclusive range of UTC dates as [start, end) moments."""
    return midnight(first), midnight(last + timedelta(days=1))


def hour_end(now: datetime | None = None) -> datetime:
    """The end of the current hour: where the rolling windows end."""
    now = now or timezone.now()
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def date_range_parse(start: str | None, end: str | None, *, default_days: int = 30,
                     now: datetime | None = None) -> tuple[date, date]:
    """An inclusive range of dates for reports: a missing end is today, a missing start N days before
    it, reversed values are swapped; an invalid or out-of-range date raises ParamError."""
    today = (now or timezone.now()).astimezone(UTC).date()
    last = date_param(end) or today
    first = date_param(start) or last - timedelta(days=default_days - 1)
    if first > last:
        first, last = last, first
    return first, last
