"""Catalog reads for the public pages (bounded queries, listed models only)."""
from django.db.models import Count, Min, Prefetch, Q, QuerySet

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


def providers_with_models() -> QuerySet[Provider]:
    """Providers serving listed models, for the filter."""
    return Provider.objects.filter(endpoints__model__listed=True).distinct().order_by("name")


def model_get(*, author: str, name: str) -> Model | None:
    """A listed model by its URL parts."""
    return (Model.objects.filter(author__slug=author, route_name=name, listed=True).select_related("author")
            .first())


def author_models(*, author: Author) -> QuerySet[Model]:
    return models_search(author=author.slug)


def provider_endpoints(*, provider: Provider) -> QuerySet[Endpoint]:
    """What a provider serves, listed models only."""
    return (Endpoint.objects.filter(provider=provider, model__listed=True)
            .select_related("model", "model__author").order_by("model__slug"))


def app_get(*, slug: str) -> App | None:
    """A public app with its categories."""
    return App.objects.filter(slug=slug, public=True).prefetch_related(Prefetch("categories")).first()
