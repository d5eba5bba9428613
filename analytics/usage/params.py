"""An account page's query string read into what the usage queries take: period, grouping, granularity.

Periods are in the account's time zone (core.timerange): `24h` is the last 24 whole hours (the current
one included), `7d`/`30d`/`90d` are whole local days (today included), `custom` is an inclusive range
of local dates. Each period compares with the preceding period of the same length.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo

from django.utils import timezone

from core.params import ParamError, date_param
from core.timerange import TimeRange, hour_end, midnight

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30),
           "90d": timedelta(days=90)}
PERIOD_DAYS = {"7d": 7, "30d": 30, "90d": 90}
PERIOD_LABELS = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days",
                 "custom": "Custom range"}
MAX_CUSTOM_DAYS = 400
# dimension -> its column in the account rollups; `tags` holds a request's sorted tags as ",a,b,", so a
# grouping by tag splits each row into its tags (see grouping.tag_split).
DIMENSIONS = {"model": "model_id", "api_key": "api_key_id", "provider": "provider_id", "app": "app_id",
              "user": "end_user", "tag": "tags"}
DIMENSION_LABELS = {"model": "Model", "api_key": "API key", "provider": "Provider", "app": "App",
                    "user": "User", "tag": "Tag"}
OVERVIEW_TOPS = ("model", "api_key", "app", "provider", "user", "tag")  # the overview's tables, in page order
GRANULARITIES = ("hour", "day", "week", "month")
TOP_CHOICES = (5, 10, 20, 50)  # what the page offers; any whole number up to MAX_TOP reads
TOP_DEFAULT = 10
MAX_TOP = 50
MAX_HOURLY_DAYS = 31
REPORT_GROUPS = ("day", "week", "month", "model", "api_key", "provider", "app", "user", "tag")
REPORT_DEFAULT = ("day", "model", "api_key")


def period_parse(name: str | None, *, start: str | None = None, end: str | None = None,
                 now: datetime | None = None, zone: tzinfo = UTC) -> TimeRange:
    """A period from the query string, in `zone`'s days; an unknown name means the last 30 days.

    A custom range with missing, invalid or out-of-range dates, reversed or longer than
    MAX_CUSTOM_DAYS raises ParamError (pages show it and fall back to `period_parse(None)`).
    """
    now = (now or timezone.now()).astimezone(UTC)
    if name == "custom":
        first, last = date_param(start), date_param(end)
        if not first or not last:
            raise ParamError("Choose both a start and an end date for a custom range.")
        if first > last:
            raise ParamError("The start of a custom range must be on or before its end.")
        if (last - first).days >= MAX_CUSTOM_DAYS:
            raise ParamError(f"A custom range covers at most {MAX_CUSTOM_DAYS} days.")
        return TimeRange("custom", midnight(first, zone), midnight(last + timedelta(days=1), zone), True,
                         f"{first:%Y-%m-%d} to {last:%Y-%m-%d}", zone)
    if name == "24h":
        end_at = hour_end(now)
        return TimeRange("24h", end_at - PERIODS["24h"], end_at, False, PERIOD_LABELS["24h"], zone)
    name = name if name in PERIOD_DAYS else "30d"
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return TimeRange(name, midnight(tomorrow - timedelta(days=PERIOD_DAYS[name]), zone), midnight(tomorrow, zone),
                     True, PERIOD_LABELS[name], zone)


def activity_granularity(period: TimeRange, granularity: str | None) -> str:
    """Hourly buckets only for periods up to a month; a day otherwise."""
    granularity = granularity if granularity in GRANULARITIES else ("hour" if not period.by_day else "day")
    if granularity == "hour" and period.end - period.start > timedelta(days=MAX_HOURLY_DAYS):
        return "day"
    return granularity


def group_by_parse(values: Iterable[str]) -> tuple[str, ...]:
    """Up to two distinct dimensions, in the order given."""
    return tuple(dict.fromkeys(v for v in values if v in DIMENSIONS))[:2]


def top_parse(value: str | None) -> int:
    """How many groups the explorer shows before "Other": 1 to MAX_TOP, else TOP_DEFAULT."""
    return int(value) if value and value.isdigit() and 1 <= int(value) <= MAX_TOP else TOP_DEFAULT



def report_groups_parse(value: str | None) -> tuple[str, ...]:
    """`group_by` of usage.csv: a comma list of REPORT_GROUPS (at most one time grouping)."""
    chosen = [v.strip() for v in (value or "").split(",") if v.strip() in REPORT_GROUPS]
    times = [v for v in chosen if v in ("day", "week", "month")]
    chosen = [v for v in chosen if v not in ("day", "week", "month") or v == (times[0] if times else None)]
    return tuple(dict.fromkeys(chosen)) or REPORT_DEFAULT
