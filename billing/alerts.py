"""What follows usage debits, on sets: due promo expiries, the low-balance alert (once per
crossing), auto top-up (once per crossing) and the budgets' and keys' threshold alerts (once per
crossing, `billing.thresholds`).

A chunk debits tens of thousands of accounts and a handful crossed something: each check is one
statement over all of them that selects that handful, and only those are then handled. Every alert
and top-up is claimed by a conditional UPDATE (or INSERT … ON CONFLICT … WHERE), so a duplicate or
concurrent run sends nothing twice; alerts are recorded and sent through `alert_events.alerts_emit`.
"""
from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from core.bulk import ids_match_sql
from core.money import units_text
from core.numbers import money

from .alert_events import Alert, alerts_emit
from .lock_objects import accounts_for_update_sql
from .models import Account
from .promos import grants_expire
from .purchases import auto_topups_run
from .thresholds import budget_thresholds_check

_LOW_BALANCE = ("low_balance_armed AND low_balance_threshold_units IS NOT NULL"
                " AND balance_units < low_balance_threshold_units")


def low_balance_threshold_set(*, account: Account, threshold_units: int | None) -> None:
    """Set (or clear) the low-balance alert threshold; the next crossing below it emails the owners."""
    account.low_balance_threshold_units, account.low_balance_armed = threshold_units, True
    account.save(update_fields=["low_balance_threshold_units", "low_balance_armed"])


def unusual_spend_settings_set(*, account: Account, k: Decimal, minimum_units: int) -> None:
    """Set the unusual-spend alert's k (0.5 to 99.9, one decimal) and minimum amount (billing.unusual)."""
    if not Decimal("0.5") <= k <= Decimal("99.9") or k != k.quantize(Decimal("0.1")):
        raise ValueError("k is 0.5 to 99.9, with one decimal")
    if minimum_units < 0:
        raise ValueError("the minimum cannot be negative")
    account.unusual_spend_k, account.unusual_spend_min_units = k, minimum_units
    account.save(update_fields=["unusual_spend_k", "unusual_spend_min_units"])


def low_balance_claim(*, account_ids: Iterable[int]) -> list[tuple]:
    """Disarm and return the accounts among these that are under their alert threshold and armed:
    (id, name, external id, balance, threshold, crossings) rows, `crossings` counting this one.

    One conditional UPDATE … RETURNING for all of them: a concurrent claim of the same crossing
    finds the account disarmed and returns nothing; the ledger re-arms it once the balance is
    back at or above the threshold.
    """
    table = Account._meta.db_table
    match, params = ids_match_sql("id", account_ids)
    # The rows are locked in id order, as every writer of accounts takes them (no deadlock
    # with a chunk's debit running meanwhile).
    where = f"id IN ({accounts_for_update_sql(f'{match} AND {_LOW_BALANCE}')})"
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET low_balance_armed = false, low_balance_crossings = low_balance_crossings + 1"
                       f" WHERE {where} AND {_LOW_BALANCE}"
                       " RETURNING id, name, external_id, balance_units, low_balance_threshold_units,"
                       " low_balance_crossings", params)
        return sorted(cursor.fetchall())


def low_balance_alerts(*, account_ids: Iterable[int]) -> list[int]:
    """Emit `balance.low` for the accounts among these that went under their threshold; returns them."""
    claimed = low_balance_claim(account_ids=account_ids)
    alerts = [
        Alert(account_id=account_id, event="balance.low", dedupe_key=f"balance.low:{crossings}",
              subject=f"Low credit balance on {name or external_id}"[:200],
              text=(f"The credit balance of {name or external_id} is {money(balance)}, under your alert "
                    f"threshold of {money(threshold)}.\n\nBuy credits or turn on auto top-up under Account → Credits."),
              data={"balance_usd": units_text(balance), "threshold_usd": units_text(threshold), "crossing": crossings})
        for account_id, name, external_id, balance, threshold, crossings in claimed]
    alerts_emit(alerts=alerts)
    return [row[0] for row in claimed]


def low_balance_check(*, account_id: int) -> bool:
    """Email the owners when the balance is under the account's threshold, once per crossing."""
    return bool(low_balance_alerts(account_ids=[account_id]))


def billing_after_debit(*, account_ids: Iterable[int]) -> None:
    """Run what follows usage debits: due promo expiries, low-balance alerts, auto top-ups, budget and key alerts.

    A constant number of statements whatever the number of accounts, plus a few for each account
    or key that crossed something. Expiring here too means promo credits expire without a
    scheduler as long as traffic flows; `manage.py credits_expire` covers idle accounts.
    """
    account_ids = sorted(set(account_ids))
    if not account_ids:
        return
    now = timezone.now()
    grants_expire(account_ids=account_ids, now=now)
    low_balance_alerts(account_ids=account_ids)
    auto_topups_run(account_ids=account_ids)
    budget_thresholds_check(account_ids=account_ids, now=now)
