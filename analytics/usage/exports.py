"""usage.csv (and the usage API's rows): totals per group over an inclusive range of the account's dates.

Dates, weeks and months are the account's zone's: UTC ones from AccountDay, others from AccountHour,
each hour on the local date it starts on (core.timerange: exact for whole-hour offsets).

`user` groups by end user ("" for requests without one). `tag` splits each rollup row's tags: a
request with tags a and b counts in the row of a and in the row of b, so tag rows sum to more than
the total when requests carry several tags; "" is the row of requests without tags (a tag is never
empty, so "" cannot be mistaken for one).
"""
from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo

from django.db import connection

from core.money import units_text
from core.timerange import days_span, local_day

from .queries import week_label
from .totals import REPORT_COUNTERS

USAGE_CSV_COUNTERS = ("requests", "failures", "tokens_prompt", "tokens_completion", "tokens_reasoning",
                      "tokens_cached", "tokens_total", "byok_tokens", "spend_usd", "unpriced_requests")


def usage_csv_header(group_by: tuple[str, ...]) -> list[str]:
    header = []
    for group in group_by:
        header += {"day": ["date"], "week": ["week"], "month": ["month"], "model": ["model"],
                   "api_key": ["api_key", "api_key_name"], "provider": ["provider"], "app": ["app", "app_origin"],
                   "user": ["user"], "tag": ["tag"]}[group]
    return header + list(USAGE_CSV_COUNTERS)


def _period_label(day: date, group: str) -> str:
    if group == "week":
        return week_label(day)
    if group == "month":
        return f"{day:%Y-%m}"
    return day.isoformat()


# group -> (SQL columns selected and grouped, the matching CSV columns); the joins give names.
_REPORT_SQL = {
    "day": (("r.day",), ("date",)),
    "week": (("r.day",), ("week",)),
    "month": (("r.day",), ("month",)),
    "model": (("m.slug",), ("model",)),
    "api_key": (("k.external_id", "k.name"), ("api_key", "api_key_name")),
    "provider": (("p.slug",), ("provider",)),
    "app": (("a.name", "a.origin"), ("app", "app_origin")),
    "user": (("r.end_user",), ("user",)),
    "tag": (("r.tags",), ("tag",)),
}
_REPORT_SUMS = ", ".join(f"CAST(SUM(r.{c}) AS BIGINT)" for c in REPORT_COUNTERS)
_REPORT_JOINS = (
    " JOIN marketplace_model m ON m.id = r.model_id"
    " JOIN marketplace_provider p ON p.id = r.provider_id"
    " LEFT JOIN billing_apikey k ON k.id = r.api_key_id AND k.account_id = r.account_id"
    " LEFT JOIN marketplace_app a ON a.id = r.app_id")
_REPORT_FROM_DAYS = f"FROM analytics_accountday r{_REPORT_JOINS} WHERE r.account_id = %s AND r.day >= %s AND r.day <= %s"
_REPORT_FROM_HOURS = f"FROM analytics_accounthour r{_REPORT_JOINS} WHERE r.account_id = %s AND r.hour >= %s AND r.hour < %s"


def _row_day(value, zone: tzinfo) -> date:
    """A fetched day (AccountDay) or hour (AccountHour: SQLite gives text) as the account's date."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if len(value) > 10 else date.fromisoformat(value)
    if isinstance(value, datetime):
        return local_day(value if value.tzinfo else value.replace(tzinfo=UTC), zone)
    return value


def usage_report(*, account_id: int, first: date, last: date, group_by: tuple[str, ...],
                 zone: tzinfo = UTC) -> list[list]:
    """Rows of usage.csv (and the usage API), in `usage_csv_header` order, sorted by the group columns.

    Totals per group over an inclusive range of dates of `zone`, from the daily account rollup (UTC)
    or the hourly one; one grouped query that joins the names, so a month of the busiest account is a
    single scan. Without a grouping column the one row is the range's total.
    """
    hourly = zone is not UTC
    columns = [("r.hour" if hourly and c == "r.day" else c) for group in group_by for c in _REPORT_SQL[group][0]]
    select = ", ".join(columns)
    time_column = "r.hour" if hourly else "r.day"
    sql = f"SELECT {select}, {_REPORT_SUMS} {_REPORT_FROM_HOURS if hourly else _REPORT_FROM_DAYS} GROUP BY {select}"
    with connection.cursor() as cursor:
        # Moments as the ORM stores them (SQLite compares text: a bare aware datetime would not match).
        bounds = ([connection.ops.adapt_datetimefield_value(m) for m in days_span(first, last, zone)] if hourly
                  else (first, last))
        cursor.execute(sql, (account_id, *bounds))
        fetched = cursor.fetchall()
    width = len(columns)
    time_group = next((g for g in group_by if g in ("day", "week", "month")), None)
    day_at = columns.index(time_column) if time_group else None
    tags_at = columns.index("r.tags") if "tag" in group_by else None
    merged: dict[tuple, list[int]] = {}
    for row in fetched:
        key = list(row[:width])
        if day_at is not None:
            key[day_at] = _period_label(_row_day(key[day_at], zone), time_group)
        counts = [int(v or 0) for v in row[width:]]
        # ",a,b," fans out into a row for a and one for b (the same counts in each); "" stays "".
        tags = ([t for t in (key[tags_at] or "").split(",") if t] or [""]) if tags_at is not None else [None]
        for tag in tags:
            if tags_at is not None:
                key[tags_at] = tag
            cells = tuple("" if v is None else v for v in key)
            if cells in merged:  # weeks and months fold several days into one row; tags several rows
                merged[cells] = [a + b for a, b in zip(merged[cells], counts, strict=True)]
            else:
                merged[cells] = counts
    out = []
    for key in sorted(merged):  # in Python: the same order on every database
        requests, failed, prompt, completion, reasoning, cached, byok, spend, unpriced = merged[key]
        out.append([*key, requests, failed, prompt, completion, reasoning, cached, prompt + completion, byok,
                    units_text(spend), unpriced])
    return out
