"""The process-local id cache of registration (core.id_cache, used by analytics.ingest.stage): hits cost no
query, and a name deleted, merged, renamed or flushed by another worker is never staged with its old id.

Real commits (transaction=True): the cache only keeps committed registrations, and "another worker" is a
second connection to the same database that commits while this process holds its cached ids.
"""
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from analytics import ingest
from analytics.ingest import chunk as chunk_module
from analytics.ingest import stage
from analytics.ingest.formats import Record
from analytics.models import Generation, IngestChunk
from billing.models import Account, ApiKey
from core import id_cache
from core.models import RegistryVersion
from core.retry import TRANSIENT
from marketplace.models import App, Model, Provider
from tests.analytics.conftest import record, write_jsonl

pytestmark = pytest.mark.django_db(transaction=True)

CREATED = datetime(2026, 12, 15, 9, 30, tzinfo=UTC)
REGISTERED = ("billing_account", "billing_apikey", "marketplace_model", "marketplace_provider", "marketplace_app")


@pytest.fixture(autouse=True)
def _fresh_caches():
    id_cache.registry_forget()
    yield
    id_cache.registry_forget()


def _record(n: int = 1, **fields) -> Record:
    values = dict(line=n, id=f"gen-{n}", created_at=CREATED, account="acme", api_key="k1", api_key_name="prod",
                  model="lab/m1", provider_name="ProvOne", origin="https://one.example/", app_name="One",
                  app_categories=("coding",), tokens_prompt=10, tokens_completion=5, tokens_reasoning=0,
                  tokens_cached=0, total_cost=Decimal("0.01"), is_byok=False, latency=100, generation_time=500,
                  status=200, provider_responses=None, finish_reason="stop", streamed=False, cancelled=False,
                  num_media_prompt=None, num_media_completion=None, num_search_results=None, end_user=None,
                  session_id=None, tags="")
    values.update(fields)
    return Record(**values)


def _staged(*records: Record):
    rows, _ = stage.stage_rows(list(records), batch_id=1)
    return rows


def _other_worker(sql: str, params=()) -> None:
    """Run `sql` on a connection of its own and commit it, as another worker process would."""
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute(sql, params)


def _registry_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if any(table in q["sql"] for table in REGISTERED)]


def test_names_seen_before_cost_no_query_and_only_the_misses_go_to_the_database():
    first = _staged(_record())[0]
    with CaptureQueriesContext(connection) as queries:
        again = _staged(_record(2))[0]
    assert _registry_queries(queries) == []
    assert (again.account_id, again.api_key_id, again.model_id, again.provider_id, again.app_id) == (
        first.account_id, first.api_key_id, first.model_id, first.provider_id, first.app_id)
    # One new account among known ones: its account and key are looked up (one statement each, then the
    # insert and the second look-up), the known ones are not.
    with CaptureQueriesContext(connection) as queries:
        rows = _staged(_record(3), _record(4, account="globex"))
    sent = _registry_queries(queries)
    assert all("acme" not in str(q) for q in sent)
    assert len([q for q in sent if "billing_account" in q]) == 3  # select, insert, select: the miss only
    assert {r.account_id for r in rows} == set(Account.objects.filter(
        external_id__in=["acme", "globex"]).values_list("pk", flat=True))


def test_an_account_deleted_by_another_worker_is_registered_again_not_staged_with_its_old_id():
    old = _staged(_record())[0]
    _other_worker("DELETE FROM billing_apikey WHERE account_id = %s", [old.account_id])
    _other_worker("DELETE FROM billing_account WHERE id = %s", [old.account_id])
    row = _staged(_record(2))[0]
    account = Account.objects.get(external_id="acme")
    assert row.account_id == account.pk != old.account_id
    assert row.api_key_id == ApiKey.objects.get(account=account, external_id="k1").pk != old.api_key_id


@pytest.mark.parametrize(("table", "column", "value"), [
    ("marketplace_model", "slug", "lab/renamed"),
    ("marketplace_provider", "name", "ProvRenamed"),
    ("marketplace_app", "origin", "https://renamed.example/"),
    ("billing_account", "external_id", "acme-renamed"),
    ("billing_apikey", "external_id", "k1-renamed"),
])
def test_a_name_renamed_by_another_worker_gets_its_own_row(table, column, value):
    old = _staged(_record())[0]
    _other_worker(f"UPDATE {table} SET {column} = %s", [value])  # noqa: S608 - the test's own names
    row = _staged(_record(2))[0]
    field, fresh = {"marketplace_model": ("model_id", lambda: Model.objects.get(slug="lab/m1")),
                    "marketplace_provider": ("provider_id", lambda: Provider.objects.get(name="ProvOne")),
                    "marketplace_app": ("app_id", lambda: App.objects.get(origin="https://one.example/")),
                    "billing_account": ("account_id", lambda: Account.objects.get(external_id="acme")),
                    "billing_apikey": ("api_key_id", lambda: ApiKey.objects.get(external_id="k1"))}[table]
    assert getattr(row, field) == fresh().pk != getattr(old, field)


def test_a_model_merged_into_another_by_the_catalog_merge_is_not_staged_with_the_deleted_id():
    """analytics.catalog_merge moves a duplicate's rows onto the catalog's model and deletes it."""
    old = _staged(_record(model="lab/dup"))[0]
    keep = Model.objects.create(slug="lab/keep", author_id=Model.objects.get(pk=old.model_id).author_id,
                                route_name="keep", name="keep")
    _other_worker("UPDATE analytics_generation SET model_id = %s WHERE model_id = %s", [keep.pk, old.model_id])
    _other_worker("DELETE FROM marketplace_model WHERE id = %s", [old.model_id])
    row = _staged(_record(2, model="lab/dup"))[0]
    assert row.model_id == Model.objects.get(slug="lab/dup").pk != old.model_id


def test_a_flushed_database_starts_a_new_version():
    old = _staged(_record())[0]
    _other_worker("TRUNCATE billing_account, billing_apikey, core_registryversion CASCADE")
    row = _staged(_record(2))[0]
    assert row.account_id == Account.objects.get(external_id="acme").pk != old.account_id


def test_a_deletion_committed_between_registering_and_applying_makes_the_chunk_try_again(tmp_path, monkeypatch):
    """The chunk's transaction confirms the version it registered under: a deletion that committed in
    between fails the attempt (retried by the task), and the next attempt stages the new id."""
    path = write_jsonl(tmp_path / "one.jsonl", [record(id="g1", account="acme")])
    real = stage.stage_rows
    deleted = []

    def stage_then_delete(records, batch_id):
        rows, attempts = real(records, batch_id)
        if not deleted:  # another worker deletes the account after this one registered it
            deleted.append(rows[0].account_id)
            _other_worker("DELETE FROM billing_apikey WHERE account_id = %s", [rows[0].account_id])
            _other_worker("DELETE FROM billing_account WHERE id = %s", [rows[0].account_id])
        return rows, attempts

    monkeypatch.setattr(chunk_module, "stage_rows", stage_then_delete)
    batch = ingest.batch_queue(path=path, source="one", fmt="auto")
    ingest.batch_split(batch_id=batch.pk)
    chunk = IngestChunk.objects.get(batch_id=batch.pk)
    with pytest.raises(id_cache.RegistryChanged):
        ingest.chunk_ingest(batch_id=batch.pk, index=chunk.index)
    assert not Generation.objects.exists()
    assert not IngestChunk.objects.get(pk=chunk.pk).done
    assert id_cache.RegistryChanged.__mro__[1] in TRANSIENT  # the ingest task retries it
    ingest.chunk_ingest(batch_id=batch.pk, index=chunk.index)  # the task's retry
    account = Account.objects.get(external_id="acme")
    assert account.pk != deleted[0]
    assert list(Generation.objects.values_list("account_id", flat=True)) == [account.pk]


def test_a_key_renamed_in_traffic_reaches_the_database_and_an_unchanged_name_sends_nothing():
    row = _staged(_record())[0]
    assert ApiKey.objects.get(pk=row.api_key_id).name == "prod"
    with CaptureQueriesContext(connection) as queries:
        _staged(_record(2))
    assert not [q for q in _registry_queries(queries) if "UPDATE" in q]
    _staged(_record(3, api_key_name="production"))
    assert ApiKey.objects.get(pk=row.api_key_id).name == "production"


def test_the_version_moves_on_deletes_renames_and_truncates_only():
    _staged(_record())
    version = RegistryVersion.objects.get().version
    Account.objects.update(balance_units=5)  # not a name: no bump
    ApiKey.objects.update(name="other")
    Model.objects.update(name="Other")
    assert RegistryVersion.objects.get().version == version
    App.objects.update(origin="https://one.example/")  # the same origin: no bump
    assert RegistryVersion.objects.get().version == version
    App.objects.all().delete()
    assert RegistryVersion.objects.get().version != version


def test_registrations_inside_a_transaction_are_not_cached():
    with transaction.atomic():
        _staged(_record())
        assert len(stage._ACCOUNTS) == 0
    _staged(_record(2))
    assert len(stage._ACCOUNTS) == 1


def test_a_cache_stays_within_its_bound():
    id_cache.registry_check()
    cache = id_cache.IdCache("test", max_entries=8)
    try:
        for n in range(20):
            cache.remember({n: n})
        assert len(cache) <= 8
        assert cache.get(19) == 19
        assert cache.get(0) is None
        assert cache.ids({19, 100}, lambda missing: {m: -m for m in missing}) == {19: 19, 100: -100}
    finally:
        id_cache._CACHES.remove(cache)

