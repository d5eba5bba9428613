"""Public catalog pages that need no traffic figures: the model list (the pages built on the rankings
live in analytics.rankings.views)."""
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from . import selectors


def model_list(request: HttpRequest) -> HttpResponse:
    """Search listed models by name and author."""
    q = request.GET.get("q", "").strip()[:100]
    author = request.GET.get("author", "").strip()[:100]
    page = Paginator(selectors.models_search(q=q, author=author), 50).get_page(request.GET.get("page"))
    return render(request, "marketplace/model_list.html", {
        "page": page, "q": q, "author": author, "authors": selectors.authors_with_models()})
