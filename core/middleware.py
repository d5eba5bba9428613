"""Request checks every view relies on."""
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from core.charts import page_palette_reset


class RefuseNulMiddleware:
    """Answer 400 to a URL whose path or query string holds a NUL character.

    Nothing Tokengrid stores can hold one (ingestion rejects records with a NUL, PostgreSQL text cannot
    keep it), so such a URL names nothing; passed on, a lookup or a search with it makes PostgreSQL
    raise and the view answer 500. Form bodies are checked by Django's fields already.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or any("\x00" in key or any("\x00" in v for v in values)
                                         for key, values in request.GET.lists()):
            return HttpResponseBadRequest("A NUL character names nothing here.",
                                          content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class ChartPaletteMiddleware:
    """A fresh chart palette per request, so a name keeps one colour across every chart of a page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        page_palette_reset()
        return self.get_response(request)
