"""The one door for money: every balance change writes a ledger entry in the same transaction."""
import secrets
from collections.abc import Iterable

import orjson
from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone

from core.bulk import SQLITE_BATCH, batches, ids_by_key, ids_match_sql

from .models import Account, AccountToken, ApiKey, Invitation, LedgerEntry, Membership

ROLE_RANK = {Membership.Role.VIEWER: 0, Membership.Role.MEMBER: 1, Membership.Role.OWNER: 2}


def accounts_lock(*, account_ids: Iterable[int]) -> dict[int, Account]:
    """Lock account rows in primary-key order (deadlock-free); call inside a transaction."""
    ids = sorted(set(account_ids))
    return {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=ids).order_by("pk")}


def accounts_lock_ids(*, account_ids: Iterable[int]) -> None:
    """Lock many account rows in primary-key order in one statement; call inside a transaction.

    For a chunk's tens of thousands of accounts, where loading them as objects would cost more
    than the work. SQLite needs nothing: its write transactions are serialized (IMMEDIATE).
    """
    ids = set(account_ids)
    if not ids or connection.vendor != "postgresql":
        return
    match, params = ids_match_sql("id", ids)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM (SELECT id FROM billing_account WHERE {match}"
                       " ORDER BY id FOR UPDATE) AS locked", params)


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
    """A row source `(account_id, units)` of the debits, as one parameter whatever their number.

    PostgreSQL takes two arrays (unnest), SQLite one JSON array (json_each): the statement's size
    and its parameter count stay constant, under SQLite's 32,766-variable limit at any chunk size.
    """
    if connection.vendor == "postgresql":
        return ("(SELECT * FROM unnest(%s::bigint[], %s::bigint[])) AS d(account_id, units)",
                [[a for a, _ in debits], [u for _, u in debits]])
    return ("(SELECT json_extract(value, '$[0]') AS account_id, json_extract(value, '$[1]') AS units"
            " FROM json_each(%s)) AS d", [orjson.dumps(debits).decode()])


# The usage entries of a chunk, posted in one statement: each entry's balance after is the locked
# balance minus its debit; an idempotency key already posted (a retried chunk) is skipped.
_USAGE_ENTRIES_SQL = (
    "INSERT INTO billing_ledgerentry (account_id, kind, amount_units, balance_after_units, idempotency_key,"
    " reference, actor, memo, created)"
    " SELECT a.id, %s, -d.units, a.balance_units - d.units, {key}, %s, %s, %s, %s"
    " FROM {source} JOIN billing_account a ON a.id = d.account_id WHERE 1 = 1 ORDER BY a.id"
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
    debits = sorted((account_id, units) for account_id, units in spend_by_account.items() if units)
    if not debits:
        return []
    if any(not isinstance(units, int) or not isinstance(account_id, int) for account_id, units in debits):
        raise TypeError("spend_by_account maps account ids to int units (1e-10 USD)")
    source, params = _debits_source(debits)
    insert = _USAGE_ENTRIES_SQL.format(key="CAST(%s AS TEXT) || CAST(a.id AS TEXT)", source=source)
    # In SELECT-list order: kind, the key's prefix, reference, actor, memo, created; then the debits.
    insert_params = [LedgerEntry.Kind.USAGE, f"{idempotency_prefix}:account:", idempotency_prefix, "ingest",
                     "usage", connection.ops.adapt_datetimefield_value(timezone.now()), *params]
    with transaction.atomic(), connection.cursor() as cursor:
        accounts_lock_ids(account_ids=[account_id for account_id, _ in debits])
        if connection.vendor == "postgresql":
            cursor.execute(f"WITH e AS ({insert}) {_BALANCES_SQL.format(entries='e')} RETURNING billing_account.id",
                           insert_params)
            return sorted(row[0] for row in cursor.fetchall())
        cursor.execute(insert, insert_params)
        posted = sorted(cursor.fetchall())
        if posted:
            entries = ("(SELECT json_extract(value, '$[0]') AS account_id, json_extract(value, '$[1]')"
                       " AS amount_units FROM json_each(%s)) AS e")
            cursor.execute(_BALANCES_SQL.format(entries=entries), [orjson.dumps(posted).decode()])
        return [account_id for account_id, _ in posted]


def ledger_adjust(*, account_id: int, amount_units: int, reason: str, actor: str,
                  idempotency_key: str) -> LedgerEntry | None:
    """A staff correction of a balance: an adjustment entry with its reason and who made it."""
    if not reason.strip():
        raise ValueError("an adjustment needs a reason")
    if not actor:
        raise ValueError("an adjustment needs an actor")
    return ledger_post(account_id=account_id, kind=LedgerEntry.Kind.ADJUSTMENT, amount_units=amount_units,
                       idempotency_key=idempotency_key, reference="admin", actor=actor, memo=reason.strip())


def accounts_register(*, external_ids: Iterable[str]) -> dict[str, int]:
    """Return account ids by gateway id, creating the unknown ones (safe under concurrency)."""
    return ids_by_key(Account, "external_id", external_ids,
                      lambda missing: [Account(external_id=e) for e in sorted(missing)])


def api_keys_register(*, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Return API key ids by (account id, key id), creating the unknown ones.

    A constant number of statements for a chunk's tens of thousands of keys (per 10,000 on SQLite).
    """
    wanted = set(keys)
    if not wanted:
        return {}

    def existing(pairs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
        if connection.vendor == "postgresql":  # the pairs as two arrays: one statement, two parameters
            pairs = sorted(pairs)
            with connection.cursor() as cursor:
                cursor.execute("SELECT k.account_id, k.external_id, k.id FROM unnest(%s::bigint[], %s::text[])"
                               " AS w(account_id, external_id) JOIN billing_apikey k"
                               " ON k.account_id = w.account_id AND k.external_id = w.external_id",
                               [[a for a, _ in pairs], [e for _, e in pairs]])
                return {(a, e): pk for a, e, pk in cursor.fetchall()}
        found = {}
        for batch in batches(pairs, size=SQLITE_BATCH // 2):
            rows = ApiKey.objects.filter(account_id__in={a for a, _ in batch}, external_id__in={e for _, e in batch})
            found.update(((a, e), pk) for a, e, pk in rows.values_list("account_id", "external_id", "pk"))
        return found

    found = existing(wanted)
    missing = wanted - found.keys()
    if missing:
        ApiKey.objects.bulk_create([ApiKey(account_id=a, external_id=e) for a, e in sorted(missing)],
                                   ignore_conflicts=True, batch_size=5000)
        found.update(existing(missing))
    return {key: found[key] for key in wanted}


def invitation_create(*, account: Account, email: str, role: str, invited_by, accept_url) -> Invitation:
    """Invite `email` to the account and send the link (after commit); `accept_url(token)` builds it."""
    invitation = Invitation.objects.create(account=account, email=email.strip().lower(), role=role,
                                           token=secrets.token_urlsafe(32), invited_by=invited_by)
    link = accept_url(invitation.token)
    transaction.on_commit(lambda: send_mail(
        subject=f"You are invited to {account} on Tokengrid",
        message=(f"{invited_by.get_username()} invited you to the Tokengrid account {account} as {role}.\n\n"
                 f"Accept here: {link}\n"),
        from_email=None, recipient_list=[invitation.email]))
    return invitation


def invitation_accept(*, invitation: Invitation, user) -> Membership:
    """Join the invitation's account (once); an existing membership keeps the higher role."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        membership, created = Membership.objects.get_or_create(
            user=user, account=invitation.account, defaults={"role": invitation.role})
        if not created and ROLE_RANK[invitation.role] > ROLE_RANK[membership.role]:
            membership.role = invitation.role
            membership.save(update_fields=["role"])
        if invitation.accepted_at is None:
            invitation.accepted_at, invitation.accepted_by = timezone.now(), user
            invitation.save(update_fields=["accepted_at", "accepted_by"])
        return membership


class LastOwnerError(Exception):
    """An account must keep at least one owner."""


def membership_remove(*, account: Account, membership_id: int) -> None:
    """Remove a member of `account` and revoke the API tokens they made for it; refuses to remove the
    last owner (Membership.DoesNotExist for other accounts)."""
    with transaction.atomic():
        accounts_lock(account_ids=[account.pk])
        membership = Membership.objects.get(pk=membership_id, account=account)
        if (membership.role == Membership.Role.OWNER
                and not account.memberships.filter(role=Membership.Role.OWNER).exclude(pk=membership.pk).exists()):
            raise LastOwnerError("an account keeps at least one owner")
        membership.delete()  # its post_delete revokes the member's tokens (billing.signals)


def member_tokens_revoke(*, account_id: int, user_id: int) -> int:
    """Revoke the tokens a user made for an account (their membership ended); returns how many."""
    return AccountToken.objects.filter(account_id=account_id, created_by_id=user_id,
                                       revoked_at__isnull=True).update(revoked_at=timezone.now())


def account_token_revoke(*, account: Account, token_id: int) -> AccountToken:
    """Revoke a token of `account` (once; AccountToken.DoesNotExist for another account's token)."""
    token = AccountToken.objects.get(pk=token_id, account=account)
    if token.revoked_at is None:
        AccountToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        token.refresh_from_db(fields=["revoked_at"])
    return token


def api_key_limit_set(*, account: Account, key_id: int, limit_units: int | None, interval: str) -> ApiKey:
    """Set a key's spending limit and reset interval (ApiKey.DoesNotExist for another account's key).

    A new limit re-arms its 80% and 100% alerts.
    """
    if limit_units is not None and limit_units < 0:
        raise ValueError("a limit cannot be negative")
    key = ApiKey.objects.get(pk=key_id, account=account)
    key.limit_units, key.limit_interval = limit_units, interval
    key.alert_80_interval = key.alert_100_interval = None
    key.save(update_fields=["limit_units", "limit_interval", "alert_80_interval", "alert_100_interval"])
    return key


def low_balance_threshold_set(*, account: Account, threshold_units: int | None) -> None:
    """Set (or clear) the low-balance alert threshold; the next crossing below it emails the owners."""
    account.low_balance_threshold_units, account.low_balance_armed = threshold_units, True
    account.save(update_fields=["low_balance_threshold_units", "low_balance_armed"])
