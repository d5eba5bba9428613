"""What follows usage debits, on sets: due promo expiries, the low-balance email (once per
crossing), auto top-up (once per crossing) and keys at 80% and 100% of their limit (once per level
per interval).

A chunk debits tens of thousands of accounts and a handful crossed something: each check is one
statement over all of them that selects that handful, and only those are then handled one by
one. Every email and top-up is claimed by a conditional UPDATE, so a duplicate or concurrent run
sends nothing twice.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from core.bulk import ids_match_sql
from core.numbers import money

from .lock_objects import accounts_for_update_sql
from .models import Account, ApiKey
from .promos import grants_expire
from .purchases import auto_topups_run, owners_email
from .selectors import key_alerts_due, owner_emails

KEY_ALERT_COLUMNS = {100: "alert_100_interval", 80: "alert_80_interval"}

_LOW_BALANCE = ("low_balance_armed AND low_balance_threshold_units IS NOT NULL"
                " AND balance_units < low_balance_threshold_units")


def low_balance_threshold_set(*, account: Account, threshold_units: int | None) -> None:
    """Set (or clear) the low-balance alert threshold; the next crossing below it emails the owners."""
    account.low_balance_threshold_units, account.low_balance_armed = threshold_units, True
    account.save(update_fields=["low_balance_threshold_units", "low_balance_armed"])


def low_balance_claim(*, account_ids: Iterable[int]) -> list[int]:
    """Disarm and return the accounts among these that are under their alert threshold and armed.

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
        cursor.execute(f"UPDATE {table} SET low_balance_armed = false WHERE {where} AND {_LOW_BALANCE} RETURNING id",
                       params)
        return sorted(row[0] for row in cursor.fetchall())


def low_balance_alerts(*, account_ids: Iterable[int]) -> list[int]:
    """Email the owners of the accounts among these that went under their threshold; returns them."""
    claimed = low_balance_claim(account_ids=account_ids)
    if not claimed:
        return []
    emails = owner_emails(account_ids=claimed)
    for account in Account.objects.filter(pk__in=claimed).order_by("pk"):
        owners_email(account=account, emails=emails.get(account.pk, []),
                     subject=f"Low credit balance on {account}",
                     body=(f"The credit balance of {account} is {money(account.balance_units)}, under your alert "
                           f"threshold of {money(account.low_balance_threshold_units)}.\n\n"
                           "Buy credits or turn on auto top-up under Account → Credits."))
    return claimed


def low_balance_check(*, account_id: int) -> bool:
    """Email the owners when the balance is under the account's threshold, once per crossing."""
    return bool(low_balance_alerts(account_ids=[account_id]))


def key_alerts_send(*, account_ids: Iterable[int], now: datetime | None = None) -> list[tuple[int, int]]:
    """Email owners about keys of these accounts that reached 80% or 100% of their limit (their hard key
    budget) in its current period; returns the (key id, level) pairs that were sent."""
    now = now or timezone.now()
    due = key_alerts_due(account_ids=account_ids, now=now)
    if not due:
        return []
    keys = ApiKey.objects.select_related("account").in_bulk([alert.key_id for alert in due])
    emails = owner_emails(account_ids={key.account_id for key in keys.values()})
    sent = []
    for alert in due:
        key = keys.get(alert.key_id)
        if key is None:  # deleted since the select
            continue
        column = KEY_ALERT_COLUMNS[alert.level]
        mark = alert.mark  # the period's start (`never`: the key's creation)
        claimed = ApiKey.objects.filter(pk=key.pk).filter(
            Q(**{f"{column}__isnull": True}) | ~Q(**{column: mark})).update(**{column: mark})
        if not claimed:
            continue
        sent.append((key.pk, alert.level))
        owners_email(account=key.account, emails=emails.get(key.account_id, []),
                     subject=f"API key {key} at {alert.level}% of its limit",
                     body=(f"The key {key} ({key.external_id}) spent {money(alert.usage_units)} of its "
                           f"{money(alert.limit_units)} {alert.interval} limit."
                           + (" The gateway refuses it until the limit resets." if alert.level == 100 else "")))
    return sent


def key_alerts_check(*, account_id: int, now: datetime | None = None) -> list[tuple[int, int]]:
    """Run `key_alerts_send` for one account."""
    return key_alerts_send(account_ids=[account_id], now=now)


def billing_after_debit(*, account_ids: Iterable[int]) -> None:
    """Run what follows usage debits: due promo expiries, low-balance alerts, auto top-ups and key-limit alerts.

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
    key_alerts_send(account_ids=account_ids, now=now)
