"""Operator pages for ingestion: batches, their rejects, uploads and retries, unpriced traffic (staff only)."""
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from analytics.models import IngestBatch
from core.csvutil import csv_stream
from core.http import csv_response

from . import files, selectors, tasks
from .forms import UploadForm


@staff_member_required
def ops_ingest(request: HttpRequest) -> HttpResponse:
    """List batches; accept an uploaded log file."""
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        path = files.upload_store(chunks=upload.chunks(), suffix=".gz" if upload.name.endswith(".gz") else ".log")
        batch = tasks.batch_queue(path=path, source=upload.name, fmt=form.cleaned_data["format"])
        messages.success(request, f"{upload.name} queued as batch {batch.pk}.")
        return redirect("analytics:ops-batch", batch_id=batch.pk)
    page = Paginator(selectors.batches_recent(), 50).get_page(request.GET.get("page"))
    return render(request, "analytics/ops_ingest.html", {"page": page, "form": form,
                                                          "lag": selectors.ingest_lag_recent()})


@staff_member_required
def ops_batch(request: HttpRequest, batch_id: int) -> HttpResponse:
    """Show one batch, its chunks and its first rejects."""
    batch = get_object_or_404(IngestBatch, pk=batch_id)
    rejects = selectors.rejects_of_batch(batch_id=batch_id)[:200]
    return render(request, "analytics/ops_batch.html", {"batch": batch, "rejects": rejects,
                                                         "chunks": batch.chunks.all()[:500]})


@staff_member_required
def ops_batch_rejects_csv(request: HttpRequest, batch_id: int) -> StreamingHttpResponse:
    """Download every rejected record of a batch as CSV."""
    get_object_or_404(IngestBatch, pk=batch_id)
    rows = selectors.rejects_rows(batch_id=batch_id)
    return csv_response(csv_stream(("batch", "line", "reason", "raw"), rows), filename=f"batch-{batch_id}-rejects.csv")


@staff_member_required
@require_POST
def ops_batch_retry(request: HttpRequest, batch_id: int) -> HttpResponse:
    """Queue again the chunks of a batch that did not finish."""
    get_object_or_404(IngestBatch, pk=batch_id)
    queued = tasks.batch_retry(batch_id=batch_id)
    messages.success(request, f"Queued {queued} chunk(s) of batch {batch_id} again.")
    return redirect("analytics:ops-batch", batch_id=batch_id)


@staff_member_required
def ops_unpriced(request: HttpRequest) -> HttpResponse:
    """List the traffic Tokengrid could not price, per model and provider, for staff to price or map."""
    today = timezone.now().date()
    rows = selectors.unpriced_endpoints(today=today)
    return render(request, "analytics/ops_unpriced.html", {"rows": rows, "days": selectors.UNPRICED_DAYS,
                                                           "new_names": selectors.names_new(today=today)})
