"""Payment gateways behind one interface: a demo gateway that succeeds at once, and Stripe.

A gateway only talks to the payment provider; crediting is `billing.purchases`' job, keyed on
the gateway's payment id so that a payment credits once however often it is reported.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Protocol

from django.conf import settings

from core.money import UNITS_PER_USD, units_to_usd

if TYPE_CHECKING:
    from .models import Payment, PaymentMethod

log = logging.getLogger(__name__)
UNITS_PER_CENT = UNITS_PER_USD // 100


class GatewayError(Exception):
    """The provider refused or failed: the message is safe to show and to email.

    `code` is the provider's (Stripe's `card_declined`, `rate_limit`, …) when it gave one; `final`
    says that asking again will not help (a declined card, a card that needs its holder), as
    opposed to a transient failure (rate limited, the provider's own trouble) worth a later retry.
    """

    def __init__(self, message: str, *, code: str = "", final: bool = True):
        super().__init__(message)
        self.code, self.final = code, final


class GatewayNoAnswer(GatewayError):
    """The request went out but no answer came back (a timeout, a dropped connection): the provider
    may have acted on it. Keep the claim; the same idempotency key, or the provider's webhook, settles it."""


@dataclass(frozen=True)
class Checkout:
    """A started payment: `external_id` is the gateway's payment id; `redirect_url` where to pay,
    or None when it was paid at once (`paid`)."""

    external_id: str
    redirect_url: str | None = None
    paid: bool = False
    method: SavedMethod | None = None


@dataclass(frozen=True)
class SavedMethod:
    token: str
    label: str
    customer_ref: str = ""


@dataclass(frozen=True)
class Charge:
    external_id: str


def cents(units: int) -> int:
    """Whole cents of an amount that the fee arithmetic already rounded to cents."""
    if units % UNITS_PER_CENT:
        raise ValueError(f"{units_to_usd(units)} USD is not a whole number of cents")
    return units // UNITS_PER_CENT


def units_floor_cents(units: int) -> int:
    """Round an amount down to whole cents (what can be paid back)."""
    usd = units_to_usd(units).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    return int(usd * UNITS_PER_USD)


class PaymentGateway(Protocol):
    name: str

    def checkout_start(self, *, payment: Payment, success_url: str, cancel_url: str) -> Checkout:
        """Start paying `payment.total_units`; paid at once or by redirecting the buyer."""

    def charge_saved(self, *, payment: Payment, method: PaymentMethod) -> Charge:
        """Charge a saved method without the buyer present (auto top-up); raises GatewayError."""

    def refund(self, *, payment: Payment, amount_units: int, claim_id: int) -> str:
        """Pay back part of a payment (whole cents) for the refund claim `claim_id`; returns the refund's id.

        The claim is the idempotency key: asked twice, the provider answers the same refund.
        GatewayError when it refuses, GatewayNoAnswer when the outcome is unknown."""


class DemoGateway:
    """Succeeds at once and saves a demo card; a method whose token starts with `decline` fails."""

    name = "demo"

    def checkout_start(self, *, payment: Payment, success_url: str, cancel_url: str) -> Checkout:
        method = SavedMethod(token=f"demo_pm_{uuid.uuid4().hex[:12]}", label="Demo card •••• 4242") \
            if payment.save_method else None
        return Checkout(external_id=f"demo_{uuid.uuid4().hex}", paid=True, method=method)

    def charge_saved(self, *, payment: Payment, method: PaymentMethod) -> Charge:
        if method.token.startswith("decline"):
            raise GatewayError("the card was declined (demo)", code="card_declined")
        if method.token.startswith("busy"):
            raise GatewayError("the payment provider is busy (demo)", code="rate_limit", final=False)
        return Charge(external_id=f"demo_{uuid.uuid4().hex}")

    def refund(self, *, payment: Payment, amount_units: int, claim_id: int) -> str:
        return f"demo_re_{claim_id}"  # one claim, one refund, as an idempotency key gives at Stripe


class StripeGateway:
    """Stripe Checkout for purchases, off-session PaymentIntents for auto top-up, Refunds."""

    name = "stripe"

    def __init__(self, secret_key: str):
        import stripe

        self.stripe = stripe
        if settings.STRIPE_API_BASE:  # tests and development: a local stand-in for Stripe's API
            stripe.api_base = settings.STRIPE_API_BASE
        # The library retries a dropped connection itself, with the same idempotency key.
        self.client_options = {"api_key": secret_key, "max_network_retries": settings.STRIPE_MAX_NETWORK_RETRIES}

    def failure(self, error, fallback: str) -> GatewayError:
        """What a Stripe error means for us: GatewayNoAnswer when the outcome is unknown (no answer,
        or Stripe's own 5xx, which Stripe says to treat as unknown), else a GatewayError whose
        `final` tells a refusal (card, request) from a transient failure (rate limit, our key)."""
        stripe = self.stripe
        code = getattr(error, "code", None) or ""
        message = (error.user_message or fallback).strip()
        if isinstance(error, stripe.APIConnectionError | stripe.APIError):
            return GatewayNoAnswer("Stripe did not answer", code="api_connection_error", final=False)
        if isinstance(error, stripe.RateLimitError):
            return GatewayError("Stripe is busy (rate limited); try again shortly", code="rate_limit", final=False)
        if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
            # Our API key, not the customer's card: never shown (it may name the key); the operator fixes it.
            log.error("stripe refused the API key: %s", error)
            return GatewayError("the payment provider refused our credentials; please try again later",
                                code=code or "authentication_error", final=False)
        if code == "authentication_required":
            return GatewayError("the card needs its holder to confirm the payment (3-D Secure): buy credits "
                                "once on the Credits page to confirm it", code=code)
        if isinstance(error, stripe.CardError | stripe.InvalidRequestError | stripe.IdempotencyError):
            return GatewayError(message, code=code or "invalid_request_error")
        return GatewayError(message, code=code or type(error).__name__, final=False)

    def checkout_start(self, *, payment: Payment, success_url: str, cancel_url: str) -> Checkout:
        params: dict = {
            "mode": "payment",
            "line_items": [{"quantity": 1, "price_data": {
                "currency": "usd", "unit_amount": cents(payment.total_units),
                "product_data": {"name": f"Tokengrid credits ${units_to_usd(payment.amount_units):.2f} "
                                         f"(fee ${units_to_usd(payment.fee_units):.2f})"}}}],
            "success_url": success_url, "cancel_url": cancel_url,
            "client_reference_id": str(payment.pk),
            "metadata": {"payment": str(payment.pk), "account": str(payment.account_id)},
        }
        if payment.save_method:
            params["customer_creation"] = "always"
            params["payment_intent_data"] = {"setup_future_usage": "off_session"}
        try:
            session = self.stripe.checkout.Session.create(
                **params, **self.client_options, idempotency_key=f"tokengrid-checkout-{payment.pk}")
        except self.stripe.StripeError as error:
            raise self.failure(error, "the payment could not be started") from error
        return Checkout(external_id=session["id"], redirect_url=session["url"])

    def charge_saved(self, *, payment: Payment, method: PaymentMethod) -> Charge:
        try:
            intent = self.stripe.PaymentIntent.create(
                amount=cents(payment.total_units), currency="usd", customer=method.customer_ref,
                payment_method=method.token, off_session=True, confirm=True,
                metadata={"payment": str(payment.pk), "account": str(payment.account_id)},
                idempotency_key=f"tokengrid-topup-{payment.pk}", **self.client_options)
        except self.stripe.StripeError as error:
            raise self.failure(error, "the card was not charged") from error
        if intent["status"] == "processing":  # settles later: its webhook tells (payment_intent.*)
            raise GatewayNoAnswer("the payment is processing", code="processing", final=False)
        if intent["status"] == "requires_action":
            raise GatewayError("the card needs its holder to confirm the payment (3-D Secure)",
                               code="authentication_required")
        if intent["status"] != "succeeded":
            raise GatewayError(f"the payment is {intent['status']}", code=intent["status"])
        return Charge(external_id=intent["id"])

    def refund(self, *, payment: Payment, amount_units: int, claim_id: int) -> str:
        try:
            if payment.external_id.startswith("pi_"):
                intent = payment.external_id
            else:  # a Checkout session: refund its PaymentIntent (nothing refunded yet if this fails)
                intent = self.stripe.checkout.Session.retrieve(payment.external_id, **self.client_options)[
                    "payment_intent"]
        except self.stripe.StripeError as error:
            failure = self.failure(error, "the payment could not be found")
            # Nothing was refunded yet: an unanswered look-up is a plain failure, the claim is released.
            raise (GatewayError(str(failure), code=failure.code, final=False)
                   if isinstance(failure, GatewayNoAnswer) else failure) from error
        try:
            refund = self.stripe.Refund.create(
                payment_intent=intent, amount=cents(amount_units),
                metadata={"refund": str(claim_id), "payment": str(payment.pk), "account": str(payment.account_id)},
                idempotency_key=f"tokengrid-refund-{claim_id}", **self.client_options)
        except self.stripe.StripeError as error:
            raise self.failure(error, "the refund was refused") from error
        # A StripeObject is no dict (no `.get`), a test's stand-in may be one: both answer `in` and `[]`.
        if "status" in refund and refund["status"] in ("failed", "canceled"):
            raise GatewayError(f"the refund is {refund['status']}")
        return refund["id"]

    def method_from_session(self, session: dict) -> SavedMethod | None:
        """The card a completed Checkout session saved for later, if it saved one."""
        if not session.get("customer") or not session.get("payment_intent"):
            return None
        try:
            intent = self.stripe.PaymentIntent.retrieve(session["payment_intent"], expand=["payment_method"],
                                                        **self.client_options)
        except self.stripe.StripeError:
            return None
        method = intent["payment_method"]
        if not method:
            return None
        card = method.get("card") or {}
        label = f"{card.get('brand', 'card').title()} •••• {card.get('last4', '????')}"
        return SavedMethod(token=method["id"], label=label, customer_ref=session["customer"])


def gateway_get(name: str | None = None) -> PaymentGateway:
    """The configured gateway (BILLING_GATEWAY; else Stripe when STRIPE_SECRET_KEY is set, else demo).

    The demo gateway grants credits for nothing, so it runs only in development (DEBUG on) or when
    BILLING_GATEWAY=demo says so explicitly: a production site without a Stripe key sells nothing
    rather than giving credits away.
    """
    name = name or settings.BILLING_GATEWAY or ("stripe" if settings.STRIPE_SECRET_KEY else "demo")
    if name == "stripe":
        if not settings.STRIPE_SECRET_KEY:
            raise GatewayError("Stripe is not configured (STRIPE_SECRET_KEY)")
        return StripeGateway(settings.STRIPE_SECRET_KEY)
    if name == "demo":
        if not (settings.DEBUG or settings.BILLING_GATEWAY == "demo"):
            raise GatewayError("no payment gateway is configured (STRIPE_SECRET_KEY); the demo gateway, which "
                               "grants credits for free, runs only with DEBUG on or BILLING_GATEWAY=demo")
        return DemoGateway()
    raise GatewayError(f"unknown payment gateway {name!r}")
