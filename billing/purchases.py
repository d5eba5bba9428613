"""Buying credits, paying them back, and auto top-up: every credit goes through `ledger_post`.

A payment credits under the idempotency key `payment:<gateway>:<gateway payment id>`, so a
webhook delivered ten times at once, or a redirect racing its webhook, credits once.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.bulk import id_set
from core.money import units_to_usd, usd_to_units
from core.numbers import money

from .gateways import Checkout, GatewayError, SavedMethod, gateway_get
from .ledger import ledger_post
from .lock_objects import payment_lock
from .models import Account, LedgerEntry, Payment, PaymentMethod
from .selectors import owner_emails, purchase_limits, refundable_units

log = logging.getLogger(__name__)
CENT = Decimal("0.01")


class PurchaseError(Exception):
    """A purchase or refund that cannot be made; the message is for the person asking."""


@dataclass(frozen=True)
class Quote:
    amount_units: int
    fee_units: int

    @property
    def total_units(self) -> int:
        return self.amount_units + self.fee_units


def fee_for(amount: Decimal) -> Decimal:
    """Return the fee on a purchase: BILLING_FEE_PERCENT of it, at least BILLING_FEE_MIN_USD, in cents (half up)."""
    percent = Decimal(settings.BILLING_FEE_PERCENT)
    fee = (amount * percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    return max(fee, Decimal(settings.BILLING_FEE_MIN_USD).quantize(CENT))


def credits_quote(*, amount: Decimal, check_limits: bool = True) -> Quote:
    """Quote credits and fee for buying `amount` USD (whole cents, within the purchase limits)."""
    if amount != amount.quantize(CENT):
        raise PurchaseError("Enter an amount in whole cents.")
    low, high = purchase_limits()
    if check_limits and not low <= amount <= high:
        raise PurchaseError(f"Buy between ${low:,.2f} and ${high:,.2f} at a time.")
    if amount <= 0:
        raise PurchaseError("Enter a positive amount.")
    return Quote(amount_units=usd_to_units(amount), fee_units=usd_to_units(fee_for(amount)))


def credits_purchase_start(*, account: Account, amount: Decimal, user=None, save_method: bool = False,
                           success_url: str = "", cancel_url: str = "", gateway_name: str | None = None
                           ) -> tuple[Payment, Checkout]:
    """Record a pending payment and start it at the gateway; the demo gateway credits at once."""
    quote = credits_quote(amount=amount)
    try:
        gateway = gateway_get(gateway_name)
    except GatewayError as error:
        raise PurchaseError(f"The payment could not be started: {error}") from error
    payment = Payment.objects.create(account=account, kind=Payment.Kind.PURCHASE, gateway=gateway.name,
                                     amount_units=quote.amount_units, fee_units=quote.fee_units,
                                     save_method=save_method, created_by=user)
    try:
        checkout = gateway.checkout_start(payment=payment, success_url=success_url, cancel_url=cancel_url)
    except GatewayError as error:
        payment_fail(payment_id=payment.pk, reason=str(error))
        raise PurchaseError(f"The payment could not be started: {error}") from error
    Payment.objects.filter(pk=payment.pk).update(external_id=checkout.external_id)
    payment.external_id = checkout.external_id
    if checkout.paid:
        payment_complete(payment_id=payment.pk, method=checkout.method)
        payment.refresh_from_db()
    return payment, checkout


def payment_complete(*, payment_id: int, method: SavedMethod | None = None,
                     amount_paid_units: int | None = None) -> LedgerEntry | None:
    """Credit a paid payment exactly once; returns the entry, or None when it was already credited.

    `amount_paid_units`, when the gateway reports it, must equal what was asked for.
    """
    with transaction.atomic():
        _, payment = payment_lock(payment_id=payment_id)
        if payment.status == Payment.Status.SUCCEEDED:
            return None
        if amount_paid_units is not None and amount_paid_units != payment.total_units:
            log.error("payment %s paid %s, expected %s", payment.pk, amount_paid_units, payment.total_units)
            payment.status, payment.failure = Payment.Status.FAILED, "the amount paid does not match"
            payment.save(update_fields=["status", "failure"])
            return None
        entry = ledger_post(
            account_id=payment.account_id, kind=LedgerEntry.Kind.PURCHASE, amount_units=payment.amount_units,
            idempotency_key=f"payment:{payment.gateway}:{payment.external_id}",
            reference=payment.external_id or "", actor=payment.created_by.get_username() if payment.created_by
            else payment.get_kind_display(),
            memo=f"{payment.get_kind_display()} of {money(payment.amount_units)} "
                 f"(fee {money(payment.fee_units)})")
        payment.status, payment.completed_at, payment.failure = Payment.Status.SUCCEEDED, timezone.now(), ""
        payment.save(update_fields=["status", "completed_at", "failure"])
        if method is not None:
            PaymentMethod.objects.update_or_create(account_id=payment.account_id, defaults={
                "gateway": payment.gateway, "token": method.token, "label": method.label,
                "customer_ref": method.customer_ref})
        return entry


def payment_fail(*, payment_id: int, reason: str) -> None:
    """Mark a pending payment failed (a paid one stays paid)."""
    Payment.objects.filter(pk=payment_id, status=Payment.Status.PENDING).update(
        status=Payment.Status.FAILED, failure=reason[:1000], completed_at=timezone.now())


def demo_method_save(*, account: Account) -> PaymentMethod:
    """Save a demo card for auto top-up (the demo gateway only)."""
    method, _ = PaymentMethod.objects.update_or_create(account=account, defaults={
        "gateway": "demo", "token": "demo_pm_saved", "label": "Demo card •••• 4242", "customer_ref": ""})
    return method


# Refunds -----------------------------------------------------------------------------------------

def credits_refund(*, account: Account, payment_id: int, user=None) -> LedgerEntry:
    """Pay back a purchase's unused credits (PurchaseError when there is nothing to pay back).

    Locks the account, then the payment (the order every writer uses), debits the credits and
    asks the gateway inside the transaction: if the gateway refuses, nothing was debited.
    """
    with transaction.atomic():
        locked, payment = payment_lock(payment_id=payment_id, account_id=account.pk)
        amount = refundable_units(payment=payment, balance_units=locked.balance_units)
        if amount <= 0:
            raise PurchaseError("Nothing of this purchase can be refunded.")
        try:
            refund_id = gateway_get(payment.gateway).refund(payment=payment, amount_units=amount)
        except GatewayError as error:
            raise PurchaseError(f"The refund failed: {error}") from error
        payment.refunded_units += amount
        payment.save(update_fields=["refunded_units"])
        return ledger_post(
            account_id=account.pk, kind=LedgerEntry.Kind.REFUND, amount_units=-amount,
            idempotency_key=f"refund:{payment.gateway}:{refund_id}", reference=payment.external_id or "",
            actor=user.get_username() if user else "", memo=f"refund of {money(amount)} (fee kept)")


# Auto top-up -------------------------------------------------------------------------------------

def auto_topup_settings_save(*, account: Account, enabled: bool, threshold: Decimal, amount: Decimal) -> None:
    """Save the auto top-up rule; enabling it needs a saved payment method."""
    if enabled:
        credits_quote(amount=amount)
        if not PaymentMethod.objects.filter(account=account).exists():
            raise PurchaseError("Save a payment method first: buy credits with “save for auto top-up”.")
    account.auto_topup_enabled = enabled
    account.auto_topup_threshold_units = usd_to_units(threshold)
    account.auto_topup_amount_units = usd_to_units(amount)
    account.save(update_fields=["auto_topup_enabled", "auto_topup_threshold_units", "auto_topup_amount_units"])
    # A rule saved while the balance is already low applies to the next debit.
    Account.objects.filter(pk=account.pk).update(auto_topup_armed=True)


def auto_topup_claim(*, account_id: int) -> bool:
    """Claim this crossing below the threshold: one conditional UPDATE, so two workers never both win."""
    return bool(Account.objects.filter(
        pk=account_id, auto_topup_enabled=True, auto_topup_armed=True,
        balance_units__lt=F("auto_topup_threshold_units"),
    ).update(auto_topup_armed=False))


def auto_topups_due(*, account_ids: Iterable[int]) -> list[int]:
    """Return the accounts among these that may need a top-up now (enabled, armed, under the threshold,
    with a saved method): one query for all of them; `auto_topup_run` claims and charges each."""
    return list(Account.objects.filter(
        pk__in=id_set(account_ids), auto_topup_enabled=True, auto_topup_armed=True,
        balance_units__lt=F("auto_topup_threshold_units"), payment_method__isnull=False,
    ).order_by("pk").values_list("pk", flat=True))


def auto_topups_run(*, account_ids: Iterable[int]) -> list[Payment]:
    """Top up the accounts among these that crossed under their threshold; returns the payments made."""
    payments = (auto_topup_run(account_id=account_id) for account_id in auto_topups_due(account_ids=account_ids))
    return [payment for payment in payments if payment is not None]


def auto_topup_run(*, account_id: int) -> Payment | None:
    """Charge one top-up if the balance crossed under the threshold; record and email a failure."""
    account = Account.objects.select_related("payment_method").filter(pk=account_id).first()
    method = getattr(account, "payment_method", None) if account else None
    if method is None:
        return None
    try:  # the limits may have changed since the rule was saved: then there is nothing to charge
        quote = credits_quote(amount=units_to_usd(account.auto_topup_amount_units))
    except PurchaseError:
        log.warning("auto top-up of account %s skipped: amount outside the purchase limits", account_id)
        return None
    if not auto_topup_claim(account_id=account_id):
        return None
    payment = Payment.objects.create(account=account, kind=Payment.Kind.AUTO_TOPUP, gateway=method.gateway,
                                     amount_units=quote.amount_units, fee_units=quote.fee_units)
    try:
        charge = gateway_get(method.gateway).charge_saved(payment=payment, method=method)
    except GatewayError as error:
        payment_fail(payment_id=payment.pk, reason=str(error))
        # Stop retrying a failing card on every debit: the owner re-enables it after fixing it.
        Account.objects.filter(pk=account_id).update(auto_topup_enabled=False)
        owners_email(account=account, subject=f"Auto top-up failed on {account}",
                     body=(f"We could not charge {method.label} {money(payment.total_units)} for "
                           f"{money(payment.amount_units)} of credits: {error}.\n\n"
                           "Auto top-up is now off; turn it back on under Credits once the card works."))
        payment.refresh_from_db()
        return payment
    Payment.objects.filter(pk=payment.pk).update(external_id=charge.external_id)
    payment_complete(payment_id=payment.pk)
    payment.refresh_from_db()
    return payment


def owners_email(*, account: Account, subject: str, body: str, emails: list[str] | None = None) -> int:
    """Email the account's owners (after the current transaction commits); `emails` when the
    caller already looked them up (`selectors.owner_emails`, for many accounts at once)."""
    if emails is None:
        emails = owner_emails(account_ids=[account.pk]).get(account.pk, [])
    if emails:
        transaction.on_commit(lambda: send_mail(subject=subject, message=body, from_email=None,
                                                recipient_list=emails))
    return len(emails)
