"""factory-boy factories of the catalog: authors, models, providers, endpoints and apps."""
from decimal import Decimal

import factory

from marketplace.models import App, Author, Endpoint, Model, Provider


class AuthorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Author

    slug = factory.Sequence(lambda n: f"lab{n}")
    name = factory.LazyAttribute(lambda author: author.slug.title())


class ModelFactory(factory.django.DjangoModelFactory):
    """A model `author/route_name`; its slug follows the author and route name unless given."""

    class Meta:
        model = Model

    author = factory.SubFactory(AuthorFactory)
    route_name = factory.Sequence(lambda n: f"model-{n}")
    slug = factory.LazyAttribute(lambda model: f"{model.author.slug}/{model.route_name}")
    name = factory.LazyAttribute(lambda model: model.route_name)


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Provider

    slug = factory.Sequence(lambda n: f"prov{n}")
    name = factory.LazyAttribute(lambda provider: provider.slug.title())


class EndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Endpoint

    model = factory.SubFactory(ModelFactory)
    provider = factory.SubFactory(ProviderFactory)
    prompt_price = Decimal(0)
    completion_price = Decimal(0)


class AppFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = App

    slug = factory.Sequence(lambda n: f"app{n}")
    origin = factory.LazyAttribute(lambda app: f"https://{app.slug}.example")
    name = factory.LazyAttribute(lambda app: app.slug.title())
