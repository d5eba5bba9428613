"""No public page answers 500, whatever state the catalog is in: a model only seen in traffic, a
provider without a catalog price, a model without endpoints (new to the catalog), an app without a name."""
import re

import pytest

from analytics.rankings.cache import rankings_invalidate
from marketplace.models import App, Author, Endpoint, Model, Provider
from tests.analytics.conftest import D1, at, record, run_batch, write_jsonl

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


@pytest.fixture
def odd_catalog(tmp_path):
    """Traffic for models and providers the catalog does not know, one app without a name, and a catalog
    model with no endpoint and no traffic; staff list what traffic created."""
    run_batch(write_jsonl(tmp_path / "odd.jsonl", [
        record(id="t1", model="newlab/only-traffic", provider_name="Brand New Cloud", created_at=at(D1, 10),
               origin="https://nameless.example/", app_name=...),
        record(id="t2", model="newlab/only-traffic", provider_name="Second Cloud", created_at=at(D1, 11),
               total_cost=0.5, tokens_prompt=10, tokens_completion=5),
        record(id="t3", model="lab/priced", provider_name="Priced Cloud", created_at=at(D1, 12),
               origin="https://named.example/", app_name="Named App"),
    ]))
    Model.objects.update(listed=True)  # staff review the models that traffic created
    author = Author.objects.get_or_create(slug="freshlab", defaults={"name": "Fresh Lab"})[0]
    Model.objects.create(author=author, slug="freshlab/just-added", route_name="just-added", name="Just Added",
                         listed=True)
    Provider.objects.get_or_create(slug="no-endpoints-cloud", defaults={"name": "No Endpoints Cloud"})
    rankings_invalidate()


def _public_urls() -> list[str]:
    urls = ["/", "/rankings/", "/rankings/?window=day&metric=spend", "/rankings/?window=all", "/models/",
            "/models/?sort=price", "/rankings/price-index/"]
    for model in Model.objects.filter(listed=True).select_related("author"):
        urls += [model.get_absolute_url(), model.get_absolute_url() + "?window=1h"]
    urls += [p.get_absolute_url() for p in Provider.objects.all()]
    urls += [a.get_absolute_url() for a in Author.objects.all()]
    urls += [a.get_absolute_url() for a in App.objects.filter(public=True)]
    return urls


def test_every_public_page_answers_in_every_catalog_state(client, odd_catalog):
    assert not Endpoint.objects.filter(model__slug="newlab/only-traffic").exists()
    nameless = App.objects.get(origin__contains="nameless")
    urls = _public_urls()
    assert "/models/freshlab/just-added/" in urls
    assert nameless.get_absolute_url() in urls
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url


def test_a_model_seen_only_in_traffic_shows_its_providers_with_the_price_unknown(client, odd_catalog):
    text = _text(client.get("/models/newlab/only-traffic/"))
    assert "Brand New Cloud" in text
    assert "Second Cloud" in text
    assert "Input from" not in text  # no catalog price to start from
    assert "price unknown" in text.lower() or "—" in text


def test_a_model_new_to_the_catalog_has_a_page_that_says_what_is_missing(client, odd_catalog):
    text = _text(client.get("/models/freshlab/just-added/"))
    assert "Just Added" in text
    assert "No provider serves this model yet." in text
    assert "No traffic for this model yet" in text
