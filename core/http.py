"""Small HTTP helpers shared by the apps' views and API views."""
from collections.abc import Iterable

from django.http import StreamingHttpResponse


def csv_response(body: Iterable, *, filename: str) -> StreamingHttpResponse:
    """Stream CSV text or bytes (`core.csvutil.csv_stream`, a COPY) as a download named `filename`."""
    response = StreamingHttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
