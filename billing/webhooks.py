"""Stripe webhooks: verify the signature, then credit the payment a completed Checkout paid for, or
settle the refund a claim asked for (when the gateway's direct answer was lost)."""
from __future__ import annotations

import logging

import stripe
from django.conf import settings

from core.money import UNITS_PER_USD

from .gateways import StripeGateway, cents
from .models import Payment, Refund
from .purchases import (
    auto_topup_charged,
    auto_topup_failed,
    network_call_allowed,
    payment_complete,
    payment_fail,
    refund_fail,
    refund_settle,
)

log = logging.getLogger(__name__)
PAID_EVENTS = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
FAILED_EVENTS = {"checkout.session.async_payment_failed", "checkout.session.expired"}
REFUND_EVENTS = {"refund.created", "refund.updated", "refund.failed"}
INTENT_EVENTS = {"payment_intent.succeeded", "payment_intent.payment_failed"}


class WebhookError(Exception):
    """A request that is not a genuine Stripe event (bad signature or payload): answer 400."""


def stripe_event_parse(*, payload: bytes, signature: str) -> dict:
    """The verified event; WebhookError when the Stripe-Signature header does not match."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise WebhookError("STRIPE_WEBHOOK_SECRET is not set")
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except (ValueError, stripe.SignatureVerificationError) as error:
        raise WebhookError(str(error)) from error
    return event.to_dict() if hasattr(event, "to_dict") else dict(event)


def stripe_event_apply(*, event: dict) -> str:
    """Act on a verified event; returns what was done (for the log). Credits once per payment."""
    kind = event.get("type", "")
    session = (event.get("data") or {}).get("object") or {}
    if kind in REFUND_EVENTS:
        return stripe_refund_apply(event=event, refund=session)
    if kind in INTENT_EVENTS:
        return stripe_intent_apply(event=event, intent=session)
    if kind not in PAID_EVENTS | FAILED_EVENTS:
        return "ignored"
    payment = Payment.objects.filter(gateway="stripe", external_id=session.get("id")).first()
    if payment is None:
        log.warning("stripe event %s for unknown session %s", event.get("id"), session.get("id"))
        return "unknown payment"
    if kind in FAILED_EVENTS:
        payment_fail(payment_id=payment.pk, reason=kind.rsplit(".", 1)[-1].replace("_", " "))
        return "failed"
    if session.get("payment_status") != "paid":
        return "not paid yet"
    method = None
    if payment.save_method and settings.STRIPE_SECRET_KEY and payment.status == Payment.Status.PENDING:
        network_call_allowed()
        method = StripeGateway(settings.STRIPE_SECRET_KEY).method_from_session(session)
    paid = session.get("amount_total")
    entry = payment_complete(payment_id=payment.pk, method=method,
                             amount_paid_units=None if paid is None else int(paid) * (UNITS_PER_USD // 100))
    return "credited" if entry is not None else "already credited"


def stripe_refund_apply(*, event: dict, refund: dict) -> str:
    """Settle the claim a Stripe refund names (`metadata.refund`): post it once, or release it if it failed.

    The direct answer usually settled it already; this is for an answer that was lost.
    """
    claim_id = str((refund.get("metadata") or {}).get("refund", ""))
    claim = Refund.objects.filter(pk=int(claim_id), gateway="stripe").first() if claim_id.isdigit() else None
    if claim is None:
        log.warning("stripe event %s for unknown refund %s", event.get("id"), refund.get("id"))
        return "unknown refund"
    if refund.get("amount") != cents(claim.amount_units):
        log.error("stripe refund %s of %s cents, claim %s is %s", refund.get("id"), refund.get("amount"),
                  claim.pk, claim.amount_units)
        return "amount does not match"
    if refund.get("status") in ("failed", "canceled"):
        if refund_fail(refund_id=claim.pk, reason=f"the refund is {refund['status']}"):
            return "refund failed"
        # Failed after it was posted: not credited back automatically (billing/README.md).
        log.error("stripe refund %s of claim %s is %s after it was settled", refund.get("id"), claim.pk,
                  refund["status"])
        return "refund failed after it was settled"
    entry = refund_settle(refund_id=claim.pk, external_id=refund["id"])
    return "refunded" if entry is not None else "already refunded"


def stripe_intent_apply(*, event: dict, intent: dict) -> str:
    """Settle the automatic charge a PaymentIntent names (`metadata.payment`) when its direct answer was
    lost: credit it once, or record the failure (a card error is final: auto top-up turns off)."""
    payment_id = str((intent.get("metadata") or {}).get("payment", ""))
    payment = Payment.objects.filter(pk=int(payment_id), gateway="stripe", kind=Payment.Kind.AUTO_TOPUP).first() \
        if payment_id.isdigit() else None
    if payment is None:
        return "ignored"  # a Checkout's own PaymentIntent: its session's events credit it
    if payment.status != Payment.Status.PENDING:
        return "already settled"
    if event.get("type") == "payment_intent.succeeded":
        if intent.get("amount_received") != cents(payment.total_units):
            log.error("stripe intent %s received %s cents, payment %s is %s", intent.get("id"),
                      intent.get("amount_received"), payment.pk, payment.total_units)
            return "amount does not match"
        Payment.objects.filter(pk=payment.pk, external_id__isnull=True).update(external_id=intent.get("id"))
        entry = auto_topup_charged(payment_id=payment.pk)
        return "credited" if entry is not None else "already credited"
    error = intent.get("last_payment_error") or {}
    auto_topup_failed(payment_id=payment.pk, reason=error.get("message") or "the payment failed",
                      final=error.get("type") == "card_error")
    return "failed"
