"""The usage counters are one list: the rollups' columns, what ingestion sums into them, and `Totals`."""
from analytics.ingest import loader
from analytics.models import AccountDay, AccountHour
from analytics.usage.totals import COUNTERS, REPORT_COUNTERS, Totals


def test_ingestion_sums_exactly_the_counters_the_usage_pages_read():
    assert (*loader.USAGE_SUMS, *loader.LATENCY_SUMS) == COUNTERS == Totals._fields
    assert COUNTERS[:9] == REPORT_COUNTERS
    for model in (AccountDay, AccountHour):
        assert set(COUNTERS) <= {field.name for field in model._meta.fields}
