"""Ingestion end to end in-process: counts, rollups, debits, duplicates, chunking, pricing."""
import gzip
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db.models import Exists, F, OuterRef

from analytics import histograms
from analytics.models import (
    AccountDay,
    AccountHour,
    AppDay,
    EndpointHistogram,
    EndpointHour,
    Generation,
    IngestBatch,
    Reject,
)
from billing.models import Account, ApiKey, LedgerEntry
from marketplace.models import App, Model, Provider
from tests.analytics.conftest import record, run_batch, write_jsonl
from tests.marketplace.factories import EndpointFactory

pytestmark = pytest.mark.django_db

H21 = datetime(2026, 2, 24, 21, tzinfo=UTC)
H22 = datetime(2026, 2, 24, 22, tzinfo=UTC)
LLAMA = "meta-llama/llama-4-scout"
GPT = "openai/gpt-4o"


def _sample_records() -> list:
    return [
        record(id="gen-1"),
        record(id="gen-2", created_at="2026-02-24T21:45:00Z", provider_name="Groq", tokens_prompt=200,
               tokens_completion=100, native_tokens_reasoning=20, total_cost=0.002, latency=300,
               provider_responses=[{"provider_name": "DeepInfra", "status": 502, "latency": 100},
                                   {"provider_name": "Groq", "status": 200, "latency": 300}]),
        record(id="gen-3", created_at="2026-02-24T22:05:00Z", account="acct_b", api_key="key_9", model=GPT,
               provider_name="OpenAI", tokens_prompt=1000, tokens_completion=10, total_cost=0.0125, is_byok=True,
               origin="https://app.example.com", app_name="Example", app_categories="chat"),
        record(id="gen-1", tokens_prompt=999999),  # a duplicate within the file: not applied again
        '{"id": "gen-broken", "model": ',
        record(id="gen-4", created_at="2026-02-24T21:50:00Z", status=500, tokens_prompt=0, tokens_completion=0,
               total_cost=0, latency=..., generation_time=...),
        record(id="gen-5", model=...),
    ]


def _endpoint_hour(hour, model_slug, provider_name) -> EndpointHour:
    return EndpointHour.objects.get(hour=hour, model__slug=model_slug, provider__name=provider_name)


def test_a_file_becomes_generations_rollups_rejects_and_debits(tmp_path):
    batch = run_batch(write_jsonl(tmp_path / "sample.jsonl", _sample_records()))

    assert (batch.status, batch.format) == (IngestBatch.Status.DONE, "openrouter")
    assert (batch.lines, batch.accepted, batch.duplicates, batch.rejected) == (7, 4, 1, 2)
    assert sorted(Generation.objects.values_list("id", flat=True)) == ["gen-1", "gen-2", "gen-3", "gen-4"]
    assert Generation.objects.get(id="gen-1").tokens_prompt == 100  # the first gen-1, not the duplicate
    assert list(Reject.objects.order_by("line").values_list("line", "reason")) == [
        (5, "invalid_json"), (7, "missing:model")]
    assert Reject.objects.get(line=5).raw == '{"id": "gen-broken", "model": '

    deepinfra = _endpoint_hour(H21, LLAMA, "DeepInfra")
    assert (deepinfra.requests, deepinfra.failed) == (2, 1)
    assert (deepinfra.tokens_prompt, deepinfra.tokens_completion) == (100, 50)
    assert deepinfra.spend_units == 10_000_000  # $0.001
    # gen-1 and gen-4 were attempts here, and gen-2 failed here before falling back to Groq.
    assert (deepinfra.attempts, deepinfra.failed_attempts) == (3, 2)
    assert (deepinfra.latency_sum, deepinfra.latency_count) == (400, 1)

    groq = _endpoint_hour(H21, LLAMA, "Groq")
    assert (groq.requests, groq.tokens_prompt, groq.tokens_completion, groq.tokens_reasoning) == (1, 200, 100, 20)
    assert (groq.spend_units, groq.attempts, groq.failed_attempts) == (20_000_000, 1, 0)

    openai = _endpoint_hour(H22, GPT, "OpenAI")
    assert (openai.requests, openai.byok_tokens, openai.spend_units) == (1, 1010, 0)

    app = App.objects.get(origin="https://app.example.com")
    assert list(app.categories.values_list("slug", flat=True)) == ["chat"]
    app_day = AppDay.objects.get(day=date(2026, 2, 24), app=app)
    assert (app_day.requests, app_day.tokens_prompt, app_day.byok_tokens, app_day.spend_units) == (1, 1000, 1010, 0)

    acct_a, acct_b = Account.objects.get(external_id="acct_a"), Account.objects.get(external_id="acct_b")
    key_1 = ApiKey.objects.get(account=acct_a, external_id="key_1")
    a_rows = AccountHour.objects.filter(account=acct_a).order_by("provider__name")
    assert [(r.provider.name, r.api_key_id, r.app_id, r.requests, r.spend_units) for r in a_rows] == [
        ("DeepInfra", key_1.pk, 0, 2, 10_000_000), ("Groq", key_1.pk, 0, 1, 20_000_000)]
    b_row = AccountHour.objects.get(account=acct_b)
    assert (b_row.hour, b_row.app_id, b_row.byok_tokens, b_row.spend_units) == (H22, app.pk, 1010, 0)

    # Usage debits: acct_a pays $0.003; acct_b's BYOK request costs no credits.
    assert list(LedgerEntry.objects.values_list("account__external_id", "kind", "amount_units")) == [
        ("acct_a", "usage", -30_000_000)]
    acct_a.refresh_from_db()
    assert acct_a.balance == Decimal("-0.003")

    # Latency histograms per day x endpoint: gen-1 (400 ms), gen-2 (300 ms), gen-3 (400 ms); gen-4 failed.
    latency = EndpointHistogram.objects.filter(metric=EndpointHistogram.Metric.LATENCY)
    assert sorted(latency.values_list("model__slug", "provider__name", "bucket", "count")) == sorted([
        (LLAMA, "DeepInfra", histograms.bucket_of(400), 1), (LLAMA, "Groq", histograms.bucket_of(300), 1),
        (GPT, "OpenAI", histograms.bucket_of(400), 1)])
    throughput = EndpointHistogram.objects.filter(metric=EndpointHistogram.Metric.THROUGHPUT)
    assert sum(throughput.values_list("count", flat=True)) == 3  # gen-1 50 tok/s, gen-2 100, gen-3 10

    # Unknown models are registered, unlisted until staff review them.
    assert Model.objects.get(slug=LLAMA).listed is False
    assert Provider.objects.filter(name__in=["DeepInfra", "Groq", "OpenAI"]).count() == 3


def _rollup_totals() -> tuple:
    return (
        sorted(EndpointHour.objects.values_list("hour", "model_id", "provider_id", "requests", "attempts",
                                                "failed_attempts", "tokens_prompt", "spend_units")),
        sorted(AccountHour.objects.values_list("account_id", "hour", "requests", "spend_units", "byok_tokens")),
        sorted(AppDay.objects.values_list("app_id", "requests")),
        sorted(EndpointHistogram.objects.values_list("metric", "bucket", "count")),
        sorted(Account.objects.values_list("external_id", "balance_units")),
        LedgerEntry.objects.count(),
    )


def test_ingesting_the_same_file_again_changes_nothing(tmp_path):
    path = write_jsonl(tmp_path / "sample.jsonl", _sample_records())
    run_batch(path)
    before = _rollup_totals()

    again = run_batch(path)

    assert (again.accepted, again.duplicates, again.rejected) == (0, 5, 2)
    assert _rollup_totals() == before
    assert Generation.objects.count() == 4


def test_a_retried_chunk_is_not_applied_twice(tmp_path):
    from analytics import ingest

    batch = run_batch(write_jsonl(tmp_path / "sample.jsonl", _sample_records()))
    before = _rollup_totals()

    result = ingest.chunk_ingest(batch_id=batch.pk, index=0)

    assert result.skipped
    assert _rollup_totals() == before
    batch.refresh_from_db()
    assert (batch.accepted, batch.chunks_done) == (4, 1)


def test_small_chunks_give_the_same_totals_as_one(tmp_path, settings):
    path = write_jsonl(tmp_path / "sample.jsonl", _sample_records())
    settings.INGEST_CHUNK_LINES = 2
    batch = run_batch(path)

    assert batch.chunks_total == 4
    assert (batch.lines, batch.accepted, batch.duplicates, batch.rejected) == (7, 4, 1, 2)
    assert _endpoint_hour(H21, LLAMA, "DeepInfra").attempts == 3
    assert Account.objects.get(external_id="acct_a").balance_units == -30_000_000
    # One usage debit per chunk x account that had spend: chunk 0 (gen-1, gen-2) only.
    assert LedgerEntry.objects.count() == 1


def test_gzip_files_are_read(tmp_path):
    plain = write_jsonl(tmp_path / "sample.jsonl", _sample_records())
    packed = tmp_path / "sample.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))

    batch = run_batch(packed)

    assert (batch.accepted, batch.duplicates, batch.rejected) == (4, 1, 2)


def test_litellm_csv_keeps_its_header_across_chunks(tmp_path, settings):
    settings.INGEST_CHUNK_LINES = 1
    path = tmp_path / "spend.csv"
    path.write_text(
        "request_id,startTime,endTime,completionStartTime,model,model_group,custom_llm_provider,api_key,spend,"
        "prompt_tokens,completion_tokens,user,team_id,organization_id,status,metadata\n"
        "req-1,2026-03-01T10:00:00Z,2026-03-01T10:00:02Z,2026-03-01T10:00:00.500Z,gpt-4o,openai/gpt-4o,openai,"
        "hash1,0.0025,100,200,alice,team-1,org-1,success,{}\n"
        "req-2,2026-03-01T10:30:00Z,2026-03-01T10:30:01Z,,gpt-4o,,azure,hash2,0.5,10,0,bob,,,failure,\n")

    batch = run_batch(path)

    assert (batch.format, batch.chunks_total, batch.accepted, batch.rejected) == ("litellm", 2, 2, 0)
    first = Generation.objects.select_related("account", "model", "provider").get(id="req-1")
    assert (first.account.external_id, first.model.slug, first.provider.name) == ("org-1", "openai/gpt-4o", "OpenAI")
    assert (first.latency, first.generation_time, first.cost_units) == (500, 1500, 25_000_000)
    second = Generation.objects.select_related("account").get(id="req-2")
    assert (second.account.external_id, second.status) == ("bob", 500)


def test_unpriced_records_are_priced_from_the_endpoint_then_genai_prices(tmp_path):
    EndpointFactory(model__author__slug="acme", model__route_name="rocket-1", model__name="Rocket 1",
                    provider__slug="acme-cloud", provider__name="Acme Cloud", prompt_price=Decimal("0.000003"),
                    completion_price=Decimal("0.000015"))
    path = write_jsonl(tmp_path / "unpriced.jsonl", [
        record(id="p-1", model="acme/rocket-1", provider_name="Acme Cloud", tokens_prompt=1000,
               tokens_completion=100, total_cost=...),
        # Not in the catalog tables: genai-prices knows it ($3 in, $15 out per 1M tokens).
        record(id="p-2", model="anthropic/claude-sonnet-4", provider_name="Anthropic", tokens_prompt=1000,
               tokens_completion=100, total_cost=...),
        record(id="p-3", total_cost=0.5),
    ])

    run_batch(path)

    priced = {g.id: (g.cost_units, g.cost_source) for g in Generation.objects.all()}
    assert priced["p-1"] == (45_000_000, Generation.CostSource.CATALOG)  # 1000 x $0.000003 + 100 x $0.000015 = $0.0045
    assert priced["p-2"] == (45_000_000, Generation.CostSource.CATALOG)
    assert priced["p-3"] == (5_000_000_000, Generation.CostSource.GATEWAY)


def test_zero_completion_insurance_and_where_each_cost_came_from(tmp_path):
    EndpointFactory(model__author__slug="acme", model__route_name="rocket-1", model__name="Rocket 1",
                    provider__slug="acme-cloud", provider__name="Acme Cloud", prompt_price=Decimal("0.000003"),
                    completion_price=Decimal("0.000015"))

    def rocket(gen_id, **fields):
        return record(**{"id": gen_id, "model": "acme/rocket-1", "provider_name": "Acme Cloud",
                         "tokens_prompt": 1000, "total_cost": ..., **fields})

    run_batch(write_jsonl(tmp_path / "insured.jsonl", [
        rocket("i-503", status=503, tokens_completion=0),  # failed, no gateway cost: $0, insured
        rocket("i-500-tokens", status=500, tokens_completion=40),  # failed though it counted tokens: $0
        rocket("i-cancelled", cancelled=True, tokens_completion=0),  # nothing generated: $0
        rocket("i-empty", tokens_completion=0),  # a 200 with zero completion tokens: $0
        rocket("i-cancelled-partial", cancelled=True, tokens_completion=100),  # partial output: billed
        rocket("i-gateway-failed", status=502, tokens_completion=0, total_cost=0.25),  # gateway's cost stands
        record(id="i-unknown", model="nobody/knows-this", provider_name="Nowhere", tokens_completion=10,
               total_cost=...),
    ]))
    source = Generation.CostSource
    got = {g.id: (g.cost_units, g.cost_source) for g in Generation.objects.all()}
    assert got == {
        "i-503": (0, source.INSURANCE), "i-500-tokens": (0, source.INSURANCE),
        "i-cancelled": (0, source.INSURANCE), "i-empty": (0, source.INSURANCE),
        "i-cancelled-partial": (45_000_000, source.CATALOG),  # 1000 x $3 + 100 x $15 per 1M
        "i-gateway-failed": (2_500_000_000, source.GATEWAY),
        "i-unknown": (0, source.UNPRICED),
    }


def test_a_file_with_only_bad_lines_is_done_with_every_line_kept(tmp_path):
    batch = run_batch(write_jsonl(tmp_path / "bad.jsonl", ["{", '{"id": 5}', "[1, 2]"]))

    assert (batch.status, batch.accepted, batch.rejected) == (IngestBatch.Status.DONE, 0, 3)
    assert Reject.objects.count() == 3


def test_an_empty_file_is_done_at_once(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")

    batch = run_batch(path)

    assert (batch.status, batch.lines, batch.chunks_total) == (IngestBatch.Status.DONE, 0, 0)


def test_an_unreadable_file_is_refused_before_queueing(tmp_path):
    from analytics.ingest import IngestError, batch_queue

    with pytest.raises(IngestError, match="cannot read"):
        batch_queue(path=tmp_path / "missing.jsonl", source="missing.jsonl")
    assert not IngestBatch.objects.exists()


def test_every_field_of_a_record_is_kept(tmp_path):
    from .test_ingest_entry import OPENROUTER_EXAMPLE

    path = tmp_path / "one.jsonl"
    path.write_text(OPENROUTER_EXAMPLE + "\n")
    run_batch(path)

    g = Generation.objects.select_related("account", "api_key", "model", "provider", "app").get()
    assert g.id == "gen-1771967973-0hZ8J5kY7qLMOKbPx0u3"
    assert g.created_at == datetime(2026, 2, 24, 21, 19, 33, 705000, tzinfo=UTC)
    assert (g.account.external_id, g.api_key.external_id) == ("acct_7f3a", "key_91c2")
    assert (g.model.slug, g.provider.name) == ("meta-llama/llama-4-scout-17b-16e-instruct", "DeepInfra")
    assert g.app.origin == "https://github.com/wvanderp/Trick-question-bench"
    assert (g.tokens_prompt, g.tokens_completion, g.tokens_reasoning, g.tokens_cached) == (65, 116, 0, 0)
    assert (g.cost_units, g.cost_source, g.is_byok) == (345_200, Generation.CostSource.GATEWAY, False)
    assert (g.latency, g.generation_time, g.status, g.streamed, g.cancelled) == (1016, 2940, 200, True, True)
    assert g.provider_responses == [{"provider_name": "DeepInfra", "status": 200, "latency": 420}]


def test_accounts_naming_the_same_key_id_get_keys_of_their_own(tmp_path, settings):
    """Registration looks keys up by (account, key id) as a set: a key id that several accounts use
    (`key_1`) is a key of each, and no generation or rollup row of one account names another's key."""
    settings.INGEST_CHUNK_LINES = 4  # the second chunk finds the keys the first one registered
    records = [record(id=f"g{i}", account=account, api_key=key, total_cost=0.001 * (i + 1))
               for i, (account, key) in enumerate([("acct_a", "key_1"), ("acct_b", "key_1"), ("acct_c", "key_1"),
                                                   ("acct_a", "key_2"), ("acct_b", "key_1"), ("acct_c", "key_9"),
                                                   ("acct_a", "key_1")])]
    run_batch(write_jsonl(tmp_path / "shared-key-ids.jsonl", records))
    keys = sorted(ApiKey.objects.values_list("account__external_id", "external_id"))
    assert keys == [("acct_a", "key_1"), ("acct_a", "key_2"), ("acct_b", "key_1"), ("acct_c", "key_1"),
                    ("acct_c", "key_9")]
    assert not Generation.objects.exclude(api_key__account_id=F("account_id")).exists()
    own_key = Exists(ApiKey.objects.filter(pk=OuterRef("api_key_id"), account_id=OuterRef("account_id")))
    assert AccountDay.objects.count() == 5
    assert not AccountDay.objects.annotate(own=own_key).filter(own=False).exists()
    key_b = ApiKey.objects.get(account__external_id="acct_b", external_id="key_1")
    assert AccountDay.objects.get(api_key_id=key_b.pk).requests == 2  # g1 and g4
