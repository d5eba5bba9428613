"""usage.csv (and the usage API's rows): totals per group over an inclusive range of the account's dates.

Dates, weeks and months are the account's zone's: UTC ones from the daily rollups, others from hours,
each hour on the local date it starts on (core.timerange: exact for whole-hour offsets). The rows are
those of the smallest rollup holding the groups (`sources`): a grouping that crosses users or tags with
another dimension, or asks for them in a zone whose days are not UTC days, sums the generations.

`user` groups by end user ("" for requests without one). `tag` splits each rollup row's tags: a
request with tags a and b counts in the row of a and in the row of b, so tag rows sum to more than
the total when requests carry several tags; "" is the row of requests without tags (a tag is never
empty, so "" cannot be mistaken for one).
"""
from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo

from core.money import units_text
from core.replica import read_connection
from core.timerange import days_span, local_day

from . import sources
from .buckets import week_label
from .params import DIMENSIONS
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
# group -> the join that names its ids (only the groups asked for are joined)
_REPORT_JOINS = {
    "model": " JOIN marketplace_model m ON m.id = r.model_id",
    "provider": " JOIN marketplace_provider p ON p.id = r.provider_id",
    "api_key": " LEFT JOIN billing_apikey k ON k.id = r.api_key_id AND k.account_id = r.account_id",
    "app": " LEFT JOIN marketplace_app a ON a.id = r.app_id",
}


def _row_day(value, zone: tzinfo) -> date:
    """A fetched day or hour as the account's date."""
    return local_day(value, zone) if isinstance(value, datetime) else value


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
    start, end = days_span(first, last, zone)
    rows = sources.account_rows(account_id, start, end, hourly=hourly,
                                columns=[DIMENSIONS[g] for g in group_by if g in DIMENSIONS])
    joins = "".join(_REPORT_JOINS.get(group, "") for group in group_by)
    sql = (f"SELECT {select + ', ' if select else ''}{rows.sums_of(REPORT_COUNTERS)} FROM {rows.table} r{joins} WHERE {rows.where}"
           + (f" GROUP BY {select}" if select else ""))
    with read_connection().cursor() as cursor:
        cursor.execute(sql, rows.params)
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
