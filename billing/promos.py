"""Promo codes: credits granted once per account, and their expiry."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from core.bulk import id_set
from core.numbers import money

from .ledger import ledger_post
from .lock_objects import account_lock, promo_code_lock, promo_redemption_lock
from .models import Account, LedgerEntry, PromoCode, PromoRedemption


class PromoError(Exception):
    """The code cannot be redeemed; the message is for the person redeeming."""


def promo_redeem(*, account: Account, code: str, actor: str = "") -> PromoRedemption:
    """Grant a promo code's credits to the account: once per account, within its redemption limit."""
    code = code.strip().upper()
    now = timezone.now()
    with transaction.atomic():
        account_lock(account_id=account.pk)
        promo = promo_code_lock(code=code)
        if promo is None or (promo.redeemable_until and promo.redeemable_until < now):
            raise PromoError("This code is not valid.")
        if PromoRedemption.objects.filter(promo=promo, account=account).exists():
            raise PromoError("This account already redeemed this code.")
        if promo.max_redemptions is not None and promo.redemptions >= promo.max_redemptions:
            raise PromoError("This code has been fully redeemed.")
        expires = now + timedelta(days=promo.credit_expiry_days) if promo.credit_expiry_days else None
        try:
            with transaction.atomic():
                redemption = PromoRedemption.objects.create(promo=promo, account=account,
                                                            amount_units=promo.amount_units, expires_at=expires)
        except IntegrityError:
            raise PromoError("This account already redeemed this code.") from None
        PromoCode.objects.filter(pk=promo.pk).update(redemptions=F("redemptions") + 1)
        ledger_post(account_id=account.pk, kind=LedgerEntry.Kind.GRANT, amount_units=promo.amount_units,
                    idempotency_key=f"promo:{promo.pk}:account:{account.pk}", reference=promo.code, actor=actor,
                    memo=f"promo code {promo.code}" + (f", expires {expires:%Y-%m-%d}" if expires else ""))
        return redemption


def grant_expire(*, redemption_id: int, now=None) -> LedgerEntry | None:
    """Expire what is left of one granted promo credit.

    Promo credits count as spent first: what is left is the grant minus the usage debited since
    it was granted, never below zero and never more than the balance.
    """
    now = now or timezone.now()
    with transaction.atomic():
        account, redemption = promo_redemption_lock(redemption_id=redemption_id)
        if redemption.expired_units is not None or redemption.expires_at is None or redemption.expires_at > now:
            return None
        used = -(LedgerEntry.objects.filter(account=account, kind=LedgerEntry.Kind.USAGE,
                                            created__gte=redemption.created).aggregate(s=Sum("amount_units"))["s"] or 0)
        left = max(0, min(redemption.amount_units - used, account.balance_units))
        redemption.expired_units = left
        redemption.save(update_fields=["expired_units"])
        if left == 0:
            return None
        return ledger_post(account_id=account.pk, kind=LedgerEntry.Kind.EXPIRY, amount_units=-left,
                           idempotency_key=f"expiry:promo-redemption:{redemption.pk}",
                           reference=redemption.promo.code, actor="expiry",
                           memo=f"{money(left)} of promo code {redemption.promo.code} expired")


def grants_expire(*, now=None, account_ids: Iterable[int] | None = None) -> int:
    """Expire every granted credit that is due (of the given accounts); returns the entries posted.

    One query selects the due grants (rare) among all the accounts; each is then expired alone.
    """
    now = now or timezone.now()
    due = PromoRedemption.objects.filter(expired_units__isnull=True, expires_at__lte=now)
    if account_ids is not None:
        due = due.filter(account_id__in=id_set(account_ids))  # one parameter for a chunk's accounts
    return sum(grant_expire(redemption_id=pk, now=now) is not None for pk in list(due.values_list("pk", flat=True)))
