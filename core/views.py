"""Site-wide views: health check and plotly.js served from the installed plotly package."""
from pathlib import Path

import plotly
from django.db import connection
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Answer 200 when the database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001  (any failure means unhealthy)
        return JsonResponse({"status": "error", "database": str(error)}, status=503)
    return JsonResponse({"status": "ok"})


@require_GET
@cache_control(public=True, max_age=31_536_000, immutable=True)
def plotly_js(request: HttpRequest, version: str) -> HttpResponse:
    """Serve the plotly.min.js bundled with the plotly package (no CDN, no committed copy)."""
    if version != plotly.__version__ or not PLOTLY_JS.exists():
        raise Http404("unknown plotly version")
    return FileResponse(PLOTLY_JS.open("rb"), content_type="text/javascript; charset=utf-8")
