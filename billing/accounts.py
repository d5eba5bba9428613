"""Who belongs to an account and what they hold: registration of accounts and API keys from
traffic, key limits, invitations, memberships and account API tokens."""
import hashlib
import secrets
from collections.abc import Iterable

from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone

from core.bulk import ids_by_key, insert_ignoring_conflicts
from core.timerange import zone_choices

from .budgets import budget_create, budget_update, budgets_recount
from .lock_objects import account_lock, invitation_lock
from .models import Account, AccountToken, ApiKey, Budget, Invitation, Membership
from .periods import PERIOD_OF

ROLE_RANK = {Membership.Role.VIEWER: 0, Membership.Role.MEMBER: 1, Membership.Role.OWNER: 2}
TOKEN_PREFIX = "tg_"


def accounts_register(*, external_ids: Iterable[str]) -> dict[str, int]:
    """Return account ids by gateway id, creating the unknown ones (safe under concurrency)."""
    return ids_by_key(Account, "external_id", external_ids)


def api_keys_register(*, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Return API key ids by (account id, key id), creating the unknown ones.

    A constant number of statements for a chunk's tens of thousands of keys.
    """
    wanted = set(keys)
    if not wanted:
        return {}

    def existing(pairs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
        pairs = sorted(pairs)  # the pairs as two arrays: one statement, two parameters
        with connection.cursor() as cursor:
            cursor.execute("SELECT k.account_id, k.external_id, k.id FROM unnest(%s::bigint[], %s::text[])"
                           " AS w(account_id, external_id) JOIN billing_apikey k"
                           " ON k.account_id = w.account_id AND k.external_id = w.external_id",
                           [[a for a, _ in pairs], [e for _, e in pairs]])
            return {(a, e): pk for a, e, pk in cursor.fetchall()}

    found = existing(wanted)
    missing = wanted - found.keys()
    if missing:
        insert_ignoring_conflicts(ApiKey, ("account_id", "external_id"), sorted(missing))
        found.update(existing(missing))
    return {key: found[key] for key in wanted}


def api_keys_name(*, names: dict[int, str]) -> int:
    """Name keys as the gateway names them (LiteLLM's key alias), by key id; returns how many changed.

    The gateway owns the name (a key renamed there is renamed here); the key's identity stays its
    id or hash. One statement for the chunk's keys, and only rows whose name differs are written.
    """
    if not names:
        return 0
    pairs = sorted(names.items())
    with connection.cursor() as cursor:
        cursor.execute("UPDATE billing_apikey k SET name = w.name FROM unnest(%s::bigint[], %s::text[])"
                       " AS w(id, name) WHERE k.id = w.id AND k.name IS DISTINCT FROM w.name",
                       [[pk for pk, _ in pairs], [name for _, name in pairs]])
        return cursor.rowcount


def account_time_zone_set(*, account: Account, time_zone: str) -> None:
    """Set the zone of the account's days (an IANA name this machine knows, else ValueError).

    Nothing cached needs to move: every cached page and the forecast are keyed by their zone; the
    budgets' periods move with the zone, so their current periods are counted again.
    """
    if time_zone not in zone_choices():
        raise ValueError(f"unknown time zone: {time_zone!r}")
    if time_zone == account.time_zone:
        return
    account.time_zone = time_zone
    account.save(update_fields=["time_zone"])
    budgets_recount(account=account)


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
        invitation = invitation_lock(invitation_id=invitation.pk)
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
        account_lock(account_id=account.pk)  # two owners removing each other at once leave one
        membership = Membership.objects.get(pk=membership_id, account=account)
        if (membership.role == Membership.Role.OWNER
                and not account.memberships.filter(role=Membership.Role.OWNER).exclude(pk=membership.pk).exists()):
            raise LastOwnerError("an account keeps at least one owner")
        membership.delete()  # its post_delete revokes the member's tokens (billing.signals)


def member_tokens_revoke(*, account_id: int, user_id: int) -> int:
    """Revoke the tokens a user made for an account (their membership ended); returns how many."""
    return AccountToken.objects.filter(account_id=account_id, created_by_id=user_id,
                                       revoked_at__isnull=True).update(revoked_at=timezone.now())


def token_hash(secret: str) -> str:
    """Hash a token's secret: only the hash is kept."""
    return hashlib.sha256(secret.encode()).hexdigest()


def account_token_create(*, account: Account, name: str, created_by=None) -> tuple[AccountToken, str]:
    """Create an account API token; the secret is returned once and only its hash is kept."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AccountToken.objects.create(account=account, name=name[:100], prefix=secret[:10],
                                        key_hash=token_hash(secret), created_by=created_by)
    return token, secret


def account_token_revoke(*, account: Account, token_id: int) -> AccountToken:
    """Revoke a token of `account` (once; AccountToken.DoesNotExist for another account's token)."""
    token = AccountToken.objects.get(pk=token_id, account=account)
    if token.revoked_at is None:
        AccountToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        token.refresh_from_db(fields=["revoked_at"])
    return token


KEY_ALERT_PERCENTAGES = [80]  # a key limit's alerts unless the account chose others (and 100%, always)


def api_key_limit_set(*, account: Account, key_id: int, limit_units: int | None, interval: str,
                      alert_percentages: list[int] | None = None) -> ApiKey:
    """Set a key's spending limit and reset interval (ApiKey.DoesNotExist for another account's key).

    The limit is the key's hard key budget with the interval's period, in the account's zone
    (`billing.budgets`): its other hard key budgets go, an empty limit removes them all. Its alert
    percentages are the budget's (`alert_percentages`; None keeps the budget's, or 80% for a new
    limit); each fires once per crossing, and 100% always (billing.thresholds).
    """
    if limit_units is not None and limit_units < 0:
        raise ValueError("a limit cannot be negative")
    key = ApiKey.objects.get(pk=key_id, account=account)
    period = PERIOD_OF[interval]
    with transaction.atomic():
        hard = Budget.objects.filter(account=account, scope=Budget.Scope.KEY, api_key=key, mode=Budget.Mode.HARD)
        (hard if limit_units is None else hard.exclude(period=period)).delete()
        if limit_units is not None:
            same = Budget.objects.filter(account=account, scope=Budget.Scope.KEY, target=key.external_id,
                                         period=period).first()
            if same is None:
                budget_create(account=account, scope=Budget.Scope.KEY, target=key.external_id,
                              amount_units=limit_units, period=period,
                              alert_percentages=KEY_ALERT_PERCENTAGES if alert_percentages is None
                              else alert_percentages)
            else:
                changes = {} if alert_percentages is None else {"alert_percentages": alert_percentages}
                budget_update(account=account, budget_id=same.pk, amount_units=limit_units, mode=Budget.Mode.HARD,
                              **changes)
    return key
