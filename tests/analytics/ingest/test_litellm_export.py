"""A LiteLLM spend-log export made by LiteLLM itself (scripts/litellm_fixture.py), ingested as CSV and as JSON Lines.

Every expectation below was checked by hand against the rows in tests/analytics/ingest/data/:
latency = completionStartTime - startTime; no generation time where completionStartTime = endTime
(not streamed, or failed); spend rounded half-even to 1e-10 USD; the account is the organization,
else the team, else the key's owner; the end user is `end_user` only; LiteLLM's `User-Agent: …`
tags dropped; the app from `metadata.spend_logs_metadata`; names resolved to the catalog's.
"""
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db.models import Sum

from analytics.ingest.formats import parse_lines
from analytics.models import AccountDay, EndpointDay, Generation
from core.money import UNITS_PER_USD
from marketplace import services
from marketplace.models import Provider

from ..conftest import run_batch

DATA = Path(__file__).parent / "data"
FILES = ["litellm_spend_logs.csv", "litellm_spend_logs.jsonl"]
K_CI = "88dc28d0f0a94e2b5c3d6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c"
K_BOT = "5f0e1d2c3b4a59687766554433221100ffeeddccbbaa99887766554433221100"
K_LAB = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
K_NB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
SEARCH, HELP, LAB, NOTEBOOK = ("https://search.acme.example", "https://help.acme.example", "https://lab.example",
                               "https://notebook.example")


def _t(text: str) -> datetime:
    return datetime.fromisoformat(f"2026-12-03T{text}").replace(tzinfo=UTC)


# id, created_at, account, key, key name, model as written, provider as written, catalog model,
# catalog provider, prompt, completion, cost, latency, generation time, status, end user, session, tags,
# origin, app name
ROWS = [
    ("chatcmpl-0a196e31-a05e-4f37-a73b-b348c5ec68d6", "09:00:00.104", "org-acme", K_CI, "ci-pipeline",
     "gpt-4o", "openai", "openai/gpt-4o", "OpenAI", 10, 20, "0.0002250000", 1880, None, 200,
     "cust-1", "sess-a", ",prod,", SEARCH, None),
    ("chatcmpl-09492814-3cf1-4edf-93d2-8e8ae7d501ff", "09:07:03.114", "org-acme", K_CI, "ci-pipeline",
     "gpt-4o", "openai", "openai/gpt-4o", "OpenAI", 20, 15, "0.0002", 405, 1610, 200,
     "cust-1", "sess-a", ",prod,", SEARCH, None),
    ("chatcmpl-192b05fe-9178-4393-a4a5-f39b6f5e2f20", "09:14:06.124", "org-acme", K_BOT, "support-bot",
     "openai/gpt-4o-mini", "openai", "openai/gpt-4o-mini", "OpenAI", 10, 20, "0.0000135", 2150, None, 200,
     "cust-2", "abbb193f-fce7-4369-a370-01a20e904c44", ",support,tier-1,", HELP, "Acme Help"),
    ("chatcmpl-8d9aa99c-9b4b-4de1-a3dd-77c3eeea149c", "09:21:09.134", "org-acme", K_BOT, "support-bot",
     "claude-sonnet-4-5", "anthropic", "anthropic/claude-sonnet-4.5", "Anthropic", 21, 14, "0.000273", 455, 1830,
     200, None, "sess-b", "", "Desk", "Desk"),
    ("chatcmpl-7aae8d78-f5e6-4f24-b117-ada0599da6e0", "09:28:12.144", "team-lab", K_LAB, None,
     "anthropic/claude-haiku-4-5-20251001", "anthropic", "anthropic/claude-haiku-4.5", "Anthropic", 10, 20,
     "0.00011", 2420, None, 200, "cust-3", "sess-c", ",batch,", None, None),
    ("chatcmpl-7b72e2db-79ed-4066-be11-eeb7914b25dc", "09:35:15.154", "team-lab", K_LAB, None,
     "gemini-2.5-flash", "gemini", "google/gemini-2.5-flash", "Google Vertex", 20, 15, "0.0000435", 505, 2050,
     200, "cust-3", "sess-c", ",batch,", LAB, None),
    ("chatcmpl-0dd11640-3fb3-41b7-9d54-19345015ef5c", "09:42:18.164", "user-di", K_NB, "notebook",
     "deepseek-chat", "deepseek", "deepseek/deepseek-chat", "DeepSeek", 10, 20, "0.0000112", 2690, None, 200,
     None, "b83c472a-338e-4ccd-9143-a5dbf5117d10", "", None, None),
    # genai-prices knows mistral-small-latest, the catalog has no row of it: kept as written, for staff
    ("chatcmpl-d305a97d-5038-4aee-b6a7-3521e2560328", "09:49:21.174", "user-di", K_NB, "notebook",
     "mistral-small-latest", "mistral", "mistral-small-latest", "Mistral", 10, 20, "0.0000135", 2825, None, 200,
     "cust-4", "37256ac4-4a49-473c-9102-8d7d7db33735", ",eval,", None, None),
    ("chatcmpl-5f04ce24-b452-46ff-a7e8-bea433904722", "09:56:24.184", "org-acme", K_CI, "ci-pipeline",
     "openai/gpt-oss-120b", "groq", "openai/gpt-oss-120b", "Groq", 20, 15, "0.000012", 580, 2380, 200,
     "cust-1", "sess-a", ",prod,", SEARCH, None),
    ("a7abb6f1-baa4-4aa8-80fa-a02a13d125d0", "10:03:27.194", "org-acme", K_CI, "ci-pipeline",
     "gpt-4o", "openai", "openai/gpt-4o", "OpenAI", 0, 0, "0", 209, None, 500,
     "cust-5", "sess-d", ",prod,", SEARCH, None),
    ("3dbbda84-d63d-4f75-bf1f-69b45d64889f", "10:10:30.204", "org-acme", K_BOT, "support-bot",
     "claude-sonnet-4-5", "anthropic", "anthropic/claude-sonnet-4.5", "Anthropic", 0, 0, "0", 210, None, 500,
     None, "c4e12b9a-3ec3-4e62-802c-561696254ccb", ",support,", None, None),
    ("chatcmpl-a6b2b1af-80fe-4673-8ce9-d7fc94e2e144", "10:17:33.214", "team-lab", K_LAB, None,
     "gemini-2.5-flash", "gemini", "google/gemini-2.5-flash", "Google Vertex", 20, 15, "0.0000435", 655, 2710,
     200, "cust-3", "sess-c", "", None, None),
    ("chatcmpl-a813cf60-d2a5-44b0-8aa3-022a60b536b2", "10:24:36.224", "user-di", K_NB, "notebook",
     "gpt-4o", "azure", "openai/gpt-4o", "Azure", 10, 20, "0.0002250000", 3500, None, 200,
     "cust-4", "039c3d37-d7f6-4b80-904f-1d20022a7925", ",eval,", NOTEBOOK, None),
]

BY_ACCOUNT = {"org-acme": "0.0007235", "team-lab": "0.000197", "user-di": "0.0002497"}
BY_MODEL = {"openai/gpt-4o": "0.00065", "openai/gpt-4o-mini": "0.0000135", "anthropic/claude-sonnet-4.5": "0.000273",
            "anthropic/claude-haiku-4.5": "0.00011", "google/gemini-2.5-flash": "0.000087",
            "deepseek/deepseek-chat": "0.0000112", "mistral-small-latest": "0.0000135",
            "openai/gpt-oss-120b": "0.000012"}
BY_PROVIDER = {"OpenAI": "0.0004385", "Anthropic": "0.000383", "Google Vertex": "0.000087", "DeepSeek": "0.0000112",
               "Mistral": "0.0000135", "Groq": "0.000012", "Azure": "0.000225"}


def _usd(units: int) -> Decimal:
    return Decimal(units) / UNITS_PER_USD


def _lines(path: Path):
    with path.open("rb") as handle:
        data = handle.read().split(b"\n")
    return data[0], enumerate(data[1:] if path.suffix == ".csv" else data, start=2 if path.suffix == ".csv" else 1)


@pytest.mark.parametrize("name", FILES)
def test_every_field_of_every_row_as_parsed(name):
    header, lines = _lines(DATA / name)
    records = list(parse_lines("litellm", lines, header=header if name.endswith(".csv") else None))
    assert len(records) == len(ROWS)
    for record, row in zip(records, ROWS, strict=True):
        (rid, start, account, key, key_name, model, provider, _, _, prompt, completion, cost, latency, gen_time,
         status, end_user, session, tags, origin, app_name) = row
        assert (record.id, record.created_at, record.account, record.api_key, record.api_key_name) == (
            rid, _t(start), account, key, key_name)
        assert (record.model, record.provider_name, record.tokens_prompt, record.tokens_completion) == (
            model, provider, prompt, completion)
        assert (record.total_cost, record.latency, record.generation_time, record.status) == (
            Decimal(cost), latency, gen_time, status)
        assert (record.end_user, record.session_id, record.tags, record.origin, record.app_name) == (
            end_user, session, tags, origin, app_name)
        assert (record.tokens_reasoning, record.tokens_cached, record.is_byok, record.provider_responses) == (
            0, 0, False, None)


@pytest.mark.django_db
@pytest.mark.parametrize("name", FILES)
def test_the_export_lands_on_the_catalog_with_exact_totals(name, tmp_path):
    services.catalog_sync()
    providers_before = set(Provider.objects.values_list("name", flat=True))
    path = tmp_path / name
    path.write_bytes((DATA / name).read_bytes())
    batch = run_batch(path)
    assert (batch.format, batch.accepted, batch.rejected, batch.duplicates) == ("litellm", len(ROWS), 0, 0)
    # no provider is made for LiteLLM's ids: each is the catalog's
    assert set(Provider.objects.values_list("name", flat=True)) == providers_before

    generations = {g.id: g for g in Generation.objects.select_related("account", "api_key", "model", "provider", "app")}
    for (rid, start, account, key, key_name, _, _, model, provider, prompt, completion, cost, latency, gen_time,
         status, end_user, session, tags, origin, app_name) in ROWS:
        g = generations[rid]
        assert (g.created_at, g.account.external_id, g.api_key.external_id, g.api_key.name) == (
            _t(start), account, key, key_name or "")
        assert (g.model.slug, g.provider.name, g.tokens_prompt, g.tokens_completion) == (
            model, provider, prompt, completion)
        assert (_usd(g.cost_units), g.cost_source, g.latency, g.generation_time, g.status) == (
            Decimal(cost), Generation.CostSource.GATEWAY, latency, gen_time, status)
        assert (g.end_user, g.session_id, g.tags) == (end_user or "", session, tags)
        # an app without a name shows its host (marketplace.services.apps_register)
        assert (g.app.origin if g.app else None, g.app.name if g.app else None) == (
            origin, app_name or (urlsplit(origin).netloc if origin else None))
    assert all(g.model.from_catalog for g in generations.values() if g.model.slug != "mistral-small-latest")

    def sums(queryset, field: str) -> dict[str, Decimal]:
        return {k: _usd(v) for k, v in queryset.values_list(field).annotate(s=Sum("cost_units")).order_by()}

    expected = ({k: Decimal(v) for k, v in table.items()} for table in (BY_ACCOUNT, BY_MODEL, BY_PROVIDER))
    by_account, by_model, by_provider = expected
    assert sums(Generation.objects, "account__external_id") == by_account
    assert sums(Generation.objects, "model__slug") == by_model
    assert sums(Generation.objects, "provider__name") == by_provider
    assert sum(by_account.values()) == Decimal("0.0011702")
    # the rollups the pages read hold the same totals
    rollup = {k: _usd(v) for k, v in AccountDay.objects.values_list("account__external_id").annotate(
        s=Sum("spend_units")).order_by()}
    assert rollup == by_account
    endpoint = EndpointDay.objects.values_list("model__slug", "provider__name").annotate(s=Sum("spend_units"))
    assert {m: sum(_usd(s) for mm, _, s in endpoint if mm == m) for m in by_model} == by_model
    assert {p: sum(_usd(s) for _, pp, s in endpoint if pp == p) for p in by_provider} == by_provider
