"""Catalog reads for the public pages (bounded queries, listed models only)."""
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Min, Prefetch, Q, QuerySet

from analytics.endpoint_stats import EndpointStats, endpoint_stats

from .models import App, Author, Endpoint, Model, Provider


def models_search(*, q: str = "", author: str = "") -> QuerySet[Model]:
    """Listed models matching a name/slug search and an author, with provider count and cheapest prices."""
    qs = Model.objects.filter(listed=True).select_related("author")
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(slug__icontains=q))
    if author:
        qs = qs.filter(author__slug=author)
    return qs.annotate(providers=Count("endpoints"), min_prompt=Min("endpoints__prompt_price"),
                       min_completion=Min("endpoints__completion_price")).order_by("slug")


def authors_with_models() -> QuerySet[Author]:
    """Authors that have listed models, for the filter."""
    return Author.objects.filter(models__listed=True).distinct().order_by("name")


@dataclass(frozen=True)
class EndpointRow:
    endpoint: Endpoint
    cheapest: bool
    stats: EndpointStats | None = None
    fastest: bool = False
    most_reliable: bool = False

    @property
    def blended(self) -> Decimal:
        return self.endpoint.prompt_price + self.endpoint.completion_price


def model_get(*, author: str, name: str) -> Model | None:
    """A listed model by its URL parts."""
    return (Model.objects.filter(author__slug=author, route_name=name, listed=True).select_related("author")
            .first())


def model_endpoints(*, model: Model) -> list[EndpointRow]:
    """The model's endpoints with live figures; the cheapest, fastest and most reliable marked."""
    endpoints = sorted(Endpoint.objects.filter(model=model).select_related("provider"),
                       key=lambda e: (e.prompt_price + e.completion_price, e.provider.name))
    stats = endpoint_stats(model_id=model.pk)
    cheapest = endpoints[0].prompt_price + endpoints[0].completion_price if endpoints else None
    speeds = [s.throughput_p50 for s in stats.values() if s.throughput_p50 is not None]
    uptimes = [s.uptime_7d for s in stats.values() if s.uptime_7d is not None]
    fastest, best_uptime = (max(speeds) if speeds else None), (max(uptimes) if uptimes else None)
    rows = []
    for e in endpoints:
        figures = stats.get(e.provider_id)
        rows.append(EndpointRow(
            e, cheapest is not None and e.prompt_price + e.completion_price == cheapest, figures,
            fastest=figures is not None and figures.throughput_p50 is not None and figures.throughput_p50 == fastest,
            most_reliable=figures is not None and figures.uptime_7d is not None and figures.uptime_7d == best_uptime))
    return rows


def author_models(*, author: Author) -> QuerySet[Model]:
    return models_search(author=author.slug)


def provider_endpoints(*, provider: Provider) -> QuerySet[Endpoint]:
    """What a provider serves, listed models only."""
    return (Endpoint.objects.filter(provider=provider, model__listed=True)
            .select_related("model", "model__author").order_by("model__slug"))


def app_get(*, slug: str) -> App | None:
    """A public app with its categories."""
    return App.objects.filter(slug=slug, public=True).prefetch_related(Prefetch("categories")).first()
