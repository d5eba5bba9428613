"""The generation log's histogram: requests per hour or day under the log's filter, from the account
rollups when they answer exactly, else from the account's generations."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from analytics.models import Generation
from core.replica import read_connection
from core.timerange import local_day, midnight

from . import sources
from .filters import FILTER_COLUMNS
from .generation_log import LogFilter

HISTOGRAM_MAX_DAYS = 90



HISTOGRAM_DEFAULT_DAYS = 30



HOURLY_MAX_DAYS = 2



@dataclass(frozen=True)
class Histogram:
    unit: str  # "hour" or "day"
    start: datetime
    end: datetime  # exclusive
    bars: list[tuple[datetime, int]]  # every bucket of the range, empty ones too
    capped: bool  # the filter's range was longer than HISTOGRAM_MAX_DAYS: only its last days are counted

    @property
    def peak(self) -> int:
        return max((count for _, count in self.bars), default=0)

    @property
    def total(self) -> int:
        return sum(count for _, count in self.bars)



def histogram_counts(*, account_id: int, log_filter: LogFilter, unit: str, zone: tzinfo = UTC):
    """(bucket, requests) of the account's generations under the filter, whose dates bound the scan;
    days of `zone`, hours of UTC (the same hours in a whole-hour zone, and no ambiguous hour at DST)."""
    trunc = TruncHour if unit == "hour" else TruncDay
    return (Generation.objects.filter(Q(account_id=account_id) & log_filter.q())
            .annotate(bucket=trunc("created_at", tzinfo=UTC if unit == "hour" else zone)).values("bucket")
            .annotate(n=Count("id")).values_list("bucket", "n"))



# What the rollups count under a status filter: every request, the successful ones, the failed ones.
_ROLLUP_COUNTS = {"": F("requests"), "ok": F("requests") - F("failed"), "error": F("failed")}
_ROLLUP_COUNTS_SQL = {"": "r.requests", "ok": "r.requests - r.failed", "error": "r.failed"}



def rollup_histogram_counts(*, account_id: int, log_filter: LogFilter, unit: str, start: datetime,
                            end: datetime) -> dict[datetime, int] | None:
    """Requests per bucket from the account rollups, when they answer exactly: a filter on their
    dimensions and status only (no session, no id) and a range of whole UTC hours (any zone a whole
    number of hours from UTC), by a rollup holding every filtered dimension (`sources.rollup_for`);
    None otherwise. One grouped query: a daily rollup for UTC days, else AccountHour summed per hour
    by the database and into local days here."""
    if log_filter.session is not None or log_filter.generation_id or start.minute or end.minute:
        return None
    zone, count = log_filter.zone, _ROLLUP_COUNTS[log_filter.status]
    condition = log_filter.filters.rollup_q()
    filtered = [FILTER_COLUMNS[d] for d, _ in log_filter.filters.items]
    daily = unit == "day" and zone is UTC
    rollup = sources.rollup_for(filtered, hourly=not daily)
    if rollup is None:  # users or tags with another dimension, or by the hour: only the log has them
        return None
    if daily:  # as `sources` reads the day rollups: the user and tag rollups' "none" rows are derived
        rows = sources.account_rows(account_id, start, end, hourly=False, columns=filtered)
        condition_sql, condition_params = log_filter.filters.rollup_sql()
        with read_connection().cursor() as cursor:
            cursor.execute(f"SELECT r.day, SUM({_ROLLUP_COUNTS_SQL[log_filter.status]}) {rows.sql}{condition_sql}"
                           " GROUP BY r.day", [*rows.params, *condition_params])
            return {midnight(day): int(n or 0) for day, n in cursor.fetchall()}
    hours = (rollup.objects.filter(condition, account_id=account_id, hour__gte=start, hour__lt=end)
             .values_list("hour").annotate(n=Sum(count)).values_list("hour", "n").order_by())
    if unit == "hour":
        return {hour: int(n or 0) for hour, n in hours}
    out: dict[datetime, int] = {}
    for hour, n in hours:
        day = midnight(local_day(hour, zone), zone)
        out[day] = out.get(day, 0) + int(n or 0)
    return out



def requests_histogram(*, account_id: int, log_filter: LogFilter, now: datetime | None = None) -> Histogram:
    """Requests per day (per hour when the range is at most two days) under the log's filter.

    Counted from the account rollups when they answer exactly (`rollup_histogram_counts`: a busy
    account's 90 days are 90 day rows, not millions of generations), else from the generation table,
    reading only this account's rows in the range through the (account, created_at) index. The range
    is the filter's dates (default: the last 30 days) and at most HISTOGRAM_MAX_DAYS: a longer range
    counts its last 90 days and says so.
    """
    zone = log_filter.zone
    now = now or timezone.now()
    end = log_filter.end or midnight(now.astimezone(zone).date() + timedelta(days=1), zone)
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    first = log_filter.start.astimezone(zone).date() if log_filter.start else last - timedelta(days=HISTOGRAM_DEFAULT_DAYS - 1)
    capped = (last - first).days >= HISTOGRAM_MAX_DAYS
    if capped:
        first = last - timedelta(days=HISTOGRAM_MAX_DAYS - 1)
    start = max(log_filter.start, midnight(first, zone)) if log_filter.start else midnight(first, zone)
    unit = "hour" if end - start <= timedelta(days=HOURLY_MAX_DAYS) else "day"
    counts = rollup_histogram_counts(account_id=account_id, log_filter=log_filter, unit=unit, start=start, end=end)
    if counts is None:
        counted = histogram_counts(account_id=account_id, log_filter=replace(log_filter, start=start, end=end),
                                   unit=unit, zone=zone)
        counts = {bucket.astimezone(UTC): n for bucket, n in counted}
    if unit == "hour":
        # UTC hours; in a zone such as +05:30 the range's first and last are partial (its dates bound the count).
        at = start.replace(minute=0, second=0, microsecond=0)
        moments = []
        while at < end:
            moments.append(at)
            at += timedelta(hours=1)
    else:  # local days: 23 or 25 hours long when the clocks change
        moments = [midnight(date.fromordinal(n), zone) for n in range(first.toordinal(), last.toordinal() + 1)]
    bars = [(at, counts.get(at, 0)) for at in moments]
    return Histogram(unit=unit, start=start, end=end, bars=bars, capped=capped)

