"""The one door for money: every balance change writes a ledger entry in the same transaction."""
from collections.abc import Iterable

from django.db import transaction

from core.bulk import ids_by_key

from .models import Account, ApiKey, LedgerEntry


def accounts_lock(*, account_ids: Iterable[int]) -> dict[int, Account]:
    """Lock account rows in primary-key order (deadlock-free); call inside a transaction."""
    ids = sorted(set(account_ids))
    return {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=ids).order_by("pk")}


def ledger_post(*, account_id: int, kind: str, amount_units: int, idempotency_key: str,
                reference: str = "", actor: str = "", memo: str = "") -> LedgerEntry | None:
    """Post one entry and move the balance with it; None when the key was already posted."""
    if not isinstance(amount_units, int):
        raise TypeError("amount_units must be an int (units of 1e-10 USD)")
    with transaction.atomic():
        # The row lock serializes writers of one account, so the key check below cannot race.
        account = Account.objects.select_for_update().get(pk=account_id)
        if LedgerEntry.objects.filter(idempotency_key=idempotency_key).exists():
            return None
        account.balance_units += amount_units
        account.save(update_fields=["balance_units"])
        return LedgerEntry.objects.create(
            account=account, kind=kind, amount_units=amount_units, balance_after_units=account.balance_units,
            idempotency_key=idempotency_key, reference=reference, actor=actor, memo=memo)


def ledger_debit_usage(*, spend_by_account: dict[int, int], idempotency_prefix: str) -> int:
    """Debit each account once for ingested spend (units); returns how many entries were posted."""
    posted = 0
    for account_id in sorted(spend_by_account):
        spend = spend_by_account[account_id]
        if spend == 0:
            continue
        entry = ledger_post(account_id=account_id, kind=LedgerEntry.Kind.USAGE, amount_units=-spend,
                            idempotency_key=f"{idempotency_prefix}:account:{account_id}",
                            reference=idempotency_prefix, actor="ingest", memo="usage")
        posted += entry is not None
    return posted


def accounts_register(*, external_ids: Iterable[str]) -> dict[str, int]:
    """Return account ids by gateway id, creating the unknown ones (safe under concurrency)."""
    return ids_by_key(Account, "external_id", external_ids,
                      lambda missing: [Account(external_id=e) for e in sorted(missing)])


def api_keys_register(*, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Return API key ids by (account id, key id), creating the unknown ones."""
    wanted = set(keys)
    if not wanted:
        return {}
    account_ids = {account_id for account_id, _ in wanted}
    external = {external_id for _, external_id in wanted}

    def existing() -> dict[tuple[int, str], int]:
        rows = ApiKey.objects.filter(account_id__in=account_ids, external_id__in=external)
        return {(a, e): pk for a, e, pk in rows.values_list("account_id", "external_id", "pk")}

    found = existing()
    missing = wanted - found.keys()
    if missing:
        ApiKey.objects.bulk_create([ApiKey(account_id=a, external_id=e) for a, e in sorted(missing)],
                                   ignore_conflicts=True)
        found = existing()
    return {key: found[key] for key in wanted}
