"""Public pages built on the rankings: the leaderboards and the model, author, provider and app pages.

Templates stay under templates/marketplace/ and the URL names under the `marketplace` namespace:
the pages are the catalog's public face, computed here from the rollups (the catalog app itself
never imports analytics).
"""
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from core import charts, numbers
from core.charts import Series
from core.timerange import TimeRange
from marketplace import selectors
from marketplace.models import Author, Provider

from .cache import page_cached, version_pinned
from .capabilities import CAPABILITIES, capability_rankings
from .catalog import PAGE_SIZE, SORTS, catalog_models, catalog_query_parse
from .endpoint_stats import STATS_WINDOWS, UPTIME_HOURS, hourly_uptime, model_endpoints
from .leaderboards import (
    METRICS,
    WINDOWS,
    authors_volume_vs_money,
    categories_in_use,
    metric_parse,
    models_of,
    models_of_app,
    ranking_apps,
    ranking_coverage,
    ranking_models,
    ranking_providers,
    top_apps_of_model,
    window_parse,
)
from .price_index import price_index
from .series import app_daily_tokens, daily_series, first_traffic_day, provider_daily_health, weekly_tokens

STATS_WINDOWS_LABELS = {"1h": "Last hour", "1d": "Last day", "7d": "Last 7 days"}


def _page_cached(request: HttpRequest, build) -> HttpResponse:
    """Serve an anonymous GET from the cache of rendered pages, keyed by the rankings version.

    The version moves when new traffic is ingested (at most once every 40 s) and at once when staff
    hide an app or unlist a model, so a cached page never outlives what it may show. It is read once
    for the whole request (version_pinned).
    """
    with version_pinned():
        if request.user.is_authenticated:
            return build()
        built: list[HttpResponse] = []

        def render_body() -> bytes | None:
            built.append(build())
            return built[0].content if built[0].status_code == 200 else None

        body = page_cached(request.get_full_path(), render_body)
        return HttpResponse(body) if body is not None else built[0]


def rankings_page(request: HttpRequest) -> HttpResponse:
    """The public leaderboards: models, providers and apps by tokens or spend over a window."""
    return _page_cached(request, lambda: _rankings_page(request))


def _coverage(window: TimeRange) -> dict:
    """How many days of the window before this one have traffic behind them (a window of days only)."""
    previous = window.previous
    if previous is None or window.days is None or window.days < 2:
        return {}
    covered = numbers.covered_days(first_day=first_traffic_day(), window_start=previous.start.date(),
                                   window_days=window.days)
    return {} if covered is None else {"covered_days": covered, "window_days": window.days}


def _rankings_page(request: HttpRequest) -> HttpResponse:
    window = window_parse(request.GET.get("window"))
    metric = metric_parse(request.GET.get("metric"))
    categories = categories_in_use()
    category = request.GET.get("category", "")
    category = category if category in dict(categories) else ""
    models = ranking_models(window=window, metric=metric, limit=100, category=category)
    return render(request, "marketplace/rankings.html", {
        "window": window, "metric": metric, "windows": list(WINDOWS), "metrics": METRICS,
        "coverage_of_previous": _coverage(window), "categories": categories, "category": category, "category_name": dict(categories).get(category, ""),
        "top": models[:20], "more": models[20:],
        "trending": ranking_apps(window=window, metric="tokens", limit=10, trending=True)
        if window.previous else [],
        "providers": ranking_providers(window=window, metric=metric, limit=10),
        "apps": ranking_apps(window=window, metric=metric, limit=10),
        # What the spend leaderboards leave out: traffic Tokengrid could not price carries no spend.
        "coverage": ranking_coverage(window=window, category=category) if metric == "spend" else None,
        "providers_coverage": ranking_coverage(window=window, of="providers") if metric == "spend" else None,
        "apps_coverage": ranking_coverage(window=window, of="apps") if metric == "spend" else None,
        "capabilities": [(key, CAPABILITIES[key], rows)
                         for key, rows in capability_rankings(window=window, limit=10).items()],
        **_ranking_charts(window),
    })


def model_list(request: HttpRequest) -> HttpResponse:
    """The catalog: listed models filtered and sorted (every choice in the URL), 50 a page."""
    query = catalog_query_parse(request.GET)
    page = Paginator(catalog_models(query), PAGE_SIZE).get_page(request.GET.get("page"))
    keep = urlencode(query.query())
    return render(request, "marketplace/model_list.html", {
        "page": page, "query": query, "sorts": SORTS, "keep": keep, "authors": selectors.authors_with_models(),
        "providers": selectors.providers_with_models()})


def price_index_page(request: HttpRequest) -> HttpResponse:
    """The token price index: the market's blended price per 1M tokens, per week, overall, per author and
    per category, with the method written out."""
    return _page_cached(request, lambda: _price_index_page(request))


def _price_index_page(request: HttpRequest) -> HttpResponse:
    index = price_index()
    return render(request, "marketplace/price_index.html", {
        "index": index, "chart": charts.lines(index.series, title="Token price index, USD per 1M tokens",
                                               unit="USD / 1M tokens")})


def _ranking_charts(window: TimeRange) -> dict:
    weekly_models = weekly_tokens(by="model")
    weekly_authors = weekly_tokens(by="author", top=10)
    volume = authors_volume_vs_money(window=window)
    index = price_index()
    return {
        "price_index": index,
        "price_index_chart": charts.lines(Series(index.weeks, {index.overall.name: [p.price for p in
                                                                                      index.overall.points]}),
                                          title="Token price index, USD per 1M tokens", unit="USD / 1M tokens"),
        "weekly_models": weekly_models, "weekly_authors": weekly_authors, "volume": volume,
        "weekly_models_chart": charts.stacked_bars(weekly_models, title="Tokens per week, top models"),
        "weekly_authors_chart": charts.stacked_bars(weekly_authors, title="Market share by author", percent=True),
        "volume_chart": charts.volume_vs_money(volume),
    }


def model_detail(request: HttpRequest, author: str, name: str) -> HttpResponse:
    """A model: prices, providers table with live figures, daily tokens by provider, top apps."""
    model = selectors.model_get(author=author, name=name)
    if model is None:
        raise Http404("No such model")
    return _page_cached(request, lambda: _model_page(request, model))


def _model_page(request: HttpRequest, model) -> HttpResponse:
    daily = daily_series(group="provider__name", model_id=model.pk)
    week = window_parse("week")
    window = request.GET.get("window") if request.GET.get("window") in STATS_WINDOWS else "7d"
    uptime = hourly_uptime(model_id=model.pk)
    return render(request, "marketplace/model_detail.html", {
        "model": model, "endpoints": model_endpoints(model=model, window=window), "daily": daily,
        "stats_window": window, "stats_windows": STATS_WINDOWS_LABELS, "uptime": uptime,
        "uptime_chart": charts.lines(uptime, title=f"Uptime per hour, last {UPTIME_HOURS} hours", unit="%"),
        "daily_chart": charts.daily_stacked(daily, title="Tokens per day by provider"),
        "apps": top_apps_of_model(model_id=model.pk, window=week)})


def author_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """A lab: its models' traffic per day and its models."""
    author = get_object_or_404(Author, slug=slug)
    daily = daily_series(group="model__name", model__author_id=author.pk)
    return render(request, "marketplace/author_detail.html", {
        "author": author, "models": selectors.author_models(author=author), "daily": daily,
        "daily_chart": charts.daily_stacked(daily, title="Tokens per day by model"),
        "ranked": models_of(window=window_parse("month"), model__author_id=author.pk)})


def provider_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """A provider: models served, tokens, uptime and latency over time."""
    provider = get_object_or_404(Provider, slug=slug)
    health = provider_daily_health(provider_id=provider.pk)
    return render(request, "marketplace/provider_detail.html", {
        "provider": provider, "endpoints": selectors.provider_endpoints(provider=provider), "health": health,
        "health_chart": charts.provider_health(health),
        "ranked": models_of(window=window_parse("month"), provider_id=provider.pk)})


def app_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """A public app: tokens over time and the models it uses."""
    app = selectors.app_get(slug=slug)
    if app is None:
        raise Http404("No such app")
    return _page_cached(request, lambda: _app_page(request, app))


def _app_page(request: HttpRequest, app) -> HttpResponse:
    daily = app_daily_tokens(app_id=app.pk)
    return render(request, "marketplace/app_detail.html", {
        "app": app, "daily": daily, "daily_chart": charts.daily_stacked(daily, title="Tokens per day by model"),
        "ranked": models_of_app(app_id=app.pk, window=window_parse("month"))})
