"""The usage counters are one list: the rollups' columns, what ingestion sums into them, and `Totals`."""
from analytics import rollups
from analytics.counters import LATENCY_SUMS, USAGE_SUMS
from analytics.models import AppDay
from analytics.usage.totals import COUNTERS, REPORT_COUNTERS, Totals


def test_ingestion_sums_exactly_the_counters_the_usage_pages_read():
    assert (*USAGE_SUMS, *LATENCY_SUMS) == COUNTERS == Totals._fields
    assert COUNTERS[:9] == REPORT_COUNTERS  # usage.csv's counters: not the unpriced tokens, not the latency sums
    assert COUNTERS[9:] == ("unpriced_tokens", "latency_sum", "latency_count")
    account = [r for r in rollups.ROLLUPS if r.account]
    assert [r.model.__name__ for r in account] == ["AccountDay", "AccountHour", "AccountUserDay", "AccountTagDay"]
    for rollup in account:  # what the usage pages read from whichever one answers
        assert tuple(rollup.counters) == COUNTERS, rollup.table
    app_day, = (r for r in rollups.ROLLUPS if r.model is AppDay)
    assert tuple(app_day.counters) == tuple(USAGE_SUMS)  # no latency sums there


def test_every_rollup_has_a_column_for_each_counter_and_key():
    for rollup in rollups.ROLLUPS:
        columns = {field.column for field in rollup.model._meta.fields}
        assert set(rollup.counters) | set(rollup.keys) <= columns, rollup.table
