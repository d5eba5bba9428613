"""Budget and key thresholds: each percentage an account chose for a budget, and its 100%, once per crossing.

After a chunk's debits (`alerts.billing_after_debit`) ONE statement finds, among all the budgets
of the debited accounts, the (budget, subject, period, level) whose use crossed the level and were
armed, and claims them; another finds the accounts with budgets at all (none: nothing more runs).
Use is what `billing.budgets` counts: the period's ingested spend (`BudgetSpend`) plus the open,
unexpired holds made in the period that apply to the budget.

**Once per crossing.** A level's state is a `BudgetAlertLevel` row (no row: armed). The claim is
`INSERT … ON CONFLICT DO UPDATE SET armed = false, crossings = crossings + 1 WHERE armed
RETURNING`: twenty concurrent runs that all see the crossing wait on the row, and only the first
finds it armed. A use seen under the level (a reprice or a released hold lowered it, or the amount
was raised) re-arms it in the same statement, so the next crossing fires again. The dedupe key
names the crossing by its count: `budget:<id>:<subject>:<period key>:<level>:<crossings>`.

**Events.** A level under or over 100 is `budget.threshold` (`key.threshold` for a key's budget, the
key limit of the keys page, whose default is 80%); 100 is always evaluated and is
`budget.exhausted` (hard: the gateway refuses from now on).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from django.db import connection
from django.utils import timezone

from core.bulk import ids_match_sql
from core.money import units_text
from core.numbers import money
from core.timerange import zone_named

from .alert_events import Alert, alerts_emit
from .models import AlertEvent, Budget
from .periods import DAY, MONTH, WEEK, period_now

_PERIOD_COLUMNS = ("day", "week", "month")
PER = {"day": "daily", "week": "weekly", "month": "monthly", "none": "total"}  # a period as the alerts say it

# The crossings among the budgets of the accounts in `p` (their current periods, computed in Python
# from each account's zone and first weekday), claimed and re-armed in the same statement.
_CROSSINGS_SQL = """
WITH p AS (
  SELECT * FROM unnest(%(ids)s::bigint[], %(day_key)s::date[], %(day_start)s::timestamptz[],
                       %(day_end)s::timestamptz[], %(week_key)s::date[], %(week_start)s::timestamptz[],
                       %(week_end)s::timestamptz[], %(month_key)s::date[], %(month_start)s::timestamptz[],
                       %(month_end)s::timestamptz[])
    AS p(account_id, day_key, day_start, day_end, week_key, week_start, week_end, month_key, month_start, month_end)
), b AS (
  SELECT b.id, b.account_id, b.scope, b.target, b.api_key_id, b.mode, b.period, b.amount_units,
         b.alert_percentages,
         CASE b.period WHEN 'day' THEN p.day_key WHEN 'week' THEN p.week_key WHEN 'month' THEN p.month_key
                       ELSE DATE '1970-01-01' END AS period_key,
         CASE b.period WHEN 'day' THEN p.day_start WHEN 'week' THEN p.week_start
                       WHEN 'month' THEN p.month_start END AS starts,
         CASE b.period WHEN 'day' THEN p.day_end WHEN 'week' THEN p.week_end WHEN 'month' THEN p.month_end END AS ends
  FROM billing_budget b JOIN p ON p.account_id = b.account_id
), u AS (
  SELECT b.*, s.subject, s.spent_units,
         COALESCE((SELECT SUM(r.amount_units) FROM billing_reservation r
                   WHERE r.account_id = b.account_id AND r.status = 'open' AND r.expires_at > %(now)s
                     AND (b.starts IS NULL OR (r.created >= b.starts AND r.created < b.ends))
                     AND CASE b.scope WHEN 'key' THEN r.api_key_id = b.api_key_id
                                      WHEN 'user' THEN r.end_user = b.target
                                      WHEN 'each_user' THEN r.end_user = s.subject
                                      WHEN 'tag' THEN strpos(r.tags, ',' || b.target || ',') > 0
                                      ELSE TRUE END), 0) AS held
  FROM b JOIN billing_budgetspend s ON s.budget_id = b.id AND s.period_key = b.period_key
), lv AS (
  SELECT u.id AS budget_id, u.account_id, u.scope, u.target, u.mode, u.period, u.amount_units, u.subject,
         u.period_key, u.spent_units, u.held, l.level,
         (u.spent_units + u.held) > 0
           AND (u.spent_units + u.held)::numeric * 100 >= l.level::numeric * u.amount_units AS crossed
  FROM u CROSS JOIN LATERAL (
    SELECT DISTINCT e.x::int AS level FROM jsonb_array_elements_text(u.alert_percentages || '[100]'::jsonb) AS e(x)
  ) l
), rearm AS (
  UPDATE billing_budgetalertlevel t SET armed = true FROM lv
  WHERE t.budget_id = lv.budget_id AND t.subject = lv.subject AND t.period_key = lv.period_key
    AND t.level = lv.level AND NOT t.armed AND NOT lv.crossed
  RETURNING t.id
), claim AS (
  INSERT INTO billing_budgetalertlevel (budget_id, subject, period_key, level, armed, crossings)
  SELECT budget_id, subject, period_key, level, false, 1 FROM lv WHERE crossed
  ORDER BY budget_id, subject, period_key, level
  ON CONFLICT (budget_id, subject, period_key, level) DO UPDATE
    SET armed = false, crossings = billing_budgetalertlevel.crossings + 1
    WHERE billing_budgetalertlevel.armed
  RETURNING budget_id, subject, period_key, level, crossings
)
SELECT c.budget_id, c.subject, c.period_key, c.level, c.crossings, lv.account_id, lv.scope, lv.target, lv.mode,
       lv.period, lv.amount_units, lv.spent_units, lv.held, (SELECT count(*) FROM rearm)
FROM claim c JOIN lv ON lv.budget_id = c.budget_id AND lv.subject = c.subject AND lv.period_key = c.period_key
                     AND lv.level = c.level
ORDER BY c.budget_id, c.subject, c.level
"""


@dataclass(frozen=True)
class Crossing:
    """A level of a budget that its use reached, claimed now (the `crossings`-th time in its period)."""

    budget_id: int
    subject: str
    period_key: date
    level: int
    crossings: int
    account_id: int
    scope: str
    target: str
    mode: str
    period: str
    amount_units: int
    spent_units: int
    reserved_units: int

    @property
    def used_units(self) -> int:
        return self.spent_units + self.reserved_units

    @property
    def event(self) -> str:
        if self.level == 100:
            return "budget.exhausted"
        return "key.threshold" if self.scope == Budget.Scope.KEY else "budget.threshold"

    @property
    def dedupe_key(self) -> str:
        return f"budget:{self.budget_id}:{self.subject}:{self.period_key.isoformat()}:{self.level}:{self.crossings}"


def _periods(rows: list[tuple[int, str, int]], now: datetime) -> dict[str, list]:
    """The current day, week and month (key, start, end) of each account, as the statement's arrays."""
    arrays: dict[str, list] = {"ids": []} | {f"{p}_{part}": [] for p in _PERIOD_COLUMNS
                                             for part in ("key", "start", "end")}
    for account_id, zone_name, week_start in rows:
        zone = zone_named(zone_name)
        arrays["ids"].append(account_id)
        for period in (DAY, WEEK, MONTH):
            key, start, end = period_now(period=period, now=now, zone=zone, week_start=week_start)
            arrays[f"{period}_key"].append(key)
            arrays[f"{period}_start"].append(start)
            arrays[f"{period}_end"].append(end)
    return arrays


def budget_crossings_claim(*, account_ids: Iterable[int], now: datetime | None = None) -> list[Crossing]:
    """Claim the levels the budgets of these accounts crossed (and re-arm those they fell back under).

    Two statements whatever the number of accounts: the accounts with a budget (none: stop), then
    the crossings, claimed. Each crossing is returned to one caller only, also concurrently.
    """
    ids = sorted(set(account_ids))
    if not ids:
        return []
    now = now or timezone.now()
    match, params = ids_match_sql("b.account_id", ids)
    with connection.cursor() as cursor:
        # From the budgets (few, and none for most of a chunk's accounts) to their accounts.
        cursor.execute("SELECT a.id, a.time_zone, a.week_start FROM billing_account a WHERE a.id IN"
                       f" (SELECT b.account_id FROM billing_budget b WHERE {match}) ORDER BY a.id", params)
        accounts = cursor.fetchall()
        if not accounts:
            return []
        cursor.execute(_CROSSINGS_SQL, {**_periods(accounts, now), "now": now})
        rows = cursor.fetchall()
    return [Crossing(budget_id=r[0], subject=r[1], period_key=r[2], level=r[3], crossings=r[4], account_id=r[5],
                     scope=r[6], target=r[7], mode=r[8], period=r[9], amount_units=int(r[10]),
                     spent_units=int(r[11]), reserved_units=int(r[12])) for r in rows]


def _named(crossing: Crossing) -> str:
    if crossing.scope == Budget.Scope.KEY:
        return f"API key {crossing.target}"
    if crossing.scope == Budget.Scope.ACCOUNT:
        return "The account's budget"
    if crossing.scope == Budget.Scope.EACH_USER:
        return f"The budget of end user {crossing.subject}"
    return f"The {crossing.scope} budget {crossing.target}"


def crossing_alert(crossing: Crossing) -> Alert:
    """The alert of one crossing: what was used of which amount, and what happens now."""
    c = crossing
    named = _named(c)
    used, amount = money(c.used_units), money(c.amount_units)
    if c.level == 100:
        subject = f"{named} is exhausted" if c.scope != Budget.Scope.KEY else f"{named} reached its limit"
        after = (" The gateway refuses its requests until the period resets." if c.mode == Budget.Mode.HARD
                 else " It is a soft budget: requests go on, and so does the spend.")
    else:
        subject = f"{named} at {c.level}% of its {PER[c.period]} budget"
        after = ""
    text = (f"{named} used {used} of its {amount} {PER[c.period]} budget ({c.level}% reached; "
            f"{money(c.spent_units)} spent, {money(c.reserved_units)} held for requests in flight).{after}")
    data = {"budget_id": c.budget_id, "scope": c.scope, "target": c.target, "subject": c.subject,
            "mode": c.mode, "period": c.period, "period_key": c.period_key.isoformat(), "level": c.level,
            "crossing": c.crossings, "amount_usd": units_text(c.amount_units), "used_usd": units_text(c.used_units),
            "spent_usd": units_text(c.spent_units), "reserved_usd": units_text(c.reserved_units)}
    return Alert(account_id=c.account_id, event=c.event, dedupe_key=c.dedupe_key, subject=subject[:200],
                 text=text, data=data)


def budget_thresholds_check(*, account_ids: Iterable[int], now: datetime | None = None) -> list[AlertEvent]:
    """Emit `budget.threshold` / `key.threshold` / `budget.exhausted` for each level these accounts'
    budgets crossed since they were last armed; returns the events recorded now."""
    crossings = budget_crossings_claim(account_ids=account_ids, now=now)
    return alerts_emit(alerts=[crossing_alert(c) for c in crossings]) if crossings else []
