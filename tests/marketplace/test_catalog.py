"""catalog_sync over the whole pinned catalog, registration of what traffic names, and pricing.

What a sync reports and how it treats changed prices: test_catalog_sync.py.
"""
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price, data_snapshot

from marketplace import services
from marketplace.models import App, Author, Endpoint, EndpointPrice, Model, Provider
from marketplace.pricing import PriceBook
from tests.marketplace.factories import EndpointFactory

pytestmark = pytest.mark.django_db


def _catalog() -> tuple:
    return (
        sorted(Model.objects.values_list("slug", "name", "author__slug", "context_length", "listed")),
        sorted(Endpoint.objects.values_list("model__slug", "provider__name", "prompt_price", "completion_price",
                                            "cache_read_price")),
        sorted(EndpointPrice.objects.values_list("endpoint__model__slug", "endpoint__provider__name", "valid_from",
                                                 "prompt_price")),
        sorted(Provider.objects.values_list("slug", "name")),
    )


def test_catalog_sync_loads_hundreds_of_real_models_and_twice_gives_the_same_catalog():
    first = services.catalog_sync()
    catalog = _catalog()
    second = services.catalog_sync()

    assert first.models.added > 500
    assert first.providers.added >= 40
    assert first.endpoints.added > first.models.added
    assert not second.changed_anything
    assert second.models.unchanged == first.models.added
    assert _catalog() == catalog


def test_prices_are_decimal_per_token_and_equal_genai_prices_own():
    services.catalog_sync()
    genai = {(p.id, m.id): m for p in data_snapshot.get_snapshot().providers for m in p.models}

    sonnet = Endpoint.objects.get(model__slug="anthropic/claude-sonnet-4", provider__name="Anthropic")
    assert isinstance(sonnet.prompt_price, Decimal)
    assert (sonnet.prompt_price, sonnet.completion_price) == (Decimal("0.000003"), Decimal("0.000015"))
    assert sonnet.cache_read_price == Decimal("0.0000003")

    # Every endpoint with a plain price equals its genai-prices source, per MTok / 1e6.
    checked = 0
    for endpoint in Endpoint.objects.all():
        provider_id, model_id = endpoint.genai_prices_ref.split(":", 1)
        price = genai[(provider_id, model_id)].prices
        if isinstance(price, list) or getattr(price, "input_mtok", None) is None:
            continue
        base = getattr(price.input_mtok, "base", price.input_mtok)
        assert endpoint.prompt_price == Decimal(base) / 1_000_000, endpoint
        out = getattr(price.output_mtok, "base", price.output_mtok) or 0
        assert endpoint.completion_price == Decimal(out) / 1_000_000, endpoint
        checked += 1
    assert checked > 500


def test_unknown_models_are_registered_unlisted_and_registration_is_idempotent():
    ids = services.models_register(slugs={"newlab/brand-new-1", "noauthor"})
    again = services.models_register(slugs={"newlab/brand-new-1", "noauthor"})

    assert ids == again
    model = Model.objects.get(slug="newlab/brand-new-1")
    assert (model.author.slug, model.route_name, model.listed, model.from_catalog) == (
        "newlab", "brand-new-1", False, False)
    assert Model.objects.get(slug="noauthor").author.slug == "unknown"
    assert Author.objects.filter(slug="newlab").count() == 1


def test_providers_and_apps_are_registered_once():
    providers = services.providers_register(names={"Acme Cloud", "acme cloud!"})
    assert len(set(providers.values())) == 2
    assert sorted(Provider.objects.values_list("slug", flat=True)) == ["acme-cloud", "acme-cloud-2"]

    apps = services.apps_register(apps={"https://x.example/tool": ("<b>Tool</b>", ["cli-agent", "programming-app"])})
    again = services.apps_register(apps={"https://x.example/tool": ("Renamed", ["chat"])})
    assert apps == again
    app = App.objects.get()
    assert app.name == "<b>Tool</b>"  # first sight wins; templates escape it
    assert sorted(app.categories.values_list("slug", flat=True)) == ["cli-agent", "programming-app"]


def test_pricebook_uses_the_endpoint_price_in_force_then_genai_prices():
    services.catalog_sync()
    book = PriceBook.load()
    at = datetime(2026, 6, 1, tzinfo=UTC)

    cost = book.cost(model_slug="anthropic/claude-sonnet-4", provider_name="Anthropic", created_at=at,
                     tokens_prompt=1000, tokens_completion=100, tokens_reasoning=0, tokens_cached=200)
    # 800 fresh prompt tokens at $3/M + 200 cached at $0.30/M + 100 completion at $15/M
    assert cost == Decimal("0.00240") + Decimal("0.00006") + Decimal("0.0015")
    expected = calc_price(Usage(input_tokens=1000, output_tokens=100, cache_read_tokens=200), "claude-sonnet-4",
                          provider_id="anthropic", genai_request_timestamp=at).total_price
    assert cost == expected

    # No endpoint at this provider of a model the catalog prices: unpriced (not genai-prices, not the
    # cheapest endpoint), until staff map the provider.
    assert book.cost(model_slug="anthropic/claude-sonnet-4", provider_name="Nowhere", created_at=at,
                     tokens_prompt=1000, tokens_completion=100, tokens_reasoning=0, tokens_cached=0) is None
    # A model the catalog has no endpoint of: genai-prices' own price of it.
    Endpoint.objects.filter(model__slug="anthropic/claude-sonnet-4").delete()
    uncatalogued = PriceBook.load().cost(model_slug="anthropic/claude-sonnet-4", provider_name="Nowhere",
                                         created_at=at, tokens_prompt=1000, tokens_completion=100,
                                         tokens_reasoning=0, tokens_cached=0)
    assert uncatalogued == Decimal("0.0045")  # 1000 x $3/M + 100 x $15/M
    assert book.cost(model_slug="nobody/knows-this", provider_name="X", created_at=at, tokens_prompt=1,
                     tokens_completion=1, tokens_reasoning=0, tokens_cached=0) is None


def test_pricebook_follows_price_history():
    endpoint = EndpointFactory(model__author__slug="acme", model__route_name="m", provider__slug="p",
                               provider__name="P", prompt_price=Decimal("0.000002"),
                               completion_price=Decimal("0.000004"))
    EndpointPrice.objects.create(endpoint=endpoint, valid_from=datetime(2000, 1, 1, tzinfo=UTC),
                                 prompt_price=Decimal("0.000001"), completion_price=Decimal("0.000002"))
    EndpointPrice.objects.create(endpoint=endpoint, valid_from=datetime(2026, 3, 1, tzinfo=UTC),
                                 prompt_price=Decimal("0.000002"), completion_price=Decimal("0.000004"))
    book = PriceBook.load()

    def cost(when):
        return book.cost(model_slug="acme/m", provider_name="P", created_at=when, tokens_prompt=1000,
                         tokens_completion=1000, tokens_reasoning=0, tokens_cached=0)

    assert cost(datetime(2026, 2, 28, 23, 59, tzinfo=UTC)) == Decimal("0.003")
    assert cost(datetime(2026, 3, 1, tzinfo=UTC)) == Decimal("0.006")


def test_catalog_sync_runs_as_a_celery_task():
    from marketplace.tasks import catalog_sync_task

    report = catalog_sync_task.apply().get()
    assert report["counts"]["models"]["added"] > 500  # the task really loaded the catalog (0 == 0 would pass too)
    assert report["counts"]["models"]["added"] == Model.objects.count()


def test_pricebook_prices_an_unknown_provider_only_through_a_staff_mapping():
    endpoint = EndpointFactory(model__author__slug="acme", model__route_name="m", provider__name="P",
                               prompt_price=Decimal("0.000002"), completion_price=Decimal("0.000004"))
    EndpointFactory(model=endpoint.model, provider__name="Dear", prompt_price=Decimal("0.00001"),
                    completion_price=Decimal("0.00002"))
    cheap = EndpointFactory(provider__name="Cheap", prompt_price=Decimal("0.000001"),
                            completion_price=Decimal("0.000001"))  # another model's endpoint
    mirror = Provider.objects.create(slug="mirror", name="Mirror")
    at = datetime(2026, 6, 1, tzinfo=UTC)

    def cost(book, provider):
        return book.cost(model_slug="acme/m", provider_name=provider, created_at=at, tokens_prompt=1000,
                         tokens_completion=1000, tokens_reasoning=0, tokens_cached=0)

    book = PriceBook.load()
    assert cost(book, "Mirror") is None  # not the model's cheapest endpoint (P), not genai-prices
    mirror.prices_as = endpoint.provider
    mirror.save()
    assert cost(PriceBook.load(), "Mirror") == Decimal("0.006")  # P's price: 1000 x $2/M + 1000 x $4/M
    assert cost(PriceBook.load(), "Dear") == Decimal("0.03")  # its own endpoint keeps its own price
    mirror.prices_as = cheap.provider  # mapped to a provider without an endpoint of this model: unpriced
    mirror.save()
    assert cost(PriceBook.load(), "Mirror") is None
