"""The usage counters are one list: the rollups' columns, what ingestion sums into them, and `Totals`."""
from analytics.ingest import loader
from analytics.models import AccountDay, AccountHour, AccountTagDay, AccountUserDay, AppDay
from analytics.usage.totals import COUNTERS, REPORT_COUNTERS, Totals


def test_ingestion_sums_exactly_the_counters_the_usage_pages_read():
    assert (*loader.USAGE_SUMS, *loader.LATENCY_SUMS) == COUNTERS == Totals._fields
    assert COUNTERS[:9] == REPORT_COUNTERS  # usage.csv's counters: not the unpriced tokens, not the latency sums
    assert COUNTERS[9:] == ("unpriced_tokens", "latency_sum", "latency_count")
    for model in (AccountDay, AccountHour, AccountUserDay, AccountTagDay):
        assert set(COUNTERS) <= {field.name for field in model._meta.fields}
    assert set(loader.USAGE_SUMS) <= {field.name for field in AppDay._meta.fields}  # no latency sums there
