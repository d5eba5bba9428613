"""Spend of one account by day, hour, key, end user or tag: the one door through which billing reads usage.

Billing (statements, the forecast, budgets' pace and backfill, unpriced counts, the demo's setup)
calls only this module of analytics (the import contract in pyproject.toml allows exactly this
import), so a change to the rollups' columns is made here and nowhere in billing. Spend is
`spend_units` of the rollups (BYOK excluded), or `cost_units` of non-BYOK generations; days are UTC
days of the daily rollups, and local days of any other zone are summed from the hourly one.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from django.db.models import Min, Q, Sum

from core.timerange import local_day, midnight

from ..models import AccountDay, AccountHour, AccountTagDay, AccountUserDay, Generation


@dataclass(frozen=True)
class ModelSpend:
    model_id: int
    requests: int
    tokens: int  # prompt + completion
    spend_units: int


def spend_first_day(*, account_id: int, zone: tzinfo = UTC) -> date | None:
    """The first day of `zone` with usage of the account, or None."""
    if zone is UTC:
        return AccountDay.objects.filter(account_id=account_id).aggregate(day=Min("day"))["day"]
    first_hour = AccountHour.objects.filter(account_id=account_id).aggregate(hour=Min("hour"))["hour"]
    return local_day(first_hour, zone) if first_hour else None


def spend_by_model(*, account_id: int, start: datetime, end: datetime, zone: tzinfo = UTC) -> list[ModelSpend]:
    """The account's requests, tokens and spend per model in [start, end) (midnights of `zone`), most spend first."""
    if zone is UTC:
        usage = AccountDay.objects.filter(account_id=account_id, day__gte=start.date(), day__lt=end.date())
    else:
        usage = AccountHour.objects.filter(account_id=account_id, hour__gte=start, hour__lt=end)
    rows = (usage.values("model_id").annotate(requests=Sum("requests"), prompt=Sum("tokens_prompt"),
                                              completion=Sum("tokens_completion"), spend=Sum("spend_units"))
            .order_by("-spend", "model_id"))
    return [ModelSpend(model_id=r["model_id"], requests=r["requests"], tokens=r["prompt"] + r["completion"],
                       spend_units=r["spend"]) for r in rows]


def spend_by_day(*, account_id: int, since: date, until: date, zone: tzinfo = UTC) -> dict[date, int]:
    """The account's spend per day of `zone` from `since` to `until` (included): one query of the daily
    rollup (UTC) or of the hourly one, summed per hour by the database and into local days here."""
    if zone is UTC:
        rows = (AccountDay.objects.filter(account_id=account_id, day__gte=since, day__lte=until).values_list("day")
                .annotate(s=Sum("spend_units")).values_list("day", "s").order_by())
        return {day: int(units or 0) for day, units in rows}
    hours = (AccountHour.objects.filter(account_id=account_id, hour__gte=midnight(since, zone),
                                        hour__lt=midnight(until + timedelta(days=1), zone))
             .values_list("hour").annotate(s=Sum("spend_units")).values_list("hour", "s").order_by())
    by_day: dict[date, int] = {}
    for hour, units in hours:
        day = local_day(hour, zone)
        by_day[day] = by_day.get(day, 0) + int(units or 0)
    return by_day


def spend_by_utc_day(*, account_id: int, since: date, before: date, api_key_id: int | None = None,
                     end_user: str | None = None, tag: str | None = None) -> dict[date, int]:
    """The spend per UTC day in [since, before) of the account, or of one key, end user or tag of it
    (at most one), from the daily rollup of that level."""
    if end_user == "":  # requests without a user have no row of theirs: the account's less its users'
        whole = spend_by_utc_day(account_id=account_id, since=since, before=before)
        users = (AccountUserDay.objects.filter(account_id=account_id, day__gte=since, day__lt=before)
                 .values_list("day").annotate(s=Sum("spend_units")).values_list("day", "s"))
        for day, units in users:
            whole[day] = whole.get(day, 0) - int(units or 0)
        return whole
    if end_user is not None:
        rows = AccountUserDay.objects.filter(account_id=account_id, end_user=end_user)
    elif tag is not None:
        rows = AccountTagDay.objects.filter(account_id=account_id, tags__contains=f",{tag},")
    else:
        rows = AccountDay.objects.filter(account_id=account_id)
        if api_key_id is not None:
            rows = rows.filter(api_key_id=api_key_id)
    found = (rows.filter(day__gte=since, day__lt=before).values_list("day").annotate(s=Sum("spend_units"))
             .values_list("day", "s"))
    return {day: int(units or 0) for day, units in found}


def spend_by_key(*, account_id: int, since: datetime) -> dict[int, int]:
    """The account's spend per API key id since `since` (an hour's start), keyless requests left out."""
    rows = (AccountHour.objects.filter(account_id=account_id, hour__gte=since).exclude(api_key_id=0)
            .values_list("api_key_id").annotate(s=Sum("spend_units")).values_list("api_key_id", "s"))
    return {key_id: int(units or 0) for key_id, units in rows}


def spend_busiest_account() -> int | None:
    """The id of the account with the most spend of all, or None when there is no usage."""
    busiest = (AccountHour.objects.values("account_id").annotate(spend=Sum("spend_units"))
               .order_by("-spend").first())
    return busiest["account_id"] if busiest else None


def spend_of_generations(*, account_id: int, since: datetime | None, api_key_id: int | None = None,
                         end_user: str | None = None, tag: str | None = None,
                         per_end_user: bool = False) -> dict[str, int]:
    """The spend of the account's generations since `since` (None: all), of one key, end user or tag if
    given; by end user (requests without one left out) when `per_end_user`, else under "".

    From the generations themselves (their index by account and time), for a budget created mid-period.
    """
    rows = Generation.objects.filter(account_id=account_id, is_byok=False)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    if api_key_id is not None:
        rows = rows.filter(api_key_id=api_key_id)
    if end_user is not None:
        rows = rows.filter(end_user=end_user)
    if tag is not None:
        rows = rows.filter(tags__contains=f",{tag},")
    if per_end_user:
        found = rows.filter(~Q(end_user="")).values_list("end_user").annotate(s=Sum("cost_units"))
        return {subject: int(units) for subject, units in found.values_list("end_user", "s") if units}
    total = rows.aggregate(s=Sum("cost_units"))["s"]
    return {"": int(total)} if total else {}


def unpriced_requests_since(*, account_id: int, since: date) -> int:
    """The account's requests of the UTC days after `since` that Tokengrid could not price."""
    rows = AccountDay.objects.filter(account_id=account_id, day__gt=since)
    return rows.aggregate(n=Sum("unpriced_requests", default=0))["n"]
