"""Buying credits, paying them back, and auto top-up: every credit goes through `ledger_post`.

A payment credits under the idempotency key `payment:<gateway>:<gateway payment id>`, so a
webhook delivered ten times at once, or a redirect racing its webhook, credits once. No gateway is
called with a lock held or a transaction open: claim and commit, call with an idempotency key
derived from the claim, then settle (billing/README.md).

(Longer than 400 lines: buying, refunds and auto top-up share the claim, commit, call the gateway,
settle sequence and its guard `network_call_allowed`; kept together so that the rule is read once.)
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from core.bulk import id_set
from core.money import units_to_usd, usd_to_units
from core.numbers import money

from .alert_events import alert_emit
from .gateways import Checkout, GatewayError, GatewayNoAnswer, SavedMethod, gateway_get
from .ledger import ledger_post
from .lock_objects import account_lock, payment_lock, refund_lock
from .models import Account, AutoTopupChange, LedgerEntry, Payment, PaymentMethod, Refund
from .selectors import owner_emails, purchase_limits, refundable_units
from .topup_selectors import auto_topup_outlook, min_interval

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
    network_call_allowed()  # the payment row is committed: a slow gateway holds no lock
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


def payment_fail(*, payment_id: int, reason: str) -> bool:
    """Mark a pending payment failed (a paid one stays paid); returns whether it was pending."""
    return bool(Payment.objects.filter(pk=payment_id, status=Payment.Status.PENDING).update(
        status=Payment.Status.FAILED, failure=reason[:1000], completed_at=timezone.now()))


def demo_method_save(*, account: Account) -> PaymentMethod:
    """Save a demo card for auto top-up (the demo gateway only)."""
    method, _ = PaymentMethod.objects.update_or_create(account=account, defaults={
        "gateway": "demo", "token": "demo_pm_saved", "label": "Demo card •••• 4242", "customer_ref": ""})
    return method


# Refunds -----------------------------------------------------------------------------------------

def credits_refund(*, account: Account, payment_id: int, user=None) -> Refund:
    """Pay back a purchase's unused credits: claim, commit, ask the gateway, settle.

    Returns the claim: `succeeded` (its ledger entry posted), or still `requested` when the gateway's
    answer was lost (its webhook, or the same claim asked again, settles it). PurchaseError when
    there is nothing to pay back, a refund of this purchase is already under way, or the gateway
    refused (then the claim is released and the ledger untouched). No lock is held while the
    gateway answers, so a slow gateway never holds up the account's usage debits.
    """
    refund = refund_claim(account=account, payment_id=payment_id, user=user)
    return refund_send(refund_id=refund.pk)


def refund_claim(*, account: Account, payment_id: int, user=None) -> Refund:
    """Claim a refund of a purchase's unused credits and commit the claim (nothing moves yet).

    Under the account and payment locks: at most one claim of a payment in flight (also a partial
    unique constraint), and the amount is what the payment has left within the balance minus the
    account's other claims in flight, so two claims never pay back the same credits.
    """
    try:
        with transaction.atomic():
            locked, payment = payment_lock(payment_id=payment_id, account_id=account.pk)
            in_flight = Refund.objects.filter(account_id=account.pk, status=Refund.Status.REQUESTED)
            if in_flight.filter(payment_id=payment.pk).exists():
                raise PurchaseError("A refund of this purchase is already under way.")
            reserved = in_flight.aggregate(s=Sum("amount_units", default=0))["s"]
            amount = refundable_units(payment=payment, balance_units=locked.balance_units - reserved)
            if amount <= 0:
                raise PurchaseError("Nothing of this purchase can be refunded.")
            return Refund.objects.create(account_id=account.pk, payment=payment, gateway=payment.gateway,
                                         amount_units=amount, created_by=user)
    except IntegrityError as error:  # the constraint caught what the lock should have: still one claim
        raise PurchaseError("A refund of this purchase is already under way.") from error


def refund_send(*, refund_id: int) -> Refund:
    """Ask the gateway to pay a claimed refund (outside any transaction), then settle it.

    Sending a claim again is safe: the claim is the gateway's idempotency key.
    """
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    network_call_allowed()
    try:
        external_id = gateway_get(refund.gateway).refund(payment=refund.payment, amount_units=refund.amount_units,
                                                         claim_id=refund.pk)
    except GatewayNoAnswer:
        log.warning("refund %s: no answer from %s; its webhook settles it", refund.pk, refund.gateway)
        return refund
    except GatewayError as error:
        refund_fail(refund_id=refund.pk, reason=str(error))
        raise PurchaseError(f"The refund failed: {error}") from error
    refund_settle(refund_id=refund.pk, external_id=external_id)
    refund.refresh_from_db()
    return refund


def refund_settle(*, refund_id: int, external_id: str) -> LedgerEntry | None:
    """Post a refund the gateway made, once: the ledger entry under `refund:<gateway>:<refund id>`.

    From the gateway's answer or its webhook, whichever comes first; None for the second (or for a
    claim already settled). A claim released meanwhile is posted all the same: the money went back.
    """
    with transaction.atomic():
        _, payment, refund = refund_lock(refund_id=refund_id)
        if refund.status == Refund.Status.SUCCEEDED:
            return None
        if refund.status == Refund.Status.FAILED:
            log.error("refund %s was released but %s paid it back (%s): posting it", refund.pk, refund.gateway,
                      external_id)
        entry = ledger_post(
            account_id=refund.account_id, kind=LedgerEntry.Kind.REFUND, amount_units=-refund.amount_units,
            idempotency_key=f"refund:{refund.gateway}:{external_id}", reference=payment.external_id or "",
            actor=refund.created_by.get_username() if refund.created_by else "",
            memo=f"refund of {money(refund.amount_units)} (fee kept)")
        if entry is None:  # this gateway refund was posted already (by another claim): never twice
            log.error("refund %s: %s %s is already in the ledger", refund.pk, refund.gateway, external_id)
            return None
        payment.refunded_units += refund.amount_units
        payment.save(update_fields=["refunded_units"])
        refund.status, refund.external_id, refund.completed_at, refund.failure = (
            Refund.Status.SUCCEEDED, external_id, timezone.now(), "")
        refund.save(update_fields=["status", "external_id", "completed_at", "failure"])
        return entry


def refund_fail(*, refund_id: int, reason: str) -> bool:
    """Release a claim the gateway refused: the balance and the ledger stay as they are."""
    return bool(Refund.objects.filter(pk=refund_id, status=Refund.Status.REQUESTED).update(
        status=Refund.Status.FAILED, failure=reason[:1000], completed_at=timezone.now()))


def network_call_allowed() -> None:
    """Refuse to call a gateway inside a transaction (RuntimeError): its locks would wait on the network.

    A durable atomic block cannot nest in another one, so this checks the rule at every call.
    """
    with transaction.atomic(durable=True):
        pass


# Auto top-up -------------------------------------------------------------------------------------

SYSTEM = "system"  # the actor of a change billing made itself (auto top-up turned off after failures)


def auto_topup_settings(account: Account) -> dict:
    """The auto top-up settings as the audit trail keeps them (USD strings)."""
    return {"enabled": account.auto_topup_enabled, "threshold": f"{units_to_usd(account.auto_topup_threshold_units):.2f}",
            "amount": f"{units_to_usd(account.auto_topup_amount_units):.2f}",
            "monthly_cap": f"{units_to_usd(account.auto_topup_monthly_cap_units):.2f}"}


def auto_topup_settings_save(*, account: Account, enabled: bool, threshold: Decimal, amount: Decimal,
                             monthly_cap: Decimal, user=None) -> AutoTopupChange | None:
    """Save the auto top-up rule and record who changed what (None when nothing changed).

    Enabling it needs a saved payment method and a monthly cap of at least one top-up; it starts
    with no failures counted.
    """
    if enabled:
        credits_quote(amount=amount)
        if monthly_cap < amount:
            raise PurchaseError("The monthly cap must be at least the top-up amount.")
        if not PaymentMethod.objects.filter(account=account).exists():
            raise PurchaseError("Save a payment method first: buy credits with “save for auto top-up”.")
    with transaction.atomic():
        locked = account_lock(account_id=account.pk)
        old = auto_topup_settings(locked)
        locked.auto_topup_enabled = enabled
        locked.auto_topup_threshold_units = usd_to_units(threshold)
        locked.auto_topup_amount_units = usd_to_units(amount)
        locked.auto_topup_monthly_cap_units = usd_to_units(monthly_cap)
        if enabled and not old["enabled"]:
            locked.auto_topup_failures = 0
        # A rule saved while the balance is already low applies to the next debit.
        locked.auto_topup_armed = True
        locked.save(update_fields=["auto_topup_enabled", "auto_topup_threshold_units", "auto_topup_amount_units",
                                   "auto_topup_monthly_cap_units", "auto_topup_failures", "auto_topup_armed"])
        for field in ("auto_topup_enabled", "auto_topup_threshold_units", "auto_topup_amount_units",
                      "auto_topup_monthly_cap_units", "auto_topup_failures", "auto_topup_armed"):
            setattr(account, field, getattr(locked, field))
        new = auto_topup_settings(locked)
        if new == old:
            return None
        return AutoTopupChange.objects.create(account=locked, user=user, old=old, new=new,
                                              actor=user.get_username() if user else SYSTEM)


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


def auto_topup_claim(*, account: Account, quote: Quote, gateway: str) -> Payment | None:
    """Claim one automatic charge and commit the claim: the pending auto top-up `Payment` itself.

    The partial unique constraint `payment_one_auto_topup_in_flight` lets one pending automatic
    charge exist per account, so concurrent claims (however many workers, whatever the armed flag
    says) insert one row and the others fail on the index, not on a check another may pass at the
    same time. The crossing is claimed with it (`auto_topup_armed` cleared, conditionally). The cap
    and the interval are read in the same transaction: a charge that was pending or succeeded is
    always visible to it, and a concurrent one not yet committed makes the insert fail. A refusal
    (the cap, the interval) claims nothing: the crossing stays armed, for the next debit after it.
    """
    try:
        with transaction.atomic():
            outlook = auto_topup_outlook(account=account)
            if outlook.refusal:
                log.info("auto top-up of account %s refused: %s", account.pk, outlook.refusal)
                return None
            if not Account.objects.filter(
                    pk=account.pk, auto_topup_enabled=True, auto_topup_armed=True,
                    balance_units__lt=F("auto_topup_threshold_units")).update(auto_topup_armed=False):
                return None
            return Payment.objects.create(account=account, kind=Payment.Kind.AUTO_TOPUP, gateway=gateway,
                                          amount_units=quote.amount_units, fee_units=quote.fee_units,
                                          attempted_at=timezone.now())
    except IntegrityError:  # another automatic charge of this account is in flight
        return None


NO_ANSWER = "no answer yet"
# Stripe keeps an idempotency key for 24 hours: sent again later, the same request could charge twice.
RESEND_WITHIN = timedelta(hours=23)


def auto_topup_resend_claim(*, account_id: int) -> Payment | None:
    """Claim the account's automatic charge whose answer was lost, to send it again with its key.

    At most once per interval (`attempted_at`), and only within RESEND_WITHIN of the claim; one
    conditional UPDATE, so two workers never both send it. Later it waits for Stripe's webhook.
    """
    now = timezone.now()
    pending = Payment.objects.filter(account_id=account_id, kind=Payment.Kind.AUTO_TOPUP,
                                     status=Payment.Status.PENDING, failure__startswith=NO_ANSWER)
    if not pending.filter(attempted_at__lte=now - min_interval(), created__gte=now - RESEND_WITHIN).update(
            attempted_at=now):
        return None
    return pending.first()


def auto_topup_run(*, account_id: int) -> Payment | None:
    """Charge one top-up if the balance crossed under the threshold and the cap and interval allow it.

    Claim (committed), then charge outside any transaction, then settle: credit it, or record the
    failure (`auto_topup_failed`). Alerts: `topup.charged`, `topup.failed`, `topup.disabled`.
    """
    account = Account.objects.select_related("payment_method").filter(pk=account_id).first()
    method = getattr(account, "payment_method", None) if account else None
    if method is None:
        return None
    try:  # the limits may have changed since the rule was saved: then there is nothing to charge
        quote = credits_quote(amount=units_to_usd(account.auto_topup_amount_units))
    except PurchaseError:
        log.warning("auto top-up of account %s skipped: amount outside the purchase limits", account_id)
        return None
    payment = (auto_topup_claim(account=account, quote=quote, gateway=method.gateway)
               or auto_topup_resend_claim(account_id=account.pk))
    if payment is None:
        return None
    network_call_allowed()  # claimed and recorded, both committed: a slow gateway holds no lock
    try:
        charge = gateway_get(method.gateway).charge_saved(payment=payment, method=method)
    except GatewayNoAnswer as error:
        # Stripe may have charged: the payment stays in flight (no second charge meanwhile) until
        # its payment_intent webhook settles it (webhooks.stripe_intent_apply).
        # Re-armed, so that a debit after the interval sends it again (same key) if no webhook came.
        log.warning("auto top-up %s: no answer from %s (%s); its webhook settles it", payment.pk,
                    method.gateway, error)
        Payment.objects.filter(pk=payment.pk).update(failure=f"{NO_ANSWER}: {error}"[:1000])
        Account.objects.filter(pk=account.pk).update(auto_topup_armed=True)
        payment.refresh_from_db()
        return payment
    except GatewayError as error:
        auto_topup_failed(payment_id=payment.pk, reason=str(error), final=error.final)
        payment.refresh_from_db()
        return payment
    Payment.objects.filter(pk=payment.pk).update(external_id=charge.external_id)
    payment.external_id = charge.external_id
    auto_topup_charged(payment_id=payment.pk)
    payment.refresh_from_db()
    return payment


def auto_topup_charged(*, payment_id: int) -> LedgerEntry | None:
    """Credit a paid top-up once, reset the failures in a row, and alert `topup.charged` once."""
    entry = payment_complete(payment_id=payment_id)
    payment = Payment.objects.select_related("account").get(pk=payment_id)
    if payment.status != Payment.Status.SUCCEEDED:
        return entry
    Account.objects.filter(pk=payment.account_id).exclude(auto_topup_failures=0).update(auto_topup_failures=0)
    alert_emit(account=payment.account_id, event="topup.charged", dedupe_key=f"topup:{payment.pk}:charged",
               subject=f"Auto top-up charged on {payment.account}",
               text=(f"Auto top-up added {money(payment.amount_units)} of credits to {payment.account} "
                     f"(charged {money(payment.total_units)} with the fee)."),
               data={"payment": payment.pk, "amount": _usd(payment.amount_units), "charged": _usd(payment.total_units)})
    return entry


def auto_topup_failed(*, payment_id: int, reason: str, final: bool) -> bool:
    """Record a failed top-up, alert `topup.failed`, and turn auto top-up off when it must: at once
    for a final refusal (a declined card, one that needs its holder), else after
    BILLING_AUTO_TOPUP_MAX_FAILURES failures in a row (a transient failure re-arms the crossing,
    for the next debit after the interval). Returns whether it was turned off now."""
    if not payment_fail(payment_id=payment_id, reason=reason):
        return False  # settled already (the direct answer and the webhook both report it): once
    payment = Payment.objects.select_related("account").get(pk=payment_id)
    limit = settings.BILLING_AUTO_TOPUP_MAX_FAILURES
    with transaction.atomic():
        account = account_lock(account_id=payment.account_id)
        account.auto_topup_failures += 1
        account.auto_topup_armed = not final and account.auto_topup_failures < limit
        account.save(update_fields=["auto_topup_failures", "auto_topup_armed"])
    failures, reason = account.auto_topup_failures, reason.rstrip(".")
    alert_emit(account=account.pk, event="topup.failed", dedupe_key=f"topup:{payment.pk}:failed",
               subject=f"Auto top-up failed on {account}",
               text=(f"We could not charge {money(payment.total_units)} for {money(payment.amount_units)} of "
                     f"credits: {reason}." + ("" if final else f" Failure {failures} in a row of {limit}"
                                              + ("; it is tried again after the next debit." if failures < limit
                                                 else "."))),
               data={"payment": payment.pk, "amount": _usd(payment.amount_units), "reason": reason,
                     "final": final, "failures": failures})
    if final:
        why = f"the card was refused: {reason}"
    elif failures >= limit:
        why = f"{failures} failed charges in a row; the last: {reason}"
    else:
        return False
    return auto_topup_disable(account_id=account.pk, reason=why) is not None


def auto_topup_disable(*, account_id: int, reason: str) -> AutoTopupChange | None:
    """Turn auto top-up off as "system", record why, and alert `topup.disabled` (on every channel).

    None when it was already off.
    """
    with transaction.atomic():
        account = account_lock(account_id=account_id)
        if not account.auto_topup_enabled:
            return None
        old = auto_topup_settings(account)
        account.auto_topup_enabled = False
        account.save(update_fields=["auto_topup_enabled"])
        change = AutoTopupChange.objects.create(account=account, actor=SYSTEM, reason=reason[:1000], old=old,
                                                new=auto_topup_settings(account))
    alert_emit(account=account.pk, event="topup.disabled", dedupe_key=f"topup:disabled:{change.pk}",
               subject=f"Auto top-up turned off on {account}",
               text=f"Auto top-up of {account} is now off: {reason}. Turn it back on under Credits once the card works.",
               data={"reason": reason, "change": change.pk})
    return change


def _usd(units: int) -> str:
    """Money in alert data: a USD decimal string in cents ("12.50")."""
    return f"{units_to_usd(units):.2f}"


def owners_email(*, account: Account, subject: str, body: str, emails: list[str] | None = None) -> int:
    """Email the account's owners (after the current transaction commits); `emails` when the
    caller already looked them up (`selectors.owner_emails`, for many accounts at once)."""
    if emails is None:
        emails = owner_emails(account_ids=[account.pk]).get(account.pk, [])
    if emails:
        transaction.on_commit(lambda: send_mail(subject=subject, message=body, from_email=None,
                                                recipient_list=emails))
    return len(emails)
