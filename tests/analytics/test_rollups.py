"""analytics.rollups: one entry declares a rollup, and ingestion, repricing, the usage pages' choice and the
rollup property test all pick it up."""
from collections import Counter

import pytest
from django.db import connection, models
from django.test.utils import isolate_apps

from analytics import rollups
from analytics.counters import LATENCY_SUMS, USAGE_SUMS
from analytics.ingest import loader
from analytics.models import Generation, _AccountUsage  # noqa: PLC2701  (a rollup's counters, as every account rollup's)
from analytics.repricing import services as repricing
from analytics.repricing.services import reprice_apply
from analytics.usage import sources
from tests.analytics.ingest.test_rollup_property import rollups_assert_equal_generations
from tests.analytics.test_repricing import _plan, _traffic

pytestmark = pytest.mark.django_db


@pytest.fixture
def user_hour(monkeypatch):
    """A throwaway rollup, per account x hour x end user, appended to ROLLUPS: its model lives only in this
    test (an isolated app registry), its table only in the test database's transaction."""
    with isolate_apps("analytics"):
        class AccountUserHour(_AccountUsage):
            hour = models.DateTimeField()
            end_user = models.CharField(max_length=128, default="")

            class Meta:
                app_label = "analytics"
                db_table = "test_accountuserhour"
                constraints = [models.UniqueConstraint(fields=["account", "hour", "end_user"],
                                                       name="test_accountuserhour_key")]

    with connection.schema_editor() as editor:
        editor.create_model(AccountUserHour)
    rollup = rollups.Rollup(AccountUserHour, ("account_id", "hour", "end_user"), {**USAGE_SUMS, **LATENCY_SUMS},
                            "hour", spend=True)
    monkeypatch.setattr(rollups, "ROLLUPS", (*rollups.ROLLUPS, rollup))
    return rollup


def _by_user_hour(model) -> dict:
    return {(r.account_id, r.hour, r.end_user): (r.requests, r.spend_units) for r in model.objects.all()}


def _truth() -> dict:
    """Requests and non-BYOK spend per account x UTC hour x end user, from the generations one by one."""
    requests, spend = Counter(), Counter()
    for g in Generation.objects.all():
        key = (g.account_id, g.created_at.replace(minute=0, second=0, microsecond=0), g.end_user)
        requests[key] += 1
        spend[key] += 0 if g.is_byok else g.cost_units
    return {key: (requests[key], spend[key]) for key in requests}


def test_one_entry_adds_a_rollup_to_ingestion_repricing_the_usage_pages_and_the_property_test(user_hour, tmp_path):
    model = user_hour.model
    world = _traffic(tmp_path)  # 8 generations of 2 accounts over 6 hours (tests/analytics/test_repricing.py)

    # Ingestion: the loader's upserts fill it, one row per account x hour x end user.
    assert any(f"INSERT INTO {user_hour.table} " in sql for sql in loader.rollup_sql())
    before = _by_user_hour(model)
    assert len(before) == 8
    assert before == _truth()
    a1 = Generation.objects.get(id="a1")
    a1_hour = a1.created_at.replace(minute=0)
    assert before[(world["a"].pk, a1_hour, "")] == (1, a1.cost_units)

    # Repricing moves it with the others (it carries spend): a1 costs its new price there too.
    assert user_hour in repricing.reprice_rollups()
    reprice_apply(reprice_id=_plan(world).reprice_id, actor="staff")
    a1.refresh_from_db()
    # a1 at $3 / $7 per 1M, cache reads $1.50, reasoning as completion: 800 x 3 + 200 x 1.5 + 500 x 7 = 6,200 µ$.
    assert a1.cost_units == 62_000_000
    after = _by_user_hour(model)
    assert after[(world["a"].pk, a1_hour, "")] == (1, 62_000_000)
    assert after == _truth()
    assert after != before

    # The usage pages read it for what only it holds: end users by the hour.
    assert sources.rollup_for(["end_user"], hourly=True) is model
    assert sources.rollup_for(["end_user"], hourly=False).__name__ == "AccountUserDay"

    # The property test checks it: it passes as it is, and fails naming it once a row is off by one.
    rollups_assert_equal_generations()
    model.objects.filter(account_id=world["a"].pk, hour=a1_hour).update(requests=models.F("requests") + 1)
    with pytest.raises(AssertionError, match="test_accountuserhour"):
        rollups_assert_equal_generations()


def test_every_rollup_repricing_moves_is_keyed_by_columns_its_changed_rows_have():
    """reprice_changed carries each generation's key columns: a rollup keyed otherwise needs them added there."""
    changed = {name for name, _ in repricing._CHANGED_COLUMNS}
    for rollup in repricing.reprice_rollups():
        assert set(rollup.keys) <= changed, rollup.table


def test_a_rollup_without_its_grain_among_its_keys_is_refused():
    with pytest.raises(ValueError, match="the grain 'hour' is not among the keys"):
        rollups.Rollup(Generation, ("day", "model_id"), USAGE_SUMS, "hour", spend=False)
