"""The one door for money: every ledger entry is written here, with its balance, in one transaction.

`ledger_post` posts one entry, `ledger_debit_usage` a chunk's usage entries at once (the same rule
on sets), `ledger_reprice` a reprice's entries the same way, `ledger_adjust` a staff correction;
`ledger_verify` checks the books.
"""
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Max, Sum
from django.utils import timezone

from core.money import units_to_usd

from .lock_objects import account_lock, accounts_lock_ids
from .models import Account, LedgerEntry


def ledger_post(*, account_id: int, kind: str, amount_units: int, idempotency_key: str,
                reference: str = "", actor: str = "", memo: str = "") -> LedgerEntry | None:
    """Post one entry and move the balance with it; None when the key was already posted."""
    if not isinstance(amount_units, int):
        raise TypeError("amount_units must be an int (units of 1e-10 USD)")
    with transaction.atomic():
        # The row lock serializes writers of one account, so the key check below cannot race.
        account = account_lock(account_id=account_id)
        if LedgerEntry.objects.filter(idempotency_key=idempotency_key).exists():
            return None
        account.balance_units += amount_units
        fields = ["balance_units"]
        # Back at or above a threshold: the next crossing below it alerts (or tops up) again.
        if (not account.low_balance_armed and account.low_balance_threshold_units is not None
                and account.balance_units >= account.low_balance_threshold_units):
            account.low_balance_armed = True
            fields.append("low_balance_armed")
        if not account.auto_topup_armed and account.balance_units >= account.auto_topup_threshold_units:
            account.auto_topup_armed = True
            fields.append("auto_topup_armed")
        account.save(update_fields=fields)
        return LedgerEntry.objects.create(
            account=account, kind=kind, amount_units=amount_units, balance_after_units=account.balance_units,
            idempotency_key=idempotency_key, reference=reference, actor=actor, memo=memo)


def _debits_source(debits: list[tuple[int, int]]) -> tuple[str, list]:
    """Return the debits as a row source `(account_id, units)`, one parameter whatever their number.

    Two arrays (unnest): the statement's size and its parameter count stay constant at any chunk size.
    """
    return ("(SELECT * FROM unnest(%s::bigint[], %s::bigint[])) AS d(account_id, units)",
            [[a for a, _ in debits], [u for _, u in debits]])


# The usage entries of a chunk, posted in one statement: each entry's balance after is the locked
# balance minus its debit; an idempotency key already posted (a retried chunk) is skipped.
_USAGE_ENTRIES_SQL = (
    "INSERT INTO billing_ledgerentry (account_id, kind, amount_units, balance_after_units, idempotency_key,"
    " reference, actor, memo, created)"
    " SELECT a.id, %s, -d.units, a.balance_units - d.units, {key}, %s, %s, %s, %s"
    " FROM {source} JOIN billing_account a ON a.id = d.account_id ORDER BY a.id"
    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING account_id, amount_units")
# The balances move by exactly the entries that went in; the arming rule is ledger_post's.
_BALANCES_SQL = (
    "UPDATE billing_account SET balance_units = billing_account.balance_units + e.amount_units,"
    " low_balance_armed = (billing_account.low_balance_armed OR (billing_account.low_balance_threshold_units"
    " IS NOT NULL AND billing_account.balance_units + e.amount_units >= billing_account.low_balance_threshold_units)),"
    " auto_topup_armed = (billing_account.auto_topup_armed OR billing_account.balance_units + e.amount_units"
    " >= billing_account.auto_topup_threshold_units)"
    " FROM {entries} WHERE billing_account.id = e.account_id")


def ledger_debit_usage(*, spend_by_account: dict[int, int], idempotency_prefix: str) -> list[int]:
    """Debit each account once for ingested spend (units); returns the accounts debited now.

    One set of statements for the whole chunk, whatever the number of accounts: lock them in id
    order, insert every entry with its balance after, move every balance by exactly the entries
    that went in. The rule is ledger_post's, applied to all at once: the account row lock
    serializes this with purchases, refunds and grants, and the entries' unique idempotency key
    (`<prefix>:account:<id>`) makes a retried chunk post nothing. Call inside the chunk's
    transaction; the caller queues the after-debit checks for the returned accounts on commit.
    """
    return _debits_post(debit_by_account=spend_by_account, kind=LedgerEntry.Kind.USAGE,
                        idempotency_prefix=idempotency_prefix, reference=idempotency_prefix, actor="ingest",
                        memo="usage")


def ledger_reprice(*, debit_by_account: dict[int, int], idempotency_prefix: str, reference: str, actor: str,
                   memo: str) -> list[int]:
    """Post a reprice's one entry per account (analytics.repricing); returns the accounts posted now.

    `debit_by_account` is new spend minus old spend (units): positive debits the account more,
    negative credits back an overcharge. Set-based as a chunk's usage, with the key
    `<prefix>:account:<id>`, so applying the same reprice again posts nothing.
    """
    return _debits_post(debit_by_account=debit_by_account, kind=LedgerEntry.Kind.REPRICING,
                        idempotency_prefix=idempotency_prefix, reference=reference, actor=actor, memo=memo)


def _debits_post(*, debit_by_account: dict[int, int], kind: str, idempotency_prefix: str, reference: str,
                 actor: str, memo: str) -> list[int]:
    """Post `-debit` to each account with a non-zero debit, in id order, in one set of statements."""
    debits = sorted((account_id, units) for account_id, units in debit_by_account.items() if units)
    if not debits:
        return []
    if any(not isinstance(units, int) or not isinstance(account_id, int) for account_id, units in debits):
        raise TypeError("debits map account ids to int units (1e-10 USD)")
    source, params = _debits_source(debits)
    insert = _USAGE_ENTRIES_SQL.format(key="CAST(%s AS TEXT) || CAST(a.id AS TEXT)", source=source)
    # In SELECT-list order: kind, the key's prefix, reference, actor, memo, created; then the debits.
    insert_params = [kind, f"{idempotency_prefix}:account:", reference, actor, memo,
                     connection.ops.adapt_datetimefield_value(timezone.now()), *params]
    with transaction.atomic(), connection.cursor() as cursor:
        accounts_lock_ids(account_ids=[account_id for account_id, _ in debits])
        cursor.execute(f"WITH e AS ({insert}) {_BALANCES_SQL.format(entries='e')} RETURNING billing_account.id",
                       insert_params)
        return sorted(row[0] for row in cursor.fetchall())


def ledger_adjust(*, account_id: int, amount_units: int, reason: str, actor: str,
                  idempotency_key: str) -> LedgerEntry | None:
    """Post a staff correction of a balance: an adjustment entry with its reason and who made it."""
    if not reason.strip():
        raise ValueError("an adjustment needs a reason")
    if not actor:
        raise ValueError("an adjustment needs an actor")
    return ledger_post(account_id=account_id, kind=LedgerEntry.Kind.ADJUSTMENT, amount_units=amount_units,
                       idempotency_key=idempotency_key, reference="admin", actor=actor, memo=reason.strip())


def _usd(units: int) -> str:
    """Format units exactly, to the unit: 18.7500000001 USD."""
    return f"{units_to_usd(units):f} USD"


@dataclass(frozen=True)
class LedgerCheck:
    """What `ledger_verify` found: one line per difference."""

    checked: int
    with_entries: int
    problems: list[str] = field(default_factory=list)


def ledger_verify() -> LedgerCheck:
    """Compare every balance with the sum of its entries and with the last entry's balance after."""
    sums = dict(LedgerEntry.objects.values_list("account_id").annotate(s=Sum("amount_units"))
                .values_list("account_id", "s"))
    last_ids = LedgerEntry.objects.values("account_id").annotate(last=Max("id")).values_list("last", flat=True)
    last_after = dict(LedgerEntry.objects.filter(pk__in=last_ids).values_list("account_id", "balance_after_units"))
    problems, checked = [], 0
    for account_id, external_id, balance in Account.objects.order_by("pk").values_list(
            "pk", "external_id", "balance_units").iterator(chunk_size=5000):
        checked += 1
        total = int(sums.get(account_id) or 0)
        if balance != total:
            problems.append(f"{external_id} (id {account_id}): balance {_usd(balance)} but entries sum "
                            f"to {_usd(total)} (difference {_usd(balance - total)})")
        after = last_after.get(account_id, 0)
        if balance != after:
            problems.append(f"{external_id} (id {account_id}): balance {_usd(balance)} but the last "
                            f"entry's balance after is {_usd(after)}")
    return LedgerCheck(checked=checked, with_entries=len(sums), problems=problems)
