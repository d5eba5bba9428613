"""Migrations 0021 and 0022: the account rollups keyed by their unique key (no `id`), and the user and tag
rollups without their rows for requests without a user (tags); and back, those rows derived again."""
from datetime import date

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("analytics", "0020_ingest_pieces")]
AFTER = [("analytics", "0022_account_rollups_without_empty_rows")]
D = date(2026, 11, 3)
TABLES = ("analytics_accountday", "analytics_accounthour", "analytics_accountuserday", "analytics_accounttagday")


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _primary_keys() -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c"
                       " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)"
                       " WHERE c.contype = 'p' AND c.conrelid::regclass::text = ANY(%s)"
                       " ORDER BY 1, array_position(c.conkey, a.attnum)", [list(TABLES)])
        keys: dict[str, list[str]] = {}
        for table, column in cursor.fetchall():
            keys.setdefault(table, []).append(column)
        return keys


def test_the_keys_become_primary_keys_and_the_empty_rows_go_and_come_back_exact():
    try:
        _migrate(BEFORE)
        apps = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        day, users, tags = (apps.get_model("analytics", name) for name in ("AccountDay", "AccountUserDay",
                                                                          "AccountTagDay"))
        # Account 1: 7 requests on D over two slices, 3 of them by u1, 1 by u2, 3 without a user; 2 tagged.
        day.objects.create(account_id=1, model_id=7, provider_id=3, day=D, requests=5, spend_units=50, failed=1,
                           latency_sum=900, latency_count=4)
        day.objects.create(account_id=1, model_id=8, provider_id=3, day=D, requests=2, spend_units=6)
        users.objects.create(account_id=1, day=D, end_user="u1", requests=3, spend_units=20, latency_sum=300,
                             latency_count=3)
        users.objects.create(account_id=1, day=D, end_user="u2", requests=1, spend_units=6)
        users.objects.create(account_id=1, day=D, end_user="", requests=3, spend_units=30, failed=1, latency_sum=600,
                             latency_count=1)
        tags.objects.create(account_id=1, day=D, tags=",a,", requests=2, spend_units=26)
        tags.objects.create(account_id=1, day=D, tags="", requests=5, spend_units=30, failed=1, latency_sum=900,
                            latency_count=4)
        # Account 2: every request has a user and tags: no empty row before or after.
        day.objects.create(account_id=2, model_id=7, provider_id=3, day=D, requests=4, spend_units=8)
        users.objects.create(account_id=2, day=D, end_user="u9", requests=4, spend_units=8)
        tags.objects.create(account_id=2, day=D, tags=",b,", requests=4, spend_units=8)
        assert all(_primary_keys()[t] == ["id"] for t in TABLES)

        _migrate(AFTER)
        assert _primary_keys() == {
            "analytics_accountday": ["account_id", "day", "model_id", "provider_id", "api_key_id", "app_id"],
            "analytics_accounthour": ["account_id", "hour", "model_id", "provider_id", "api_key_id", "app_id"],
            "analytics_accountuserday": ["account_id", "day", "end_user"],
            "analytics_accounttagday": ["account_id", "day", "tags"]}
        apps = MigrationExecutor(connection).loader.project_state(AFTER).apps
        users, tags = apps.get_model("analytics", "AccountUserDay"), apps.get_model("analytics", "AccountTagDay")
        assert sorted(users.objects.values_list("account_id", "end_user", "requests")) == [
            (1, "u1", 3), (1, "u2", 1), (2, "u9", 4)]
        assert sorted(tags.objects.values_list("account_id", "tags", "requests")) == [(1, ",a,", 2), (2, ",b,", 4)]
        assert apps.get_model("analytics", "AccountDay").objects.filter(pk=(1, D, 7, 3, 0, 0)).get().requests == 5

        _migrate(BEFORE)
        assert all(_primary_keys()[t] == ["id"] for t in TABLES)
        apps = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        users, tags = apps.get_model("analytics", "AccountUserDay"), apps.get_model("analytics", "AccountTagDay")
        fields = ("account_id", "requests", "spend_units", "failed", "latency_sum", "latency_count")
        assert list(users.objects.filter(end_user="").values_list(*fields)) == [(1, 3, 30, 1, 600, 1)]
        assert list(tags.objects.filter(tags="").values_list(*fields)) == [(1, 5, 30, 1, 900, 4)]
        users.objects.create(account_id=3, day=D, end_user="u3", requests=1)  # ids are generated again
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
