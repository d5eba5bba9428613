"""The account's credits, keys and statements pages, and the Stripe webhook.

Every page reads `request.account` (set from the user's own memberships by `account_required`),
and every id in a form is looked up within that account: another account's purchase or key
answers 404. Viewers read; members also set key limits and redeem promo codes; owners buy,
refund and change the account's settings.
"""
import logging
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from core.csvutil import csv_stream
from core.http import csv_response
from core.money import units_to_usd, usd_to_units
from core.params import int64_or_404
from core.templatetags.money import usd_input

from . import accounts, alerts, pace, promos, purchases, selectors, topup_selectors, webhooks
from .access import account_required
from .budgets import BudgetInvalid
from .credit_forms import AutoTopupForm, BuyForm, KeyLimitForm, LowBalanceForm, PromoForm, UnusualSpendForm
from .models import Account, ApiKey, Membership, Payment, Refund
from .periods import WEEKDAYS
from .statements import statement_month, statement_months

log = logging.getLogger(__name__)
OWNER, MEMBER = Membership.Role.OWNER, Membership.Role.MEMBER
# What the form suggests: $25 under $5, at most four times a month.
TOPUP_THRESHOLD_DEFAULT, TOPUP_AMOUNT_DEFAULT, TOPUP_CAP_DEFAULT = Decimal(5), Decimal(25), Decimal(100)


@account_required
@require_safe
def credits(request: HttpRequest) -> HttpResponse:
    """Show the balance, buying credits (with the fee shown first), auto top-up, alerts, promo codes,
    refunds, purchases and the ledger; each form posts to its own action below."""
    buy = BuyForm(request.GET or None)
    quote = quote_error = None
    if "amount" in request.GET and buy.is_valid():
        try:
            quote = purchases.credits_quote(amount=buy.cleaned_data["amount"])
        except purchases.PurchaseError as error:
            quote_error = str(error)
    page = selectors.credits_page(account=request.account, payments_page=request.GET.get("ppage"),
                                  ledger_page=request.GET.get("page"))
    return render(request, "account/credits.html", {
        **vars(page), **_settings_forms(request.account), "buy": buy, "quote": quote, "quote_error": quote_error,
        "fired_forecast": pace.fired_forecasts(account=request.account).get("balance"),
        "topup": topup_selectors.auto_topup_outlook(account=request.account),
        "topup_changes": topup_selectors.auto_topup_changes(account=request.account),
        "topup_interval_minutes": settings.BILLING_AUTO_TOPUP_MIN_INTERVAL_MINUTES,
        "topup_max_failures": settings.BILLING_AUTO_TOPUP_MAX_FAILURES,
        "unpriced_days": selectors.UNPRICED_DAYS,
        "is_owner": request.account_ctx.can(OWNER), "is_member": request.account_ctx.can(MEMBER)})


def _settings_forms(account: Account) -> dict:
    """The page's setting forms, filled in with the account's current settings."""
    return {
        "topup_form": AutoTopupForm(initial={
            "enabled": account.auto_topup_enabled,
            "threshold": usd_input(account.auto_topup_threshold_units or usd_to_units(TOPUP_THRESHOLD_DEFAULT)),
            "amount": usd_input(account.auto_topup_amount_units or usd_to_units(TOPUP_AMOUNT_DEFAULT)),
            "monthly_cap": usd_input(account.auto_topup_monthly_cap_units or usd_to_units(TOPUP_CAP_DEFAULT))}),
        "alert_form": LowBalanceForm(initial={"threshold": usd_input(account.low_balance_threshold_units)}),
        "unusual_form": UnusualSpendForm(initial={"k": account.unusual_spend_k,
                                                  "minimum": usd_input(account.unusual_spend_min_units)}),
        "promo_form": PromoForm(),
    }


def _form_error(form, fallback: str) -> str:
    """What the person should fix: the form's own first error (e.g. an amount past the ledger's
    range), else `fallback`."""
    for errors in form.errors.values():
        return f"{fallback.rstrip('.')}: {errors[0]}" if errors else fallback
    return fallback


@account_required(role=OWNER, methods=("POST",))
def credits_buy(request: HttpRequest) -> HttpResponse:
    """Buy credits: the demo gateway credits at once, Stripe's Checkout is a redirect."""
    form = BuyForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_error(form, "Enter an amount in dollars and cents."))
        return redirect("billing:credits")
    back = request.build_absolute_uri(reverse("billing:credits"))
    try:
        payment, checkout = purchases.credits_purchase_start(
            account=request.account, amount=form.cleaned_data["amount"], user=request.user,
            save_method=form.cleaned_data["save_method"], success_url=f"{back}?paid=1", cancel_url=back)
    except purchases.PurchaseError as error:
        messages.error(request, str(error))
        return redirect("billing:credits")
    if checkout.redirect_url:
        return redirect(checkout.redirect_url)
    messages.success(request, f"Added ${units_to_usd(payment.amount_units):,.2f} of credits "
                              f"(charged ${units_to_usd(payment.total_units):,.2f}).")
    return redirect("billing:credits")


@account_required(role=OWNER, methods=("POST",))
def credits_refund(request: HttpRequest) -> HttpResponse:
    """Pay back a purchase's unused credits (404 for another account's purchase)."""
    try:
        refund = purchases.credits_refund(account=request.account,
                                          payment_id=int64_or_404(request.POST.get("payment")), user=request.user)
    except Payment.DoesNotExist:
        raise Http404 from None
    except purchases.PurchaseError as error:
        messages.error(request, str(error))
    else:
        amount = f"${units_to_usd(refund.amount_units):,.2f}"
        if refund.status == Refund.Status.SUCCEEDED:
            messages.success(request, f"Refunded {amount}; the fee is kept.")
        else:  # the gateway's answer was lost: its webhook settles the claim
            messages.info(request, f"Refund of {amount} requested; it shows here once the payment provider confirms it.")
    return redirect("billing:credits")


@account_required(role=OWNER, methods=("POST",))
def credits_auto_topup(request: HttpRequest) -> HttpResponse:
    """Save the auto top-up rule."""
    form = AutoTopupForm(request.POST)
    if form.is_valid():
        try:
            purchases.auto_topup_settings_save(account=request.account, user=request.user, **form.cleaned_data)
        except purchases.PurchaseError as error:
            messages.error(request, f"Auto top-up not saved: {error}")
        else:
            messages.success(request, "Auto top-up saved." if form.cleaned_data["enabled"] else "Auto top-up is off.")
    else:
        messages.error(request, _form_error(form, "Auto top-up not saved: enter the amounts in dollars and cents."))
    return redirect("billing:credits")


@account_required(role=OWNER, methods=("POST",))
def credits_alert(request: HttpRequest) -> HttpResponse:
    """Save (or clear) the low-balance alert threshold."""
    form = LowBalanceForm(request.POST)
    if form.is_valid():
        threshold = form.cleaned_data["threshold"]
        alerts.low_balance_threshold_set(account=request.account,
                                         threshold_units=None if threshold is None else usd_to_units(threshold))
        messages.success(request, "Low-balance alert saved." if threshold is not None else "Low-balance alert off.")
    else:
        messages.error(request, _form_error(form, "Enter the threshold in dollars and cents."))
    return redirect("billing:credits")


@account_required(role=OWNER, methods=("POST",))
def credits_unusual(request: HttpRequest) -> HttpResponse:
    """Save the unusual-spend alert's k and minimum amount."""
    form = UnusualSpendForm(request.POST)
    if form.is_valid():
        alerts.unusual_spend_settings_set(account=request.account, k=form.cleaned_data["k"],
                                          minimum_units=usd_to_units(form.cleaned_data["minimum"]))
        messages.success(request, "Unusual-spend alert saved.")
    else:
        messages.error(request, _form_error(form, "Enter k (0.5 to 99.9) and the minimum in dollars and cents."))
    return redirect("billing:credits")


@account_required(role=MEMBER, methods=("POST",))
def credits_promo(request: HttpRequest) -> HttpResponse:
    """Redeem a promo code."""
    form = PromoForm(request.POST)
    if form.is_valid():
        try:
            redemption = promos.promo_redeem(account=request.account, code=form.cleaned_data["code"],
                                             actor=request.user.get_username())
        except promos.PromoError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"Code redeemed: ${units_to_usd(redemption.amount_units):,.2f} of credits"
                             + (f", usable until {redemption.expires_at:%Y-%m-%d}." if redemption.expires_at else "."))
    return redirect("billing:credits")


@account_required(role=OWNER, methods=("POST",))
def credits_demo_card(request: HttpRequest) -> HttpResponse:
    """Save a demo card for auto top-up (the demo gateway only)."""
    if selectors.gateway_name() != "demo":
        return HttpResponse("Only the demo gateway saves demo cards.", status=400)
    purchases.demo_method_save(account=request.account)
    messages.success(request, "Demo card saved for auto top-up.")
    return redirect("billing:credits")


@account_required(write_role=MEMBER)
def keys(request: HttpRequest) -> HttpResponse:
    """Every API key's limit, usage in its current interval and what is left; members set limits."""
    if request.method == "POST":
        form = KeyLimitForm(request.POST)
        key_id = int64_or_404(request.POST.get("key"))
        if not form.is_valid():
            messages.error(request, _form_error(form, "Enter the limit in dollars (up to 4 decimals) and an interval."))
            return redirect("billing:keys")
        limit = form.cleaned_data["limit"]
        try:
            key = accounts.api_key_limit_set(
                account=request.account, key_id=key_id, limit_units=None if limit is None else usd_to_units(limit),
                interval=form.cleaned_data["interval"],
                # A form without the field (an older page) keeps the key's percentages.
                alert_percentages=form.cleaned_data["alerts"] if "alerts" in request.POST else None)
        except ApiKey.DoesNotExist:
            raise Http404 from None
        except BudgetInvalid as error:
            messages.error(request, f"Alert at (%): {error.reason}." if error.field == "alert_percentages"
                           else str(error))
            return redirect("billing:keys")
        messages.success(request, f"Limit of {key} saved.")
        return redirect("billing:keys")
    return render(request, "account/keys.html", {
        "limits": selectors.key_limits(account_id=request.account.pk), "intervals": ApiKey.Interval.choices,
        "can_edit": request.account_ctx.can(MEMBER), "week_start_name": WEEKDAYS[request.account.week_start]})


def _month_or_404(request: HttpRequest, month: str) -> date:
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise Http404 from None
    if first not in statement_months(account=request.account):
        raise Http404
    return first


@account_required
def statements(request: HttpRequest) -> HttpResponse:
    """The account's months, newest first, each with a statement."""
    return render(request, "account/statements.html", {"months": statement_months(account=request.account)})


@account_required
def statement(request: HttpRequest, month: str) -> HttpResponse:
    """One month: opening balance, movements by kind, usage by model, closing balance; printable."""
    return render(request, "account/statement.html", {
        "statement": statement_month(account=request.account, month=_month_or_404(request, month))})


@account_required
def statement_csv(request: HttpRequest, month: str) -> HttpResponse:
    """The statement as CSV: one row per line, amounts in USD with 10 decimals."""
    st = statement_month(account=request.account, month=_month_or_404(request, month))

    def usd(units: int) -> str:
        return f"{units_to_usd(units):.10f}"

    rows = [("balance", "Opening balance", "", "", usd(st.opening_units))]
    rows += [("movement", label, "", "", usd(units)) for label, units in st.lines]
    rows.append(("balance", "Closing balance", "", "", usd(st.closing_units)))
    rows += [("usage by model", row.model, row.requests, row.tokens, usd(row.spend_units)) for row in st.usage_by_model]
    return csv_response(csv_stream(("section", "item", "requests", "tokens", "amount_usd"), rows),
                        filename=f"statement-{request.account.external_id}-{st.slug}.csv")


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Stripe's events: verified by the Stripe-Signature header; a paid Checkout credits once."""
    try:
        event = webhooks.stripe_event_parse(payload=request.body,
                                            signature=request.headers.get("Stripe-Signature", ""))
    except webhooks.WebhookError as error:
        log.warning("stripe webhook refused: %s", error)
        return HttpResponse("invalid signature", status=400)
    outcome = webhooks.stripe_event_apply(event=event)
    return HttpResponse(outcome, content_type="text/plain")
