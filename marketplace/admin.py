from django.contrib import admin

from .models import App, AppCategory, Author, Endpoint, EndpointPrice, Model, PendingPriceChange, Provider


class EndpointInline(admin.TabularInline):
    model = Endpoint
    extra = 0
    fields = ("provider", "prompt_price", "completion_price", "cache_read_price", "reasoning_price",
              "context_length", "max_output")
    raw_id_fields = ("provider",)


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    list_display = ("slug", "name")
    search_fields = ("slug", "name")


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "author", "context_length", "listed", "from_catalog", "created")
    list_editable = ("listed",)
    list_filter = ("listed", "from_catalog", "author")
    search_fields = ("slug", "name")
    list_select_related = ("author",)
    raw_id_fields = ("author",)
    inlines = [EndpointInline]


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "genai_prices_id", "prices_as")
    list_select_related = ("prices_as",)
    search_fields = ("name", "slug")
    autocomplete_fields = ("prices_as",)


class EndpointPriceInline(admin.TabularInline):
    model = EndpointPrice
    extra = 0


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ("model", "provider", "prompt_price", "completion_price", "cache_read_price", "context_length")
    list_filter = ("provider",)
    search_fields = ("model__slug", "provider__name")
    list_select_related = ("model", "provider")
    raw_id_fields = ("model", "provider")
    inlines = [EndpointPriceInline]


@admin.register(EndpointPrice)
class EndpointPriceAdmin(admin.ModelAdmin):
    list_display = ("endpoint", "valid_from", "prompt_price", "completion_price")
    list_select_related = ("endpoint__model", "endpoint__provider")
    search_fields = ("endpoint__model__slug",)
    raw_id_fields = ("endpoint",)


@admin.register(AppCategory)
class AppCategoryAdmin(admin.ModelAdmin):
    list_display = ("slug", "name")
    search_fields = ("slug", "name")


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = ("name", "origin", "public", "created")
    list_editable = ("public",)
    list_filter = ("public", "categories")
    search_fields = ("name", "origin")
    filter_horizontal = ("categories",)


@admin.register(PendingPriceChange)
class PendingPriceChangeAdmin(admin.ModelAdmin):
    """Price changes catalog_sync held back because requests were billed at the old price."""

    list_display = ("endpoint", "valid_from", "old_prompt_price", "new_prompt_price", "old_completion_price",
                    "new_completion_price", "requests", "billed_since", "status", "detected_at")
    list_filter = ("status",)
    list_select_related = ("endpoint__model", "endpoint__provider")
    search_fields = ("endpoint__model__slug", "endpoint__provider__name")
    raw_id_fields = ("endpoint",)
    readonly_fields = ("detected_at",)
