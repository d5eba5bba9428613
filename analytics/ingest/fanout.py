"""The one after-commit fan-out of a chunk: everything an applied chunk sets off, queued from here."""
from __future__ import annotations

from analytics.rankings.tasks import rollup_rankings_refresh
from analytics.usage.tasks import usage_refresh
from billing.tasks import billing_after_debit


def chunk_fan_out(*, account_ids: list[int], debited_ids: list[int], batch_end: bool = False) -> None:
    """Everything a committed chunk sets off, queued from this one place (call after commit).

    Each is a constant number of messages or cache round trips, whatever the number of accounts
    the chunk touched: the rankings refresh (rate-limited, analytics.rankings.tasks), the usage
    versions of the chunk's accounts and a prewarm of the watched ones (analytics.usage.tasks), and one billing task
    that finds, in SQL, the few debited accounts and keys that crossed a threshold (billing.alerts).
    """
    rollup_rankings_refresh.delay(batch_end=batch_end)
    if account_ids:
        usage_refresh(account_ids=account_ids)
    if debited_ids:
        billing_after_debit.delay(debited_ids)
