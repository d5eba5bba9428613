"""Every row lock of billing, in one place so that the lock order can be read here.

The order, which every writer keeps (no deadlock between any two of them): accounts first, in
primary-key order; then the one payment, promo code or promo redemption the write is about (a
refund claim after its payment); an invitation stands alone, and so does an account's reservation
lock (an advisory lock, no row). No lock is ever held across a network call: take these, write,
commit, and only then talk to a payment gateway (billing/README.md). Call each inside
`transaction.atomic()`: the locks last until it ends.
"""
from collections.abc import Iterable

from django.db import connection

from core.bulk import ids_match_sql

from .models import Account, Invitation, Payment, PromoCode, PromoRedemption, Refund

ACCOUNTS = Account._meta.db_table


def accounts_for_update_sql(where: str) -> str:
    """Return the subquery that locks the accounts matching `where` in id order (PostgreSQL only)."""
    return f"SELECT id FROM {ACCOUNTS} WHERE {where} ORDER BY id FOR UPDATE"


def account_lock(*, account_id: int) -> Account:
    """Lock one account row and return it (Account.DoesNotExist when there is none)."""
    return Account.objects.select_for_update().get(pk=account_id)


def accounts_lock(*, account_ids: Iterable[int]) -> dict[int, Account]:
    """Lock account rows in primary-key order (deadlock-free) and return them by id."""
    ids = sorted(set(account_ids))
    return {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=ids).order_by("pk")}


def accounts_lock_ids(*, account_ids: Iterable[int]) -> None:
    """Lock many account rows in primary-key order in one statement, without loading them.

    For a chunk's tens of thousands of accounts, where loading them as objects would cost more
    than the work.
    """
    ids = set(account_ids)
    if not ids:
        return
    match, params = ids_match_sql("id", ids)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({accounts_for_update_sql(match)}) AS locked", params)


# The namespace of reservation locks among PostgreSQL's advisory locks (analytics' partitions use another).
_RESERVATION_LOCK_SPACE = 0x7B01


def reservation_lock(*, account_id: int) -> None:
    """Serialize the reservations of one account until the transaction ends.

    Not the account row: a chunk holds that for its whole transaction (its debits), and a
    reservation must not wait seconds for it. An advisory lock on (space, account id) orders the
    account's reservations alone; it stands apart from every row lock (no lock order to keep).
    """
    with connection.cursor() as cursor:
        # Two int4 keys: the namespace, and the account id folded into 32 bits (a collision only
        # makes two accounts wait on each other, never lets one through).
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_RESERVATION_LOCK_SPACE,
                                                                 (account_id % 2**32) - 2**31])


def payment_lock(*, payment_id: int, account_id: int | None = None) -> tuple[Account, Payment]:
    """Lock a payment's account, then the payment (Payment.DoesNotExist when it is not `account_id`'s)."""
    if account_id is None:
        account_id = Payment.objects.values_list("account_id", flat=True).get(pk=payment_id)
    account = account_lock(account_id=account_id)
    return account, Payment.objects.select_for_update().get(pk=payment_id, account_id=account_id)


def refund_lock(*, refund_id: int) -> tuple[Account, Payment, Refund]:
    """Lock a refund claim's account, then its payment, then the claim."""
    account_id, payment_id = Refund.objects.values_list("account_id", "payment_id").get(pk=refund_id)
    account, payment = payment_lock(payment_id=payment_id, account_id=account_id)
    return account, payment, Refund.objects.select_for_update().get(pk=refund_id)


def promo_code_lock(*, code: str) -> PromoCode | None:
    """Lock an active promo code by its code; lock the redeeming account first.

    The row lock keeps the redemption count exact when many accounts redeem at once.
    """
    return PromoCode.objects.select_for_update().filter(code=code, active=True).first()


def promo_redemption_lock(*, redemption_id: int) -> tuple[Account, PromoRedemption]:
    """Lock a promo redemption's account, then the redemption."""
    account_id = PromoRedemption.objects.values_list("account_id", flat=True).get(pk=redemption_id)
    account = account_lock(account_id=account_id)
    return account, PromoRedemption.objects.select_for_update().get(pk=redemption_id)


def invitation_lock(*, invitation_id: int) -> Invitation:
    """Lock an invitation, so that two acceptances of it record one."""
    return Invitation.objects.select_for_update().get(pk=invitation_id)
