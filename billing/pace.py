"""At this pace: "the monthly budget (or the balance) runs out on <date>, before the period ends".

Once per period (`forecast.runs_out`, dedupe key `forecast:balance:<month>` or
`forecast:budget:<id>:<period key>`), when the forecast's date falls inside the period: for the
balance, the credits page's runway (`selectors.spend_forecast`: the balance over the mean daily
spend of the last 14 complete days) ends before the month does; for a monthly budget, the budgets
page's pace (`budget_selectors.budget_pace`) reaches the amount before the month's end. The
figures that fired are kept in the event's data and shown on those pages beside the live forecast
(`fired_forecasts`), so the page says which forecast was sent.

Run hourly (`tasks.billing_alerts_hourly`). ONE query picks the candidates among all accounts: those
with spend in the last 16 UTC days whose balance could run out within the month at the largest mean
daily spend those days allow (and monthly budgets of such accounts), not yet alerted this period;
only those few are then forecast exactly, with the pages' own functions.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction

from django.db import connection
from django.utils import timezone

from core import forecast
from core.money import units_text
from core.numbers import money

from .alert_events import Alert, alerts_emit
from .budget_selectors import budget_pace, budget_uses
from .models import Account, AlertEvent, Budget
from .selectors import spend_forecast

WINDOW_DAYS = forecast.HISTORY_DAYS + 2  # the pages' 14 local days lie within the last 16 UTC days

# Accounts (and their monthly budgets) that may run out this month. A superset of the exact test:
# the pages' mean is at most the window's spend over min(14, the account's age in days).
_CANDIDATES_SQL = """
WITH spend AS (
  SELECT account_id, SUM(spend_units) AS units FROM analytics_accountday
  WHERE day >= %(since)s GROUP BY account_id HAVING SUM(spend_units) > 0
)
SELECT a.id,
       a.balance_units > 0 AND a.balance_units::numeric * LEAST(14, GREATEST(1, %(today)s - a.created::date))
         < s.units::numeric * 32
       AND NOT EXISTS (SELECT 1 FROM billing_alertevent e WHERE e.account_id = a.id
                       AND e.dedupe_key = 'forecast:balance:' || to_char(%(now)s AT TIME ZONE a.time_zone, 'YYYY-MM')),
       ARRAY(SELECT b.id FROM billing_budget b WHERE b.account_id = a.id AND b.period = 'month' AND b.amount_units > 0
               AND NOT EXISTS (SELECT 1 FROM billing_alertevent e WHERE e.account_id = a.id
                               AND e.dedupe_key = 'forecast:budget:' || b.id || ':'
                                                  || to_char(%(now)s AT TIME ZONE a.time_zone, 'YYYY-MM-01'))
             ORDER BY b.id)
FROM spend s JOIN billing_account a ON a.id = s.account_id
ORDER BY a.id
"""


def _candidates(now: datetime) -> list[tuple[int, bool, list[int]]]:
    with connection.cursor() as cursor:
        cursor.execute(_CANDIDATES_SQL, {"since": (now - timedelta(days=WINDOW_DAYS)).date(), "today": now.date(),
                                         "now": now})
        return [(r[0], r[1], r[2]) for r in cursor.fetchall() if r[1] or r[2]]


def _balance_alert(account: Account, now: datetime) -> Alert | None:
    shown = spend_forecast(account=account, now=now)
    p = shown.projection
    if p.runway != forecast.Runway.DAYS or p.runway_days is None or p.days_left <= Fraction(p.runway_days):
        return None
    zone = account.zone
    runs_out = (now + timedelta(days=float(p.runway_days))).astimezone(zone).date()
    month = now.astimezone(zone).date().replace(day=1)
    text = (f"At this pace the credit balance of {account} runs out on {runs_out:%a %Y-%m-%d}, before the month ends: "
            f"{money(shown.balance_units)} left, {money(p.mean_daily_units)} a day over the last {p.history_days} "
            f"days, about {p.runway_days} days.")
    return Alert(account_id=account.pk, event="forecast.runs_out", dedupe_key=f"forecast:balance:{month:%Y-%m}",
                 subject=f"Credit balance of {account} runs out on {runs_out:%Y-%m-%d}"[:200], text=text,
                 data={"what": "balance", "runs_out_on": runs_out.isoformat(), "period": month.isoformat(),
                       "balance_usd": units_text(shown.balance_units), "mean_daily_usd": units_text(p.mean_daily_units),
                       "history_days": p.history_days, "runway_days": str(p.runway_days),
                       "computed_at": now.isoformat().replace("+00:00", "Z")})


def _budget_alerts(account: Account, budget_ids: set[int], now: datetime) -> list[Alert]:
    alerts = []
    for use in budget_uses(account=account, now=now, scope=None):
        b = use.budget
        if b.pk not in budget_ids or use.remaining_units <= 0:  # exhausted: `budget.exhausted` said so
            continue
        pace = budget_pace(use=use, account=account, now=now)
        if pace.runs_out_on is None:
            continue
        key = f"forecast:budget:{b.pk}:{use.period_key.isoformat()}"
        named = "the account's" if b.scope == Budget.Scope.ACCOUNT else f"the {b.scope} {b.target or use.subject}"
        text = (f"At this pace {named} monthly budget of {money(b.amount_units)} runs out on "
                f"{pace.runs_out_on:%a %Y-%m-%d}, before the month ends: {money(use.used_units)} used, "
                f"{money(pace.mean_daily_units)} a day over the last {pace.history_days} days, "
                f"{money(pace.period_end_units)} by the month's end.")
        alerts.append(Alert(
            account_id=account.pk, event="forecast.runs_out", dedupe_key=key,
            subject=f"Monthly budget runs out on {pace.runs_out_on:%Y-%m-%d}: {b}"[:200], text=text,
            data={"what": "budget", "budget_id": b.pk, "runs_out_on": pace.runs_out_on.isoformat(),
                  "period": use.period_key.isoformat(), "amount_usd": units_text(b.amount_units),
                  "used_usd": units_text(use.used_units), "mean_daily_usd": units_text(pace.mean_daily_units),
                  "history_days": pace.history_days, "period_end_usd": units_text(pace.period_end_units or 0),
                  "computed_at": now.isoformat().replace("+00:00", "Z")}))
    return alerts


def pace_alerts_check(*, now: datetime | None = None) -> list[AlertEvent]:
    """Emit `forecast.runs_out` for every balance and monthly budget that runs out before its period
    ends at this pace, once per period; returns the events recorded now."""
    now = now or timezone.now()
    candidates = _candidates(now)
    if not candidates:
        return []
    accounts = Account.objects.in_bulk([c[0] for c in candidates])
    alerts: list[Alert] = []
    for account_id, balance, budget_ids in candidates:  # the few that may run out, forecast as the pages do
        account = accounts[account_id]
        if balance and (alert := _balance_alert(account, now)) is not None:
            alerts.append(alert)
        if budget_ids:
            alerts += _budget_alerts(account, set(budget_ids), now)
    return alerts_emit(alerts=alerts) if alerts else []


def fired_forecasts(*, account: Account, now: datetime | None = None) -> dict:
    """The forecasts sent this period, for the pages: {"balance": data, budget id: data}."""
    now = now or timezone.now()
    month = now.astimezone(account.zone).date().replace(day=1)
    fired: dict = {}
    for event in AlertEvent.objects.filter(account=account, event="forecast.runs_out").order_by("created"):
        data = dict(event.data, sent=event.created, text=event.text)
        if data.get("what") == "balance" and data.get("period") == month.isoformat():
            fired["balance"] = data
        elif data.get("what") == "budget" and data.get("period") == month.isoformat():
            fired[data["budget_id"]] = data
    return fired
