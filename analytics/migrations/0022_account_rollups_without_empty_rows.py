"""The user and tag rollups keep no row for requests without a user (tags): it repeated AccountDay's totals.

Ingestion stops writing them (analytics.rollups: their `where`); the readers derive them from AccountDay
(analytics.usage.sources). Backwards, they are derived again the same way: per account and day,
AccountDay's totals less the other rows'.
"""
from django.db import migrations

_COUNTERS = ("requests, failed, tokens_prompt, tokens_completion, tokens_reasoning, tokens_cached, byok_tokens,"
             " spend_units, unpriced_requests, unpriced_tokens, latency_sum, latency_count")


def _restore(table: str, column: str) -> str:
    counters = _COUNTERS.split(", ")
    summed = ", ".join(f"SUM({c})" for c in counters)
    negated = ", ".join(f"-{c}" for c in counters)
    return (f"INSERT INTO {table} (account_id, day, {column}, {_COUNTERS})"
            f" SELECT account_id, day, '', {summed} FROM (SELECT account_id, day, {_COUNTERS} FROM analytics_accountday"
            f" UNION ALL SELECT account_id, day, {negated} FROM {table}) AS w"
            " GROUP BY account_id, day HAVING SUM(requests) <> 0")


class Migration(migrations.Migration):

    dependencies = [
        ("analytics", "0021_account_rollups_composite_keys"),
    ]

    operations = [
        migrations.RunSQL("DELETE FROM analytics_accountuserday WHERE end_user = ''",
                          _restore("analytics_accountuserday", "end_user")),
        migrations.RunSQL("DELETE FROM analytics_accounttagday WHERE tags = ''",
                          _restore("analytics_accounttagday", "tags")),
    ]
