"""The one door for money: every balance change writes a ledger entry in the same transaction."""
import secrets
from collections.abc import Iterable

from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from core.bulk import ids_by_key

from .models import Account, ApiKey, Invitation, LedgerEntry, Membership

ROLE_RANK = {Membership.Role.VIEWER: 0, Membership.Role.MEMBER: 1, Membership.Role.OWNER: 2}


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


def ledger_debit_usage(*, spend_by_account: dict[int, int], idempotency_prefix: str) -> int:
    """Debit each account once for ingested spend (units); returns how many entries were posted.

    After the caller's transaction commits, the debited accounts are checked for low balance,
    auto top-up and key limits by a task on the billing queue.
    """
    posted: list[int] = []
    for account_id in sorted(spend_by_account):
        spend = spend_by_account[account_id]
        if spend == 0:
            continue
        entry = ledger_post(account_id=account_id, kind=LedgerEntry.Kind.USAGE, amount_units=-spend,
                            idempotency_key=f"{idempotency_prefix}:account:{account_id}",
                            reference=idempotency_prefix, actor="ingest", memo="usage")
        if entry is not None:
            posted.append(account_id)
    if posted:
        from .tasks import billing_after_debit

        transaction.on_commit(lambda: billing_after_debit.delay(posted))
    return len(posted)


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
    """Remove a member of `account`; refuses to remove the last owner (404 for other accounts)."""
    with transaction.atomic():
        accounts_lock(account_ids=[account.pk])
        membership = Membership.objects.get(pk=membership_id, account=account)
        if (membership.role == Membership.Role.OWNER
                and not account.memberships.filter(role=Membership.Role.OWNER).exclude(pk=membership.pk).exists()):
            raise LastOwnerError("an account keeps at least one owner")
        membership.delete()


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
