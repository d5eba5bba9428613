from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .models import Generation, IngestBatch, IngestChunk, Reject, Reprice
from .usage.generation_log import generations_with_id


class RecordAdmin(admin.ModelAdmin):
    """What ingestion wrote: batches, rejects and generations come from a log, never from a form (a hand-made
    one would have no rollup, no debit and, for a reject, no line)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ChunkInline(admin.TabularInline):
    model = IngestChunk
    extra = 0
    can_delete = False
    readonly_fields = ("index", "first_line", "byte_start", "byte_end", "done", "lines", "accepted", "duplicates",
                       "rejected", "attempts", "finished_at")


@admin.register(IngestBatch)
class IngestBatchAdmin(RecordAdmin):
    list_display = ("id", "source", "format", "status", "lines", "accepted", "duplicates", "rejected", "unpriced",
                    "chunks_done", "chunks_total", "created_at")
    list_filter = ("status", "format")
    search_fields = ("source",)
    readonly_fields = [f.name for f in IngestBatch._meta.fields]
    inlines = [ChunkInline]


@admin.register(Reject)
class RejectAdmin(RecordAdmin):
    list_display = ("batch", "line", "reason")
    list_filter = ("reason",)
    search_fields = ("reason", "raw")
    list_select_related = ("batch",)
    readonly_fields = ("batch", "line", "reason", "raw")


@admin.register(Generation)
class GenerationAdmin(RecordAdmin):
    list_display = ("id", "created_at", "account", "model", "provider", "tokens_prompt", "tokens_completion",
                    "cost_units", "status")
    list_select_related = ("account", "model", "provider")
    search_fields = ("=id",)
    show_full_result_count = False
    raw_id_fields = ("account", "api_key", "model", "provider", "app")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # raw generations are the gateway's record: read-only

    def get_object(self, request, object_id, from_field=None):
        return generations_with_id(self.get_queryset(request), object_id).first()

    def get_search_results(self, request, queryset, search_term):
        # The partitioned table has no index on id alone: the key table names the month to read.
        if not search_term:
            return queryset, False
        return generations_with_id(queryset, search_term.strip()), False


@admin.register(Reprice)
class RepriceAdmin(RecordAdmin):
    """Reprices are planned and applied on their staff page (/ops/reprice/), where the dry run is shown."""

    list_display = ("id", "model", "provider", "start", "end", "status", "created_by", "created_at", "page")
    list_filter = ("status",)
    readonly_fields = [f.name for f in Reprice._meta.fields]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="dry run")
    def page(self, reprice: Reprice) -> str:
        return format_html('<a href="{}">plan and apply</a>', reverse("repricing:ops-reprice", args=[reprice.pk]))
