"""Every format resolves gateway names to the catalog's (marketplace.names) at ingestion, in a constant number of
queries per chunk; what matches nothing is kept as written and listed for staff."""
import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from analytics.models import EndpointDay, Generation
from billing.models import ApiKey
from marketplace import services
from marketplace.models import Model, Provider
from tests.billing.factories import UserFactory

from ..conftest import D1, at, record, run_batch, write_jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    services.catalog_sync()
    return set(Provider.objects.values_list("name", flat=True))


def test_openrouter_records_whose_provider_is_an_id(tmp_path, catalog):
    run_batch(write_jsonl(tmp_path / "ids.jsonl", [
        record(id="a1", model="gpt-4o-mini", provider_name="openai", total_cost=..., created_at=at(D1, 9),
               provider_responses=[{"provider_name": "azure", "status": 500, "latency": 90},
                                   {"provider_name": "openai", "status": 200, "latency": 300}]),
        record(id="a2", model="acme-7b", provider_name="my-vllm", total_cost=0.01, created_at=at(D1, 9)),
    ]))
    a1 = Generation.objects.select_related("model", "provider").get(id="a1")
    assert (a1.model.slug, a1.provider.name, a1.cost_source) == (
        "openai/gpt-4o-mini", "OpenAI", Generation.CostSource.CATALOG)  # priced at the catalog's endpoint
    # the failed attempt at `azure` counts against the catalog's Azure
    azure = EndpointDay.objects.get(model__slug="openai/gpt-4o-mini", provider__name="Azure")
    assert (azure.requests, azure.attempts, azure.failed_attempts) == (0, 1, 1)
    a2 = Generation.objects.select_related("model", "provider").get(id="a2")
    assert (a2.model.slug, a2.model.listed, a2.provider.name) == ("acme-7b", False, "my-vllm")
    assert set(Provider.objects.values_list("name", flat=True)) - catalog == {"my-vllm"}  # no `openai` provider

    staff = Client()
    staff.force_login(UserFactory(username="ops", is_staff=True))
    page = staff.get("/ops/unpriced/")
    assert [(r.model_slug, r.model_new, r.provider_name, r.provider_new, r.requests) for r in page.context["new_names"]] \
        == [("acme-7b", True, "my-vllm", True, 1)]
    assert 'data-model="acme-7b" data-provider="my-vllm"' in page.content.decode()


def test_generic_csv_names_are_resolved_too(tmp_path, catalog):
    path = tmp_path / "generic.csv"
    path.write_text("id,created_at,account,model,provider_name,tokens_prompt,tokens_completion,total_cost\n"
                    f"c1,{at(D1, 9)},acct,claude-sonnet-4-5,anthropic,10,5,0.001\n"
                    f"c2,{at(D1, 9)},acct,gemini/gemini-2.5-flash,gemini,10,5,0.001\n")
    run_batch(path)
    assert dict(Generation.objects.values_list("id", "model__slug")) == {
        "c1": "anthropic/claude-sonnet-4.5", "c2": "google/gemini-2.5-flash"}
    assert dict(Generation.objects.values_list("id", "provider__name")) == {"c1": "Anthropic", "c2": "Google Vertex"}
    assert set(Provider.objects.values_list("name", flat=True)) == catalog
    assert not Model.objects.filter(from_catalog=False).exists()


def _litellm_rows(n: int, offset: int) -> list[str]:
    return [json.dumps({
        "request_id": f"r{offset + i}", "startTime": f"{D1.isoformat()}T09:00:00.1", "model": "gpt-4o",
        "model_group": ["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash"][i % 3],
        "custom_llm_provider": ["openai", "anthropic", "gemini"][i % 3], "spend": 0.0011564000000000001,
        "prompt_tokens": 10, "completion_tokens": 5, "team_id": f"team-{offset + i}", "api_key": f"hash-{offset + i}",
        "metadata": {"user_api_key_alias": f"key {offset + i}"}, "status": "success"}) for i in range(n)]


def test_a_chunk_costs_the_same_queries_at_any_number_of_accounts_and_key_names(tmp_path, catalog):
    run_batch(write_jsonl(tmp_path / "warm.jsonl", _litellm_rows(3, 0)))  # the process caches loaded
    counts = []
    for n, offset in ((6, 100), (300, 1000)):
        with CaptureQueriesContext(connection) as queries:
            run_batch(write_jsonl(tmp_path / f"n{n}.jsonl", _litellm_rows(n, offset)))
        # SQLite only: bulk_create splits registrations by its limit of variables per statement
        counts.append(sum(1 for q in queries.captured_queries if not q["sql"].startswith("INSERT OR IGNORE")))
    assert counts[0] == counts[1], "\n".join(q["sql"][:150] for q in queries.captured_queries)
    assert ApiKey.objects.get(external_id="hash-1299").name == "key 1299"
    assert set(Provider.objects.values_list("name", flat=True)) == catalog


def test_a_key_renamed_at_the_gateway_is_renamed_here(tmp_path, catalog):
    rows = _litellm_rows(1, 0)
    run_batch(write_jsonl(tmp_path / "a.jsonl", rows))
    renamed = json.loads(rows[0]) | {"request_id": "r-next", "metadata": {"user_api_key_alias": "prod key"}}
    run_batch(write_jsonl(tmp_path / "b.jsonl", [renamed]))
    assert list(ApiKey.objects.values_list("external_id", "name")) == [("hash-0", "prod key")]
