"""Public catalog pages: the model list and the model, author, provider and app pages."""
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from analytics import rankings

from . import charts, selectors
from .models import Author, Provider


def _page_cached(request: HttpRequest, build) -> HttpResponse:
    """Serve an anonymous GET from the cache of rendered pages, keyed by the rankings version.

    The version moves when new traffic is ingested (at most once a minute) and at once when staff
    hide an app or unlist a model, so a cached page never outlives what it may show.
    """
    if request.user.is_authenticated:
        return build()
    key = f"page:{rankings.version()}:{request.get_full_path()}"
    body = cache.get(key)
    if body is None:
        response = build()
        if response.status_code != 200:
            return response
        body = response.content
        cache.set(key, body, rankings.CACHE_PAGE_SECONDS)
    return HttpResponse(body)


def rankings_page(request: HttpRequest) -> HttpResponse:
    """The public leaderboards: models, providers and apps by tokens or spend over a window."""
    return _page_cached(request, lambda: _rankings_page(request))


def _rankings_page(request: HttpRequest) -> HttpResponse:
    window = rankings.window_parse(request.GET.get("window"))
    metric = rankings.metric_parse(request.GET.get("metric"))
    categories = rankings.categories_in_use()
    category = request.GET.get("category", "")
    category = category if category in dict(categories) else ""
    models = rankings.ranking_models(window=window, metric=metric, limit=100, category=category)
    return render(request, "marketplace/rankings.html", {
        "window": window, "metric": metric, "windows": list(rankings.WINDOWS), "metrics": rankings.METRICS,
        "categories": categories, "category": category, "category_name": dict(categories).get(category, ""),
        "top": models[:20], "more": models[20:],
        "trending": rankings.ranking_apps(window=window, metric="tokens", limit=10, trending=True)
        if window.previous else [],
        "providers": rankings.ranking_providers(window=window, metric=metric, limit=10),
        "apps": rankings.ranking_apps(window=window, metric=metric, limit=10),
        **_ranking_charts(window),
    })


def _ranking_charts(window: rankings.Window) -> dict:
    weekly_models = rankings.weekly_tokens(by="model")
    weekly_authors = rankings.weekly_tokens(by="author", top=10)
    volume = rankings.authors_volume_vs_money(window=window)
    return {
        "weekly_models": weekly_models, "weekly_authors": weekly_authors, "volume": volume,
        "weekly_models_chart": charts.stacked_bars(weekly_models, title="Tokens per week, top models"),
        "weekly_authors_chart": charts.stacked_bars(weekly_authors, title="Market share by author", percent=True),
        "volume_chart": charts.volume_vs_money(volume),
    }


def model_list(request: HttpRequest) -> HttpResponse:
    """Search listed models by name and author."""
    q = request.GET.get("q", "").strip()[:100]
    author = request.GET.get("author", "").strip()[:100]
    page = Paginator(selectors.models_search(q=q, author=author), 50).get_page(request.GET.get("page"))
    return render(request, "marketplace/model_list.html", {
        "page": page, "q": q, "author": author, "authors": selectors.authors_with_models()})


def model_detail(request: HttpRequest, author: str, name: str) -> HttpResponse:
    """A model: prices, providers table with live figures, daily tokens by provider, top apps."""
    model = selectors.model_get(author=author, name=name)
    if model is None:
        raise Http404("No such model")
    return _page_cached(request, lambda: _model_page(request, model))


def _model_page(request: HttpRequest, model) -> HttpResponse:
    daily = rankings.daily_series(group="provider__name", model_id=model.pk)
    week = rankings.window_parse("week")
    return render(request, "marketplace/model_detail.html", {
        "model": model, "endpoints": selectors.model_endpoints(model=model), "daily": daily,
        "daily_chart": charts.daily_stacked(daily, title="Tokens per day by provider"),
        "apps": rankings.top_apps_of_model(model_id=model.pk, window=week)})


def author_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """A lab: its models' traffic per day and its models."""
    author = get_object_or_404(Author, slug=slug)
    daily = rankings.daily_series(group="model__name", model__author_id=author.pk)
    return render(request, "marketplace/author_detail.html", {
        "author": author, "models": selectors.author_models(author=author), "daily": daily,
        "daily_chart": charts.daily_stacked(daily, title="Tokens per day by model"),
        "ranked": rankings.models_of(window=rankings.window_parse("month"), model__author_id=author.pk)})


def provider_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """A provider: models served, tokens, uptime and latency over time."""
    provider = get_object_or_404(Provider, slug=slug)
    health = rankings.provider_daily_health(provider_id=provider.pk)
    return render(request, "marketplace/provider_detail.html", {
        "provider": provider, "endpoints": selectors.provider_endpoints(provider=provider), "health": health,
        "health_chart": charts.provider_health(health),
        "ranked": rankings.models_of(window=rankings.window_parse("month"), provider_id=provider.pk)})


def app_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """A public app: tokens over time and the models it uses."""
    app = selectors.app_get(slug=slug)
    if app is None:
        raise Http404("No such app")
    return _page_cached(request, lambda: _app_page(request, app))


def _app_page(request: HttpRequest, app) -> HttpResponse:
    daily = rankings.app_daily_tokens(app_id=app.pk)
    return render(request, "marketplace/app_detail.html", {
        "app": app, "daily": daily, "daily_chart": charts.daily_stacked(daily, title="Tokens per day by model"),
        "ranked": rankings.models_of_app(app_id=app.pk, window=rankings.window_parse("month"))})
