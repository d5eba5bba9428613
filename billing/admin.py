import uuid

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core.money import usd_to_units
from core.numbers import money_exact

from .credit_forms import AdjustForm
from .ledger import ledger_adjust
from .models import (
    Account,
    ApiKey,
    AutoTopupChange,
    Budget,
    LedgerEntry,
    Membership,
    Payment,
    PromoCode,
    PromoRedemption,
    Refund,
    Reservation,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


class AutoTopupChangeInline(admin.TabularInline):
    """The account's auto top-up audit trail, read-only."""

    model = AutoTopupChange
    extra = 0
    can_delete = False
    fields = readonly_fields = ("created", "actor", "old", "new", "reason")
    ordering = ("-created", "-id")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    """Balances change only through the ledger: `Adjust balance` posts an adjustment with a reason."""

    list_display = ("external_id", "name", "balance", "created")
    search_fields = ("external_id", "name")
    # Auto top-up changes go through the credits page, so that each one is in its audit trail.
    readonly_fields = ("balance_units", "adjust_link", "low_balance_armed", "auto_topup_armed", "auto_topup_enabled",
                       "auto_topup_threshold_units", "auto_topup_amount_units", "auto_topup_monthly_cap_units",
                       "auto_topup_failures")
    inlines = [MembershipInline, AutoTopupChangeInline]

    def get_urls(self):
        return [path("<int:account_id>/adjust/", self.admin_site.admin_view(self.adjust_view),
                     name="billing_account_adjust"), *super().get_urls()]

    @admin.display(description="balance")
    def adjust_link(self, obj: Account) -> str:
        if obj.pk is None:
            return "-"
        return format_html('{} · <a href="{}">Adjust balance</a>', money_exact(obj.balance_units),
                           reverse("admin:billing_account_adjust", args=[obj.pk]))

    def adjust_view(self, request, account_id: int):
        """Post a ledger adjustment (staff with change permission; the reason is required)."""
        account = get_object_or_404(Account, pk=account_id)
        if not self.has_change_permission(request, account):
            raise PermissionDenied
        if request.method == "POST":
            form = AdjustForm(request.POST)
            if form.is_valid():
                entry = ledger_adjust(account_id=account.pk, amount_units=usd_to_units(form.cleaned_data["amount"]),
                                      reason=form.cleaned_data["reason"], actor=request.user.get_username(),
                                      idempotency_key=f"adjustment:{form.cleaned_data['token']}")
                if entry is None:
                    messages.warning(request, "This adjustment was already posted.")
                else:
                    messages.success(request, f"Adjusted by {money_exact(entry.amount_units)}; balance now "
                                              f"{money_exact(entry.balance_after_units)}.")
                return redirect("admin:billing_account_change", account.pk)
        else:
            form = AdjustForm(initial={"token": uuid.uuid4().hex})
        return TemplateResponse(request, "admin/billing/account/adjust.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "original": account,
            "title": f"Adjust the balance of {account}", "form": form,
            "balance": money_exact(account.balance_units)})


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("external_id", "name", "account", "created")
    search_fields = ("external_id", "name", "account__external_id")
    list_select_related = ("account",)


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(_ReadOnly):
    """Read-only: the ledger is append-only and written only through billing.ledger."""

    list_display = ("created", "account", "kind", "amount", "reference", "actor")
    list_filter = ("kind",)
    search_fields = ("account__external_id", "reference", "idempotency_key")
    list_select_related = ("account",)


@admin.register(Payment)
class PaymentAdmin(_ReadOnly):
    """Read-only: payments move through the gateways and `billing.purchases`."""

    list_display = ("created", "account", "kind", "gateway", "amount_units", "fee_units", "refunded_units", "status")
    list_filter = ("status", "kind", "gateway")
    search_fields = ("account__external_id", "external_id")
    list_select_related = ("account",)


@admin.register(Refund)
class RefundAdmin(_ReadOnly):
    """Read-only: refund claims move through `billing.purchases` and Stripe's webhook; a claim still
    `requested` long after it was made is one whose answer and webhook were both lost."""

    list_display = ("created", "account", "payment", "gateway", "amount_units", "status", "external_id", "failure")
    list_filter = ("status", "gateway")
    search_fields = ("account__external_id", "external_id")
    list_select_related = ("account",)


class PromoRedemptionInline(admin.TabularInline):
    model = PromoRedemption
    extra = 0
    can_delete = False
    readonly_fields = ("account", "amount_units", "created", "expires_at", "expired_units")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PromoCode)
class PromoCodeAdmin(admin.ModelAdmin):
    list_display = ("code", "amount", "redemptions", "max_redemptions", "redeemable_until", "credit_expiry_days",
                    "active")
    search_fields = ("code",)
    readonly_fields = ("redemptions",)
    inlines = [PromoRedemptionInline]


@admin.register(Budget)
class BudgetAdmin(_ReadOnly):
    """Read-only: owners edit budgets on their budgets page or through the account API (billing.budgets)."""

    list_display = ("account", "scope", "target", "amount_units", "period", "mode", "created")
    list_filter = ("scope", "period", "mode")
    search_fields = ("account__external_id", "target")
    list_select_related = ("account",)


@admin.register(Reservation)
class ReservationAdmin(_ReadOnly):
    """Read-only: the gateway reserves, ingestion settles."""

    list_display = ("id", "account", "amount_units", "status", "created", "expires_at", "cost_units")
    list_filter = ("status",)
    search_fields = ("id", "account__external_id")
    list_select_related = ("account",)


@admin.register(AutoTopupChange)
class AutoTopupChangeAdmin(_ReadOnly):
    """Read-only: who turned auto top-up on or off or changed it ("system": billing itself, with the reason)."""

    list_display = ("created", "account", "actor", "old", "new", "reason")
    search_fields = ("account__external_id", "actor")
    list_select_related = ("account",)
