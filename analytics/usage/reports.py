"""The printable monthly usage report, built with pandas from the account rollups.

A month of the account's time zone: from the daily rollup in UTC, from the hourly one elsewhere
(each hour on the local date it starts on, core.timerange).
"""
from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, date, tzinfo

import pandas as pd
from django.db.models import Max, Min, Sum

from analytics.models import AccountDay, AccountHour
from billing.statements import month_after
from core import charts
from core.charts import Series
from core.money import units_to_usd
from core.timerange import days_span, local_day, midnight

from .names import dimension_names
from .totals import COUNTERS


@dataclass(frozen=True)
class MonthlyReport:
    year: int
    month: int
    first: date
    last: date
    totals: dict
    by_model: list[dict]
    by_key: list[dict]
    daily: Series
    daily_chart: dict
    model_chart: dict

    @property
    def title(self) -> str:
        return f"{self.first:%B %Y}"


def months_with_usage(*, account_id: int, zone: tzinfo = UTC) -> list[date]:
    """First days of the months (of `zone`) the account has usage in, newest first.

    The account's first and last rollup row (two ends of its index), then one index probe per month
    between them: the busiest account's hundreds of thousands of rows are never read (a DISTINCT
    month would read every one of them).
    """
    rows, column = ((AccountDay.objects.filter(account_id=account_id), "day") if zone is UTC
                    else (AccountHour.objects.filter(account_id=account_id), "hour"))
    span = rows.aggregate(first=Min(column), last=Max(column))
    if span["first"] is None:
        return []

    def month_of(value) -> date:
        return (local_day(value, zone) if zone is not UTC else value).replace(day=1)

    def in_month(first: date) -> dict:
        if zone is UTC:
            return {"day__gte": first, "day__lt": month_after(first)}
        return {"hour__gte": midnight(first, zone), "hour__lt": midnight(month_after(first), zone)}

    months, month, last = [], month_of(span["first"]), month_of(span["last"])
    while month <= last:
        if rows.filter(**in_month(month)).exists():
            months.append(month)
        month = month_after(month)
    return months[::-1]


def _table(frame: pd.DataFrame, column: str, names: dict[int, str]) -> list[dict]:
    grouped = frame.groupby(column, sort=False)[["requests", "failed", "tokens_prompt", "tokens_completion",
                                                  "tokens_reasoning", "tokens_cached", "spend_units"]].sum()
    grouped["tokens"] = grouped["tokens_prompt"] + grouped["tokens_completion"]
    spend_total = int(grouped["spend_units"].sum())
    grouped = grouped.sort_values(["spend_units", "tokens"], ascending=False)
    rows = []
    for key, row in grouped.iterrows():
        spend = int(row["spend_units"])
        rows.append({"name": names.get(int(key), f"#{key}"), "requests": int(row["requests"]),
                     "failed": int(row["failed"]), "tokens": int(row["tokens"]),
                     "tokens_prompt": int(row["tokens_prompt"]), "tokens_completion": int(row["tokens_completion"]),
                     "tokens_reasoning": int(row["tokens_reasoning"]), "tokens_cached": int(row["tokens_cached"]),
                     "spend_units": spend, "share": spend / spend_total if spend_total else 0.0})
    return rows


def _month_records(account_id: int, first: date, last: date, zone: tzinfo) -> list[dict]:
    """The month's counters per day x model x key, summed by the database."""
    sums = {c: Sum(c) for c in COUNTERS}
    if zone is UTC:
        return list(AccountDay.objects.filter(account_id=account_id, day__gte=first, day__lte=last)
                    .values("day", "model_id", "api_key_id").annotate(**sums).order_by())
    start, end = days_span(first, last, zone)
    records = list(AccountHour.objects.filter(account_id=account_id, hour__gte=start, hour__lt=end)
                   .values("hour", "model_id", "api_key_id").annotate(**sums).order_by())
    for record in records:
        record["day"] = local_day(record.pop("hour"), zone)
    return records


def monthly_usage(*, account_id: int, year: int, month: int, zone: tzinfo = UTC) -> MonthlyReport:
    """Totals, usage by model and by key, and spend per day for one calendar month of `zone`."""
    first = date(year, month, 1)
    last = date(year, month, monthrange(year, month)[1])
    records = _month_records(account_id, first, last, zone)
    # int64 columns: pandas sums integers exactly (no float on the money path).
    frame = pd.DataFrame.from_records(records, columns=["day", "model_id", "api_key_id", *COUNTERS])
    frame[list(COUNTERS)] = frame[list(COUNTERS)].astype("int64")
    totals = {c: int(frame[c].sum()) for c in COUNTERS}
    totals["tokens"] = totals["tokens_prompt"] + totals["tokens_completion"]
    models = dimension_names("model", frame["model_id"].unique().tolist(), account_id=account_id)
    keys = dimension_names("api_key", frame["api_key_id"].unique().tolist(), account_id=account_id)
    by_model = _table(frame, "model_id", models)
    by_key = _table(frame, "api_key_id", keys)
    days = pd.date_range(first, last, freq="D").date
    top = [row["name"] for row in by_model[:8]]
    frame["series"] = frame["model_id"].map(lambda i: models.get(int(i), f"#{i}"))
    frame.loc[~frame["series"].isin(top), "series"] = "Others"
    pivot = (frame.pivot_table(index="day", columns="series", values="spend_units", aggfunc="sum", fill_value=0)
             .reindex(days, fill_value=0)) if len(frame) else pd.DataFrame(index=days)
    order = [name for name in [*top, "Others"] if name in pivot.columns]
    daily = Series(periods=[d.isoformat() for d in days],
                   series={name: [units_to_usd(int(v)) for v in pivot[name].tolist()] for name in order})
    slices = by_model[:9]
    rest = sum(r["spend_units"] for r in by_model[9:])
    labels = [r["name"] for r in slices] + (["Others"] if rest else [])
    values = [units_to_usd(r["spend_units"]) for r in slices] + ([units_to_usd(rest)] if rest else [])
    model_chart = charts.pie(labels, values, title="Spend by model")
    return MonthlyReport(year=year, month=month, first=first, last=last, totals=totals, by_model=by_model,
                         by_key=by_key, daily=daily,
                         daily_chart=charts.stacked_bars(daily, title="Spend per day by model", unit="USD"),
                         model_chart=model_chart)
