"""Emails after usage: a low balance (once per crossing) and keys at 80% and 100% of their limit
(once per level per interval). Each claim is a conditional UPDATE, so concurrent checks send one."""
from __future__ import annotations

from collections.abc import Iterable

from django.db.models import F, Q

from core.money import format_usd

from .models import Account, ApiKey
from .promos import grants_expire
from .purchases import auto_topup_run, owners_email
from .selectors import KeyLimit, key_limits

KEY_ALERT_LEVELS = ((100, "alert_100_interval"), (80, "alert_80_interval"))


def low_balance_check(*, account_id: int) -> bool:
    """Email the owners when the balance is under the account's threshold, once per crossing."""
    claimed = Account.objects.filter(
        pk=account_id, low_balance_armed=True, low_balance_threshold_units__isnull=False,
        balance_units__lt=F("low_balance_threshold_units")).update(low_balance_armed=False)
    if not claimed:
        return False
    account = Account.objects.get(pk=account_id)
    owners_email(account=account, subject=f"Low credit balance on {account}",
                 body=(f"The credit balance of {account} is {format_usd(account.balance_units)}, under your alert "
                       f"threshold of {format_usd(account.low_balance_threshold_units)}.\n\n"
                       "Buy credits or turn on auto top-up under Account → Credits."))
    return True


def _interval_mark(limit: KeyLimit):
    """What identifies the current interval in the alert columns (`never` has one forever)."""
    return limit.interval_start or limit.key.created


def key_alerts_check(*, account_id: int, now=None) -> list[tuple[int, int]]:
    """Email owners about keys that reached 80% or 100% of their limit in this interval; returns
    the (key id, level) pairs that were sent."""
    sent = []
    for limit in key_limits(account_id=account_id, now=now):
        if not limit.limit_units:
            continue
        mark = _interval_mark(limit)
        for level, column in KEY_ALERT_LEVELS:
            if limit.usage_units * 100 < limit.limit_units * level:
                continue
            claimed = ApiKey.objects.filter(pk=limit.key.pk).filter(
                Q(**{f"{column}__isnull": True}) | ~Q(**{column: mark})).update(**{column: mark})
            if claimed:
                sent.append((limit.key.pk, level))
                key = limit.key
                owners_email(account=key.account, subject=f"API key {key} at {level}% of its limit",
                             body=(f"The key {key} ({key.external_id}) spent {format_usd(limit.usage_units)} of its "
                                   f"{format_usd(limit.limit_units)} {limit.interval} limit."
                                   + (" The gateway refuses it until the limit resets." if level == 100 else "")))
            break  # the highest level reached is the one to tell
    return sent


def billing_after_debit(*, account_ids: Iterable[int]) -> None:
    """After usage debits: due promo expiries, low-balance alerts, auto top-ups and key-limit alerts.

    Expiring here too means promo credits expire without a scheduler as long as traffic flows;
    `manage.py credits_expire` covers idle accounts.
    """
    account_ids = sorted(set(account_ids))
    grants_expire(account_ids=account_ids)
    for account_id in account_ids:
        low_balance_check(account_id=account_id)
        auto_topup_run(account_id=account_id)
        key_alerts_check(account_id=account_id)
