"""generations.csv: order, range bounds, neutralization and names."""
import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection, transaction

from analytics.models import Generation
from analytics.usage import generation_log, log_export, log_histogram
from billing.models import Account
from marketplace.models import Model
from tests.billing.factories import AccountFactory, ApiKeyFactory
from tests.marketplace.factories import AppFactory, AuthorFactory, ModelFactory, ProviderFactory

pytestmark = pytest.mark.django_db

FIRST, LAST = date(2026, 3, 1), date(2026, 3, 2)
START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 3, tzinfo=UTC)  # exclusive: the day after LAST
MICRO = timedelta(microseconds=1)


@pytest.fixture
def catalog():
    author = AuthorFactory(slug="lab", name="Lab")
    models = [ModelFactory(slug=slug, author=author, route_name=slug, name=slug)
              for slug in ("lab/plain", "lab/gone", "=lab/evil")]
    models[1].delete()  # a gap in the ids: names are found by id, not by position
    return {
        "account": AccountFactory(external_id="acct"),
        "other": AccountFactory(external_id="other"),
        "model": models[0], "evil_model": models[2],
        "provider": ProviderFactory(slug="prov", name="Prov"),
        "evil_provider": ProviderFactory(slug="@prov", name="@Prov"),
        "app": AppFactory(slug="app", origin="-https://evil.example/", name="+evil app"),
    }


def _generation(catalog, gid: str, created_at: datetime, **fields) -> Generation:
    values = {"account": catalog["account"], "model": catalog["model"], "provider": catalog["provider"],
              "cost_source": Generation.CostSource.GATEWAY}
    values.update(fields)
    return Generation(id=gid, created_at=created_at, **values)


def _export(account: Account) -> list[dict]:
    body = b"".join(log_export.generations_csv(account_id=account.pk, first=FIRST, last=LAST)).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_range_bounds_and_exact_time_ties(catalog):
    tie = START + timedelta(hours=5, microseconds=250)
    Generation.objects.bulk_create([
        _generation(catalog, "before", START - MICRO),
        _generation(catalog, "first", START),
        _generation(catalog, "tie-b", tie),
        _generation(catalog, "tie-c", tie),
        _generation(catalog, "tie-a", tie),
        _generation(catalog, "last", END - MICRO),
        _generation(catalog, "after", END),
        _generation(catalog, "theirs", tie, account=catalog["other"]),
    ])
    rows = _export(catalog["account"])
    # Oldest first; a tie on created_at is broken by id, ascending.
    assert [r["id"] for r in rows] == ["first", "tie-a", "tie-b", "tie-c", "last"]
    assert [r["created_at"] for r in rows] == [
        "2026-03-01T00:00:00.000000Z", "2026-03-01T05:00:00.000250Z", "2026-03-01T05:00:00.000250Z",
        "2026-03-01T05:00:00.000250Z", "2026-03-02T23:59:59.999999Z"]


def test_formula_like_text_is_neutralized_in_every_text_column(catalog):
    key = ApiKeyFactory(account=catalog["account"], external_id="=key")
    Generation.objects.bulk_create([
        _generation(catalog, "=1+2", START, model=catalog["evil_model"], provider=catalog["evil_provider"],
                    app=catalog["app"], api_key=key, finish_reason="\tstop"),
        _generation(catalog, "-42", START + MICRO, finish_reason="-1.5e3"),
        _generation(catalog, "@x", START + 2 * MICRO, finish_reason="+"),
    ])
    evil, number, plain = _export(catalog["account"])
    assert (evil["id"], evil["model"], evil["provider"]) == ("'=1+2", "'=lab/evil", "'@prov")
    assert (evil["app"], evil["app_origin"], evil["api_key"]) == ("'+evil app", "'-https://evil.example/", "'=key")
    assert evil["finish_reason"] == "'\tstop"
    # Numbers are left alone: only text can carry a formula.
    assert (number["id"], number["finish_reason"]) == ("-42", "-1.5e3")
    assert (plain["id"], plain["finish_reason"], plain["model"], plain["provider"]) == ("'@x", "'+", "lab/plain", "prov")


def test_every_field_as_text(catalog):
    key = ApiKeyFactory(account=catalog["account"], external_id="key-1")
    Generation.objects.bulk_create([
        _generation(catalog, "full", START, app=catalog["app"], api_key=key, tokens_prompt=1000, tokens_completion=500,
                    tokens_reasoning=100, tokens_cached=200, cost_units=12_345_678_901,
                    cost_source=Generation.CostSource.CATALOG,
                    latency=400, generation_time=1200, status=200, finish_reason="stop", streamed=True,
                    cancelled=False, num_media_prompt=1, num_media_completion=0, num_search_results=3,
                    batch_id=7),
        _generation(catalog, "sparse", START + MICRO, is_byok=True, status=500),
    ])
    full, sparse = _export(catalog["account"])
    assert full == {
        "id": "full", "created_at": "2026-03-01T00:00:00.000000Z", "model": "lab/plain", "provider": "prov",
        "app": "'+evil app", "app_origin": "'-https://evil.example/", "api_key": "key-1", "end_user": "", "session_id": "", "tags": "",
            "tokens_prompt": "1000",
        "tokens_completion": "500", "tokens_reasoning": "100", "tokens_cached": "200",
        "total_cost_usd": "1.2345678901", "cost_priced_by_tokengrid": "true", "is_byok": "false", "latency_ms": "400",
        "generation_time_ms": "1200", "status": "200", "finish_reason": "stop", "streamed": "true",
        "cancelled": "false", "num_media_prompt": "1", "num_media_completion": "0", "num_search_results": "3",
        "provider_responses": "", "batch_id": "7"}
    # No app, key, latency or stream flags: empty cells, not "None" or "false".
    assert (sparse["app"], sparse["app_origin"], sparse["api_key"], sparse["latency_ms"]) == ("", "", "", "")
    assert (sparse["streamed"], sparse["cancelled"], sparse["is_byok"]) == ("", "", "true")
    assert sparse["total_cost_usd"] == "0.0000000000"


def test_a_generation_whose_catalog_row_is_gone_is_still_exported(catalog):
    gone = ModelFactory(slug="lab/retired", author=catalog["model"].author, route_name="r", name="r")
    Generation.objects.bulk_create([_generation(catalog, "orphan", START, model=gone)])
    Model.objects.filter(pk=gone.pk).delete()
    [row] = _export(catalog["account"])
    assert (row["id"], row["model"], row["provider"]) == ("orphan", "", "prov")


def test_a_key_of_another_account_is_never_named(catalog):
    mine = ApiKeyFactory(account=catalog["account"], external_id="key_mine")
    theirs = ApiKeyFactory(account=catalog["other"], external_id="key_theirs")
    Generation.objects.bulk_create([_generation(catalog, "a", START, api_key=mine),
                                    _generation(catalog, "b", START + MICRO, api_key=theirs)])
    assert [(r["id"], r["api_key"]) for r in _export(catalog["account"])] == [("a", "key_mine"), ("b", "")]


def test_postgres_export_reads_the_account_index_in_order_without_a_sort(catalog):
    Generation.objects.bulk_create([_generation(catalog, f"g{i:04d}", START + timedelta(seconds=i)) for i in range(500)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE analytics_generation")
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in log_export.PG_EXPORT_SETTINGS:
            cursor.execute(setting)
        cursor.execute("EXPLAIN " + log_export.pg_export_select(),
                       log_export.pg_export_params(catalog["account"].pk, START, END))
        plan = "\n".join(line for (line,) in cursor.fetchall())
    # The export's own node, before the InitPlans that build the name arrays once (from PostgreSQL 16
    # on, an ordered aggregate sorts its input there in a Sort node of its own: not a sort of the rows).
    export = plan.split("InitPlan")[0]
    assert "Index Scan Backward using" in export, plan
    assert not re.search(r"(^|->)\s*Sort\b", export, re.MULTILINE), plan
    assert "Seq Scan on analytics_generation" not in plan, plan


def test_postgres_histogram_reads_only_the_accounts_range_by_its_index(catalog):
    Generation.objects.bulk_create(
        [_generation(catalog, f"h{i:04d}", START + timedelta(seconds=i)) for i in range(300)]
        # Another account with most of the range's rows: at 3,000 of them the bitmap index scan won by
        # only 1.45x, and a seq scan was chosen once after a whole suite had bloated the partition's index.
        + [_generation(catalog, f"o{i:05d}", START + timedelta(seconds=i), account=catalog["other"])
           for i in range(20_000)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE analytics_generation")
    log_filter = generation_log.LogFilter(start=START, end=END)
    rows = log_histogram.histogram_counts(account_id=catalog["account"].pk, log_filter=log_filter, unit="day")
    plan = rows.explain()
    assert "Seq Scan" not in plan, plan
    assert "Index" in plan, plan
    assert sorted(n for _, n in rows) == [300]
