"""Unusual spend: the last complete hour's spend far above the account's usual for that hour of the week.

**Usual** is the median of the account's spend in the same hour of the week over the last 8 weeks
(the hours H − 7 d, …, H − 56 d in UTC, which is the same local hour of the week except across a
clock change). A week without spend in that hour counts as 0. The hour needs spend in at least 4
of the 8 weeks to have a usual at all: an hour of the week without that history never alerts (a
new account, or an hour it does not usually work in).

**Far** is more than k × the MAD (the median absolute deviation of those 8 weeks from the usual)
above the usual, and at least the account's minimum amount above it: the minimum keeps a steady
account (MAD 0) from alerting on a cent. k (default 5) and the minimum (default $10) are the
account's (`Account.unusual_spend_k`, `unusual_spend_min_units`).

**One query per run for all accounts** (`unusual_spend_find`): the accounts with spend in the hour,
the 8 earlier hours of each (index probes on the hourly rollup's (account, hour) key), the median
and the MAD by `percentile_cont` within GROUP BY, compared in the database; only the few flagged
accounts come back. A second query reads, for those few, the models and keys that made the
difference (their own excess over their own usual, the same way). Medians are computed as doubles
by PostgreSQL, exact for hourly spend under $900,000 (2^53 units), and rounded to whole units.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.utils import timezone

from core.money import units_text
from core.numbers import money

from .alert_events import Alert, alerts_emit
from .models import AlertEvent, ApiKey

WEEKS = 8
MIN_WEEKS = 4
CONTRIBUTORS = 3  # models and keys named in the alert, each

_FIND_SQL = f"""
WITH cur AS (
  SELECT account_id, SUM(spend_units) AS actual FROM analytics_accounthour
  WHERE hour = %(hour)s GROUP BY account_id HAVING SUM(spend_units) > 0
), weeks AS (
  SELECT c.account_id, c.actual, COALESCE(h.spend, 0) AS spend
  FROM cur c CROSS JOIN generate_series(1, {WEEKS}) AS w(i)
  LEFT JOIN LATERAL (SELECT SUM(x.spend_units) AS spend FROM analytics_accounthour x
                     WHERE x.account_id = c.account_id AND x.hour = %(hour)s - w.i * interval '7 days') h ON true
), med AS (
  SELECT account_id, actual, percentile_cont(0.5) WITHIN GROUP (ORDER BY spend) AS usual,
         count(*) FILTER (WHERE spend > 0) AS seen
  FROM weeks GROUP BY account_id, actual
), dev AS (
  SELECT m.account_id, m.actual, m.usual, m.seen,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(w.spend - m.usual)) AS mad
  FROM med m JOIN weeks w ON w.account_id = m.account_id
  WHERE m.seen >= {MIN_WEEKS}
  GROUP BY m.account_id, m.actual, m.usual, m.seen
)
SELECT d.account_id, d.actual, round(d.usual::numeric), round(d.mad::numeric), d.seen,
       a.unusual_spend_k, a.unusual_spend_min_units
FROM dev d JOIN billing_account a ON a.id = d.account_id
WHERE d.actual > round(d.usual::numeric) + a.unusual_spend_k * round(d.mad::numeric)
  AND d.actual - round(d.usual::numeric) >= a.unusual_spend_min_units
ORDER BY d.account_id
"""

# For the flagged accounts: each model's and key's spend in the hour against its own usual (the
# median of the same 8 weeks, missing weeks 0), the largest excesses first.
_CONTRIBUTORS_SQL = f"""
WITH rows AS (
  SELECT x.account_id, x.hour, x.model_id, x.api_key_id, x.spend_units FROM analytics_accounthour x
  WHERE x.account_id = ANY(%(ids)s::bigint[])
    AND x.hour = ANY(ARRAY(SELECT %(hour)s - i * interval '7 days' FROM generate_series(0, {WEEKS}) AS i))
), parts AS (
  SELECT account_id, 'model' AS kind, model_id AS part FROM rows WHERE hour = %(hour)s
  UNION SELECT account_id, 'key', api_key_id FROM rows WHERE hour = %(hour)s AND api_key_id <> 0
), weekly AS (
  SELECT p.account_id, p.kind, p.part, w.i,
         COALESCE(SUM(r.spend_units) FILTER (WHERE r.hour = %(hour)s - w.i * interval '7 days'), 0) AS spend
  FROM parts p CROSS JOIN generate_series(0, {WEEKS}) AS w(i)
  LEFT JOIN rows r ON r.account_id = p.account_id
    AND ((p.kind = 'model' AND r.model_id = p.part) OR (p.kind = 'key' AND r.api_key_id = p.part))
  GROUP BY p.account_id, p.kind, p.part, w.i
)
SELECT account_id, kind, part, SUM(spend) FILTER (WHERE i = 0) AS actual,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY spend) FILTER (WHERE i > 0)::numeric) AS usual
FROM weekly GROUP BY account_id, kind, part
"""


@dataclass(frozen=True)
class Contributor:
    kind: str  # "model" or "key"
    name: str
    actual_units: int
    usual_units: int

    @property
    def excess_units(self) -> int:
        return self.actual_units - self.usual_units


@dataclass(frozen=True)
class UnusualSpend:
    """An account whose spend in `hour` was far above its usual for that hour of the week."""

    account_id: int
    hour: datetime
    actual_units: int
    usual_units: int
    mad_units: int
    weeks_seen: int
    k: Decimal
    minimum_units: int
    contributors: tuple[Contributor, ...] = ()

    @property
    def threshold_units(self) -> int:
        """Spend above this (and the minimum above the usual) is unusual: usual + k × MAD."""
        return self.usual_units + int((self.k * self.mad_units).to_integral_value(ROUND_HALF_UP))


def last_complete_hour(now: datetime | None = None) -> datetime:
    """The start of the last hour that ended (UTC)."""
    now = (now or timezone.now()).astimezone(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def unusual_spend_find(*, hour: datetime) -> list[UnusualSpend]:
    """The accounts whose spend in `hour` (its start, UTC) was unusual: one query for all accounts,
    then one for the models and keys of the few it found."""
    with connection.cursor() as cursor:
        cursor.execute(_FIND_SQL, {"hour": hour})
        found = [UnusualSpend(account_id=r[0], hour=hour, actual_units=int(r[1]), usual_units=int(r[2]),
                              mad_units=int(r[3]), weeks_seen=int(r[4]), k=r[5], minimum_units=int(r[6]))
                 for r in cursor.fetchall()]
        if not found:
            return []
        cursor.execute(_CONTRIBUTORS_SQL, {"ids": [u.account_id for u in found], "hour": hour})
        parts = cursor.fetchall()
    from marketplace.models import Model  # billing reads the catalog's names only here

    models = dict(Model.objects.filter(pk__in={p[2] for p in parts if p[1] == "model"}).values_list("pk", "slug"))
    keys = dict(ApiKey.objects.filter(pk__in={p[2] for p in parts if p[1] == "key"})
                .values_list("pk", "external_id"))
    by_account: dict[int, list[Contributor]] = {}
    for account_id, kind, part, actual, usual in parts:
        name = models.get(part, f"model {part}") if kind == "model" else keys.get(part, f"key {part}")
        by_account.setdefault(account_id, []).append(
            Contributor(kind=kind, name=name, actual_units=int(actual or 0), usual_units=int(usual or 0)))
    result = []
    for u in found:
        named = []
        for kind in ("model", "key"):
            mine = [c for c in by_account.get(u.account_id, []) if c.kind == kind and c.excess_units > 0]
            named += sorted(mine, key=lambda c: (-c.excess_units, c.name))[:CONTRIBUTORS]
        result.append(UnusualSpend(**{**u.__dict__, "contributors": tuple(named)}))
    return result


def unusual_alert(u: UnusualSpend) -> Alert:
    """The alert: the usual figure, the actual one, and what made the difference."""
    when = f"{u.hour:%Y-%m-%d %H:00}–{u.hour + timedelta(hours=1):%H:00} UTC"
    lines = [f"Spend from {when} was {money(u.actual_units)}; the usual for this hour of the week is "
             f"{money(u.usual_units)} (the median of the last {WEEKS} weeks; an alert above "
             f"{money(u.threshold_units)}, the usual + {u.k} × the median absolute deviation of "
             f"{money(u.mad_units)}, and at least {money(u.minimum_units)} over the usual)."]
    if u.contributors:
        lines.append("")
        lines.append("What made the difference:")
        lines += [f"- {c.kind} {c.name}: {money(c.actual_units)}, usually {money(c.usual_units)} "
                  f"(+{money(c.excess_units)})" for c in u.contributors]
    data = {"hour": u.hour.isoformat().replace("+00:00", "Z"), "actual_usd": units_text(u.actual_units),
            "usual_usd": units_text(u.usual_units), "mad_usd": units_text(u.mad_units), "k": str(u.k),
            "threshold_usd": units_text(u.threshold_units), "minimum_usd": units_text(u.minimum_units),
            "weeks": WEEKS, "weeks_with_spend": u.weeks_seen,
            "contributors": [{"kind": c.kind, "name": c.name, "actual_usd": units_text(c.actual_units),
                              "usual_usd": units_text(c.usual_units), "excess_usd": units_text(c.excess_units)}
                             for c in u.contributors]}
    return Alert(account_id=u.account_id, event="spend.unusual", dedupe_key=f"spend.unusual:{data['hour']}",
                 subject=f"Unusual spend: {money(u.actual_units)} in an hour (usually {money(u.usual_units)})",
                 text="\n".join(lines), data=data)


def unusual_spend_check(*, hour: datetime | None = None) -> list[AlertEvent]:
    """Emit `spend.unusual` for every account whose spend in `hour` (default: the last complete hour)
    was unusual, once per account and hour; returns the events recorded now."""
    hour = hour or last_complete_hour()
    found = unusual_spend_find(hour=hour)
    return alerts_emit(alerts=[unusual_alert(u) for u in found]) if found else []
