"""Time buckets of the account pages: hours labelled in local time; days, weeks (from Monday) and months
as local dates of the period's zone (the account's), each rollup hour on the local date it starts on."""
from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo

from core.timerange import TimeRange, hour_label, local_day, whole_hours


# Buckets are the period's zone's: hours labelled in local time, days, weeks and months local dates.
def bucket_labels(period: TimeRange, granularity: str) -> list[str]:
    if granularity == "hour":
        return [hour_label(hour, period.zone) for hour in whole_hours(period.start, period.end)]
    days = [date.fromordinal(n) for n in range(period.first_day.toordinal(), period.last_day.toordinal() + 1)]
    if granularity in ("week", "month"):
        return list(dict.fromkeys(_day_bucket(d, granularity) for d in days))
    return [d.isoformat() for d in days]



def week_label(day: date) -> str:
    return (day - timedelta(days=day.weekday())).isoformat()



def month_label(day: date) -> str:
    return f"{day:%Y-%m}"



def _day_bucket(day: date, granularity: str) -> str:
    if granularity == "week":
        return week_label(day)
    return month_label(day) if granularity == "month" else day.isoformat()



def bucket_label(value: date | datetime, granularity: str, zone: tzinfo) -> str:
    """The bucket of a rollup row's day (AccountDay) or hour (AccountHour)."""
    if granularity == "hour":
        return hour_label(value, zone)
    return _day_bucket(local_day(value, zone) if isinstance(value, datetime) else value, granularity)

