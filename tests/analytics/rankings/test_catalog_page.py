"""The catalog page over the real catalog (~700 models): filters, sorts, paging, all in the URL."""
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone

from analytics.rankings.catalog import catalog_models, catalog_query_parse, model_weeks_refresh
from marketplace import services
from marketplace.models import Endpoint, Model, Provider
from tests.analytics.conftest import record, run_batch, write_jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(tmp_path, clock):
    services.catalog_sync()
    cache.clear()
    at = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [record(id=f"s{i}", model="anthropic/claude-sonnet-4", provider_name="Anthropic", created_at=at,
                   tokens_prompt=1000, tokens_completion=100, latency=800, generation_time=1000) for i in range(3)]
    rows += [record(id="g1", model="openai/gpt-4o", provider_name="OpenAI", created_at=at, tokens_prompt=50,
                    tokens_completion=50, latency=200, generation_time=250)]
    run_batch(write_jsonl(tmp_path / "c.jsonl", rows))
    model_weeks_refresh()  # what the rankings task does after ingestion
    return Model.objects.filter(listed=True).count()


def _slugs(**params) -> list[str]:
    return [row.model.slug for row in catalog_models(catalog_query_parse(params))]


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_filters_each_narrow_the_catalog(catalog):
    assert catalog > 500
    assert len(_slugs()) == catalog
    assert _slugs(has_traffic="1") == ["anthropic/claude-sonnet-4", "openai/gpt-4o"]  # by tokens: 3,300 > 100
    anthropic = _slugs(author="anthropic")
    assert anthropic
    assert all(s.startswith("anthropic/") for s in anthropic)
    busiest = Provider.objects.annotate(n=Count("endpoints")).order_by("-n").first()
    served = set(Endpoint.objects.filter(provider=busiest, model__listed=True).values_list("model__slug", flat=True))
    assert len(served) > 10
    assert set(_slugs(provider=busiest.slug)) == served
    long = _slugs(min_context="200000")
    assert long
    assert all(Model.objects.get(slug=s).context_length >= 200_000 for s in long)
    cheap = catalog_models(catalog_query_parse({"max_price": "0.10"}))
    assert cheap
    assert all(r.min_prompt is not None and r.min_prompt * 1_000_000 <= Decimal("0.10") for r in cheap)
    assert _slugs(q="sonnet 4.5", author="anthropic") == [s for s in anthropic if "sonnet-4.5" in s or
                                                          "Sonnet 4.5" in Model.objects.get(slug=s).name]
    # an unusable number is no filter
    assert len(_slugs(min_context="lots", max_price="NaN")) == catalog


def test_sorts_order_by_the_figure_and_put_models_without_it_last(catalog):
    assert _slugs(sort="tokens")[:2] == ["anthropic/claude-sonnet-4", "openai/gpt-4o"]
    assert _slugs(sort="latency")[:2] == ["openai/gpt-4o", "anthropic/claude-sonnet-4"]  # 200 ms < 800 ms
    assert _slugs(sort="throughput")[:2] == ["openai/gpt-4o", "anthropic/claude-sonnet-4"]  # 200 > 100 tok/s
    rows = catalog_models(catalog_query_parse({"sort": "price"}))
    prices = [r.min_prompt + r.min_completion for r in rows if r.min_prompt is not None]
    assert prices == sorted(prices)
    assert rows[-1].min_prompt is None or all(r.min_prompt is None for r in rows[len(prices):])
    contexts = [r.model.context_length for r in catalog_models(catalog_query_parse({"sort": "context"}))]
    known = [c for c in contexts if c is not None]
    assert known == sorted(known, reverse=True)
    assert contexts[:len(known)] == known
    newest = catalog_models(catalog_query_parse({"sort": "newest"}))
    assert [r.model.created for r in newest] == sorted((r.model.created for r in newest), reverse=True)


def test_the_page_keeps_the_query_across_pages(client, catalog, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        response = client.get("/models/", {"author": "openai", "sort": "context"})
    text = _text(response)
    assert re.search(r"\d+ models\.", text)
    page_two = client.get("/models/", {"sort": "price"}).content.decode()
    assert 'href="?sort=price&amp;page=2"' in page_two
    assert "Tokens (7d)" in page_two
    assert "No models match “zzzz-nothing”" in _text(client.get("/models/", {"q": "zzzz-nothing"}))


def test_a_provider_filter_keeps_every_providers_count_and_the_cheapest_price(catalog):
    busiest = Provider.objects.annotate(n=Count("endpoints")).order_by("-n").first()
    rows = list(catalog_models(catalog_query_parse({"provider": busiest.slug})))
    shared = [r for r in rows if r.providers > 1]
    assert shared  # models this provider serves beside others
    for row in shared:
        endpoints = Endpoint.objects.filter(model=row.model)
        assert row.providers == endpoints.count()
        assert row.min_prompt == min(e.prompt_price for e in endpoints)  # the cheapest, at whichever provider
        assert row.min_completion == min(e.completion_price for e in endpoints)
