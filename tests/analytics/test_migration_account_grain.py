"""Migration 0014: the account rollups keyed by user and tags become the narrow rollups plus the user and tag
rollups, with the same sums (and back, without the users and tags)."""
from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("analytics", "0013_repricing")]
AFTER = [("analytics", "0014_account_rollup_grain")]
D = date(2026, 11, 3)
H = datetime(2026, 11, 3, 9, tzinfo=UTC)


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _wide(apps, model: str, **fields):
    apps.get_model("analytics", model).objects.create(
        account_id=1, model_id=7, provider_id=3, api_key_id=0, app_id=0, **fields)


def test_the_wide_rollups_become_the_narrow_the_user_and_the_tag_rollups_with_the_same_sums():
    try:
        _migrate(BEFORE)
        executor = MigrationExecutor(connection)
        apps = executor.loader.project_state(BEFORE).apps
        # Three rows of one account, day, model, provider, key and app that differ only by user and tags,
        # and one of another key; a row of another account.
        _wide(apps, "AccountDay", day=D, end_user="u1", tags=",a,b,", requests=2, spend_units=30, latency_sum=800,
              latency_count=2)
        _wide(apps, "AccountDay", day=D, end_user="u1", tags="", requests=1, spend_units=5, failed=1)
        _wide(apps, "AccountDay", day=D, end_user="", tags=",a,", requests=4, spend_units=100, tokens_prompt=9,
              unpriced_requests=1)
        apps.get_model("analytics", "AccountDay").objects.create(
            account_id=1, model_id=7, provider_id=3, api_key_id=12, app_id=0, day=D, end_user="u2", tags=",a,",
            requests=1, spend_units=1)
        apps.get_model("analytics", "AccountDay").objects.create(
            account_id=2, model_id=7, provider_id=3, day=D, end_user="u1", tags=",a,", requests=8, spend_units=64)
        _wide(apps, "AccountHour", hour=H, end_user="u1", tags=",a,b,", requests=2, spend_units=30)
        _wide(apps, "AccountHour", hour=H, end_user="u2", tags="", requests=3, spend_units=7)

        _migrate(AFTER)
        apps = MigrationExecutor(connection).loader.project_state(AFTER).apps
        day = apps.get_model("analytics", "AccountDay")
        assert sorted(day.objects.values_list("account_id", "api_key_id", "requests", "failed", "tokens_prompt",
                                              "spend_units", "unpriced_requests", "latency_sum", "latency_count")) == [
            (1, 0, 7, 1, 9, 135, 1, 800, 2), (1, 12, 1, 0, 0, 1, 0, 0, 0), (2, 0, 8, 0, 0, 64, 0, 0, 0)]
        hour = apps.get_model("analytics", "AccountHour")
        assert list(hour.objects.values_list("account_id", "hour", "requests", "spend_units")) == [(1, H, 5, 37)]
        users = apps.get_model("analytics", "AccountUserDay")
        assert sorted(users.objects.values_list("account_id", "day", "end_user", "requests", "spend_units")) == [
            (1, D, "", 4, 100), (1, D, "u1", 3, 35), (1, D, "u2", 1, 1), (2, D, "u1", 8, 64)]
        tags = apps.get_model("analytics", "AccountTagDay")
        assert sorted(tags.objects.values_list("account_id", "tags", "requests", "spend_units", "failed")) == [
            (1, "", 1, 5, 1), (1, ",a,", 5, 101, 0), (1, ",a,b,", 2, 30, 0), (2, ",a,", 8, 64, 0)]

        # Back: the wide rollups again, with the narrow sums and no user or tags.
        _migrate(BEFORE)
        apps = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        wide = apps.get_model("analytics", "AccountDay")
        assert sorted(wide.objects.values_list("account_id", "api_key_id", "end_user", "tags", "requests")) == [
            (1, 0, "", "", 7), (1, 12, "", "", 1), (2, 0, "", "", 8)]
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
