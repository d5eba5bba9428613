"""Migration 0017's repair (analytics.catalog_merge.names_merge): duplicates made by the old ingestion and by
catalog_sync merged into the catalog's rows with their generations and rollups, sums unchanged."""
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.db.models import Sum

from analytics.catalog_merge import names_merge
from analytics.models import AccountDay, AccountHour, EndpointDay, EndpointHistogram, Generation
from core.money import UNITS_PER_USD
from marketplace import services
from marketplace.models import Author, Model, Provider

from .conftest import D1, at, record, run_batch, write_jsonl

pytestmark = pytest.mark.django_db


def _old_state(tmp_path):
    """What the old ingestion left: LiteLLM's `openai` as a provider of its own (slug openai-2) and its bare
    `gpt-4o` as an unlisted model of the author `unknown`, beside the catalog's rows of the same hour."""
    services.catalog_sync()
    run_batch(write_jsonl(tmp_path / "old.jsonl", [
        record(id="o1", model="legacy/x", provider_name="Legacy", total_cost=0.001, created_at=at(D1, 10)),
        record(id="o2", model="legacy/x", provider_name="Legacy", total_cost=0.002, created_at=at(D1, 10, 30)),
    ]))
    Provider.objects.filter(name="Legacy").update(name="openai", slug="openai-2")
    unknown, _ = Author.objects.get_or_create(slug="unknown", defaults={"name": "Unknown"})
    Model.objects.filter(slug="legacy/x").update(slug="gpt-4o", route_name="gpt-4o", name="gpt-4o", author=unknown,
                                                 listed=False)
    run_batch(write_jsonl(tmp_path / "new.jsonl", [
        record(id="n1", model="openai/gpt-4o", provider_name="OpenAI", total_cost=0.004, created_at=at(D1, 10, 45)),
    ]))
    Provider.objects.create(name="Z.ai", slug="zai-2", genai_prices_id="openrouter")  # catalog_sync's, before


def test_duplicates_are_merged_with_their_generations_and_rollups(tmp_path):
    _old_state(tmp_path)
    before = {table: table.objects.aggregate(n=Sum("requests"))["n"] for table in (EndpointDay, AccountDay, AccountHour)}

    report = names_merge(apps=django_apps)

    # per duplicate: EndpointHour, EndpointDay, AccountDay, AccountHour one row each, and two histogram rows
    # (latency and throughput, both requests in the same buckets)
    assert [str(m) for m in report] == [
        "provider 'Z.ai' merged into 'Z.AI': 0 generations, 0 rollup rows, 0 endpoints",
        "provider 'openai' merged into 'OpenAI': 2 generations, 6 rollup rows, 0 endpoints",
        "model 'gpt-4o' merged into 'openai/gpt-4o': 2 generations, 6 rollup rows, 0 endpoints",
    ]
    assert not Provider.objects.filter(name__in=["openai", "Z.ai"]).exists()
    assert not Model.objects.filter(slug="gpt-4o").exists()
    assert set(Generation.objects.values_list("id", "model__slug", "provider__name")) == {
        ("o1", "openai/gpt-4o", "OpenAI"), ("o2", "openai/gpt-4o", "OpenAI"), ("n1", "openai/gpt-4o", "OpenAI")}
    # one rollup row per key, holding all three requests: nothing lost, nothing counted twice
    day = EndpointDay.objects.get()
    assert (day.model.slug, day.provider.name, day.requests, Decimal(day.spend_units) / UNITS_PER_USD) == (
        "openai/gpt-4o", "OpenAI", 3, Decimal("0.007"))
    assert AccountDay.objects.get().requests == AccountHour.objects.get().requests == 3
    assert EndpointHistogram.objects.filter(metric=1).get().count == 3
    assert {table: table.objects.aggregate(n=Sum("requests"))["n"] for table in before} == before

    assert names_merge(apps=django_apps) == []  # nothing left to merge
