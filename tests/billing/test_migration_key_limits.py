"""Migration 0008: today's key limits become hard key budgets, their current period's spend counted from the
key's generations (BYOK excluded); and back."""
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("billing", "0007_budgets"), ("analytics", "0016_model_week")]
AFTER = [("billing", "0008_key_limits_to_budgets")]
NOW = datetime(2026, 12, 9, 15, 0, tzinfo=UTC)  # a Wednesday


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def test_key_limits_become_hard_key_budgets_with_their_periods_spend():
    try:
        _migrate(BEFORE)
        apps = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        account = apps.get_model("billing", "Account").objects.create(external_id="a", time_zone="America/New_York")
        keys = apps.get_model("billing", "ApiKey")
        daily = keys.objects.create(account=account, external_id="kd", limit_units=50, limit_interval="daily")
        never = keys.objects.create(account=account, external_id="kn", limit_units=70, limit_interval="never")
        keys.objects.create(account=account, external_id="free")
        generation = apps.get_model("analytics", "Generation")

        def spent(gid: str, key, at: datetime, units: int, byok: bool = False) -> None:
            generation.objects.create(id=gid, created_at=at, account_id=account.pk, api_key_id=key.pk, model_id=1,
                                      provider_id=1, cost_units=units, is_byok=byok)

        spent("g1", daily, NOW - timedelta(hours=1), 10)  # today in New York
        spent("g2", daily, datetime(2026, 12, 9, 4, 30, tzinfo=UTC), 7)  # 23:30 on the 8th in New York
        spent("g3", daily, NOW - timedelta(hours=2), 99, byok=True)
        spent("g4", never, datetime(2026, 1, 1, tzinfo=UTC), 30)
        with time_machine.travel(NOW, tick=False):
            _migrate(AFTER)
        apps = MigrationExecutor(connection).loader.project_state(AFTER).apps
        budgets = apps.get_model("billing", "Budget").objects.order_by("target")
        assert list(budgets.values_list("scope", "target", "api_key_id", "amount_units", "period", "mode")) == [
            ("key", "kd", daily.pk, 50, "day", "hard"), ("key", "kn", never.pk, 70, "none", "hard")]
        spends = apps.get_model("billing", "BudgetSpend").objects.order_by("budget__target")
        assert list(spends.values_list("budget__target", "subject", "period_key", "spent_units")) == [
            ("kd", "", date(2026, 12, 9), 10), ("kn", "", date(1970, 1, 1), 30)]

        _migrate(BEFORE)  # and back
        apps = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        assert sorted(apps.get_model("billing", "ApiKey").objects.values_list("external_id", "limit_units",
                                                                              "limit_interval")) == [
            ("free", None, "monthly"), ("kd", 50, "daily"), ("kn", 70, "never")]
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
