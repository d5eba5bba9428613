from django.contrib import admin

from .models import Account, ApiKey, LedgerEntry, Membership


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("external_id", "name", "balance", "created")
    search_fields = ("external_id", "name")
    readonly_fields = ("balance_units",)
    inlines = [MembershipInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("external_id", "name", "account", "created")
    search_fields = ("external_id", "name", "account__external_id")
    list_select_related = ("account",)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """Read-only: the ledger is append-only and written only through billing.services."""

    list_display = ("created", "account", "kind", "amount", "reference", "actor")
    list_filter = ("kind",)
    search_fields = ("account__external_id", "reference", "idempotency_key")
    list_select_related = ("account",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
