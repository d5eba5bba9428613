"""The public catalog pages, as a person reads them."""
import re

import pytest

from marketplace import services
from marketplace.models import App, Model

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    services.catalog_sync()


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_model_list_searches_by_name_and_author(client, catalog, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):  # the models, the authors and providers, the week's two rollup reads
        response = client.get("/models/", {"q": "sonnet 4.5"})
    assert response.status_code == 200
    text = _text(response)
    assert "Claude Sonnet 4.5" in text
    assert "GPT-4o" not in text

    by_author = _text(client.get("/models/", {"author": "anthropic"}))
    assert "Claude" in by_author
    assert "Gemini" not in by_author
    assert "No models match “zzzz-nothing”" in _text(client.get("/models/", {"q": "zzzz-nothing"}))


def test_model_page_shows_its_endpoints_and_prices_per_million(client, catalog, django_assert_max_num_queries):
    with django_assert_max_num_queries(10):  # model, endpoints, rollups for the table, chart and apps
        response = client.get("/models/anthropic/claude-sonnet-4/")
    text = _text(response)
    assert "Claude Sonnet 4" in text
    assert "anthropic/claude-sonnet-4" in text
    assert re.search(r"Anthropic cheapest \$3\.00 \$15\.00 \$0\.30 ", text)


def test_unlisted_models_and_hidden_apps_are_not_public(client):
    services.models_register(slugs={"newlab/secret"})
    assert client.get("/models/newlab/secret/").status_code == 404
    Model.objects.filter(slug="newlab/secret").update(listed=True)
    assert client.get("/models/newlab/secret/").status_code == 200

    services.apps_register(apps={"https://hidden.example": ("Hidden", [])})
    app = App.objects.get()
    assert client.get(f"/apps/{app.slug}/").status_code == 200
    App.objects.update(public=False)
    assert client.get(f"/apps/{app.slug}/").status_code == 404


def test_app_names_are_escaped(client):
    services.apps_register(apps={"https://evil.example": ("<img src=x onerror=alert(1)>", ["chat"])})
    app = App.objects.get()
    body = client.get(f"/apps/{app.slug}/").content.decode()
    assert "<img src=x onerror=alert(1)>" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body


def test_author_and_provider_pages(client, catalog):
    assert "Claude Sonnet 4" in _text(client.get("/authors/anthropic/"))
    groq = _text(client.get("/providers/groq/"))
    assert "Groq" in groq
    assert "Models served" in groq


def test_admin_changelists_search_the_catalog(admin_client, catalog):
    for url in ("/admin/marketplace/model/?q=sonnet", "/admin/marketplace/endpoint/?q=claude",
                "/admin/marketplace/provider/?q=groq", "/admin/marketplace/app/", "/admin/analytics/ingestbatch/",
                "/admin/billing/account/", "/admin/billing/ledgerentry/"):
        response = admin_client.get(url)
        assert response.status_code == 200, url
    assert "claude-sonnet-4" in admin_client.get("/admin/marketplace/model/?q=sonnet").content.decode()
