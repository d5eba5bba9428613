"""The stage row's fields are the staging table's columns, and stage_rows fills each field with its value.

`stage_rows` builds a `StageRow` positionally (the hot loop): a value put in the wrong place would
shift into its neighbour's column silently, so every field is checked here by name, with values
that differ from one another.
"""
from datetime import UTC, datetime, time
from decimal import Decimal

import pytest
from django.db import connection

from analytics import histograms
from analytics.ingest import loader
from analytics.ingest.formats import Record
from analytics.ingest.loader import ATTEMPT_COLUMNS, STAGE_COLUMNS, AttemptRow, StageRow
from analytics.ingest.stage import stage_rows
from analytics.models import Generation
from billing.accounts import accounts_register, api_keys_register
from core.money import UNITS_PER_USD
from marketplace.services import apps_register, models_register, providers_register

from ..conftest import D1

pytestmark = pytest.mark.django_db

CREATED = datetime.combine(D1, time(21, 19, 33, 705000), tzinfo=UTC)
RESPONSES = [{"provider_name": "ProvOne", "status": 200, "latency": 420},
             {"provider_name": "ProvTwo", "status": 502, "latency": 90}]


def _record(**fields) -> Record:
    values = dict(
        line=1, id="gen-named", created_at=CREATED, account="acct_named", api_key="key_named",
        model="lab/named", provider_name="ProvOne", origin="https://named.example/", app_name="Named",
        app_categories=("coding",), tokens_prompt=11, tokens_completion=22, tokens_reasoning=3,
        tokens_cached=4, total_cost=Decimal("0.0123"), is_byok=True, latency=517, generation_time=2000,
        status=200, provider_responses=RESPONSES, finish_reason="stop", streamed=True, cancelled=False,
        num_media_prompt=5, num_media_completion=6, num_search_results=7, end_user="user_named",
        session_id="sess_named", tags=",prod,team-a,")
    values.update(fields)
    return Record(**values)


def _expected_ids():
    account = accounts_register(external_ids=["acct_named"])["acct_named"]
    providers = providers_register(names=["ProvOne", "ProvTwo"])
    return {
        "account_id": account,
        "api_key_id": api_keys_register(keys=[(account, "key_named")])[(account, "key_named")],
        "model_id": models_register(slugs=["lab/named"])["lab/named"],
        "provider_id": providers["ProvOne"],
        "fallback_provider_id": providers["ProvTwo"],
        "app_id": apps_register(apps={"https://named.example/": ("Named", ["coding"])})[
            "https://named.example/"],
    }


def test_the_columns_are_the_row_fields_in_order():
    assert tuple(name for name, _ in STAGE_COLUMNS) == StageRow._fields
    assert tuple(name for name, _ in ATTEMPT_COLUMNS) == AttemptRow._fields
    assert len(StageRow._fields) == 37


def test_a_stage_row_has_each_value_in_its_named_field():
    [row], [attempt] = stage_rows([_record()], batch_id=77)
    ids = _expected_ids()
    assert type(row) is StageRow
    assert row._asdict() == {
        "id": "gen-named", "created_at": CREATED,
        "hour": CREATED.replace(minute=0, second=0, microsecond=0), "day": D1,
        "account_id": ids["account_id"], "api_key_id": ids["api_key_id"], "model_id": ids["model_id"],
        "provider_id": ids["provider_id"], "app_id": ids["app_id"], "batch_id": 77,
        "tokens_prompt": 11, "tokens_completion": 22, "tokens_reasoning": 3, "tokens_cached": 4,
        "cost_units": int(Decimal("0.0123") * UNITS_PER_USD), "is_byok": True,
        "latency": 517, "generation_time": 2000, "status": 200, "finish_reason": "stop",
        "streamed": True, "cancelled": False, "num_media_prompt": 5, "num_media_completion": 6,
        "num_search_results": 7, "provider_responses": RESPONSES,
        "failed": 0, "own_attempts": 1, "own_failed": 0,
        "latency_bucket": histograms.bucket_of(517),
        "throughput_bucket": histograms.bucket_of(22 * 1000 / 2000),
        "end_user": "user_named", "session_id": "sess_named", "tags": ",prod,team-a,", "own_rate_limited": 0,
        "cost_source": 1, "price_id": None,
    }
    assert attempt == AttemptRow(gen_id="gen-named", hour=row.hour, day=D1, model_id=ids["model_id"],
                                 provider_id=ids["fallback_provider_id"], failed=1, rate_limited=0)


def test_the_optional_fields_default_by_name():
    record = _record(api_key=None, origin=None, app_name=None, app_categories=(), finish_reason=None,
                     status=503, provider_responses=None, end_user=None, session_id=None, tags="")
    [row], attempts = stage_rows([record], batch_id=1)
    assert attempts == []
    assert (row.api_key_id, row.app_id, row.finish_reason) == (0, 0, "")
    assert (row.end_user, row.session_id, row.tags) == ("", "", "")
    assert (row.status, row.failed, row.own_attempts, row.own_failed) == (503, 1, 1, 1)
    assert (row.latency_bucket, row.throughput_bucket) == (None, None)


def test_the_staging_table_and_the_generation_take_each_field_by_name():
    """COPY fills the staging columns in the row's order."""
    stage, extra = stage_rows([_record()], batch_id=77)
    assert loader.apply(stage=stage, extra_attempts=extra).inserted == 1
    with connection.cursor() as cursor:  # the temporary tables keep this transaction's rows
        cursor.execute("SELECT * FROM ingest_stage")
        assert tuple(column[0] for column in cursor.description) == StageRow._fields
        staged = dict(zip(StageRow._fields, cursor.fetchone(), strict=True))
        cursor.execute("SELECT * FROM ingest_attempts")
        assert tuple(column[0] for column in cursor.description) == AttemptRow._fields
        [(gen_id, *_, provider_id, failed, rate_limited)] = cursor.fetchall()
    ids = _expected_ids()
    for name in ("account_id", "api_key_id", "model_id", "provider_id", "app_id"):
        assert staged[name] == ids[name], name
    expected = {"batch_id": 77, "tokens_prompt": 11, "tokens_completion": 22, "tokens_reasoning": 3,
                "tokens_cached": 4, "latency": 517, "generation_time": 2000, "status": 200,
                "num_media_prompt": 5, "num_media_completion": 6, "num_search_results": 7,
                "own_attempts": 1, "own_failed": 0}
    assert {name: staged[name] for name in expected} == expected
    assert (gen_id, provider_id, failed, rate_limited) == ("gen-named", ids["fallback_provider_id"], 1, 0)
    generation = Generation.objects.get(pk="gen-named")
    assert (generation.created_at, generation.account_id, generation.api_key_id, generation.model_id,
            generation.provider_id, generation.app_id, generation.batch_id) == (
        CREATED, ids["account_id"], ids["api_key_id"], ids["model_id"], ids["provider_id"], ids["app_id"],
        77)
    assert (generation.tokens_prompt, generation.tokens_completion, generation.tokens_reasoning,
            generation.tokens_cached, generation.cost_units, generation.cost_source, generation.is_byok) == (
        11, 22, 3, 4, int(Decimal("0.0123") * UNITS_PER_USD), Generation.CostSource.GATEWAY, True)
    assert (generation.latency, generation.generation_time, generation.status, generation.finish_reason,
            generation.streamed, generation.cancelled, generation.num_media_prompt,
            generation.num_media_completion, generation.num_search_results,
            generation.provider_responses) == (517, 2000, 200, "stop", True, False, 5, 6, 7, RESPONSES)
    assert (generation.end_user, generation.session_id, generation.tags) == ("user_named", "sess_named",
                                                                             ",prod,team-a,")
