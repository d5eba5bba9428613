"""Celery tasks of the account usage pages, and `usage_refresh`, which queues them after a chunk.

The messages are sent from this module (the cache and the queries never import it). Names follow
the module; the ones they had when one module held every analytics task
(`analytics.tasks.*`) still run for one release, so that messages
already queued do (core.celery_names).
"""
from collections.abc import Iterable

from core.cache import USAGE_BUMPS
from core.celery_names import shared_task_renamed
from core.replica import replica_prewarm

from . import cache, prewarm


def usage_refresh(*, account_ids: Iterable[int], catch_up: bool = False) -> None:
    """After a chunk committed: move the usage versions of its watched accounts (each at most once per
    USAGE_BUMPS.seconds, 10) and prewarm their pages.

    Only watched accounts (`cache.usage_watch`) have cached pages worth keeping up to date: an
    unwatched account's version is left alone, since its next view starts a new one and so computes
    its pages afresh. At a router's cardinality a chunk touches tens of thousands of accounts, a few
    of them watched; an unwatched one costs one key of one `get_many` and nothing else. At most
    three cache round trips whatever the number of accounts: one `get_many` of the watch marks,
    then, if any account is watched, one `get_many` of the watched accounts' version and catch-up
    marks and one `set_many` of their new versions (one new token for the whole refresh) and
    catch-up marks. A watched account whose version moved less than 10 s ago is left to one
    catch-up task 11 s later, shared by all such accounts of the refresh and not queued for an
    account that already waits for one (its mark), so watched pages are at most about 11 s stale
    and no chunk is left out; the catch-up run itself (`catch_up`) ignores marks, so it always moves
    or passes on each of its accounts that are still watched (one that is no longer watched needs
    nothing: its next view starts a new version).
    (The demo's FileBasedCache makes `get_many`/`set_many` a loop of file reads and writes:
    fine for its dozen accounts; RedisCache sends each as one command or one pipeline.)
    """
    plan = cache.refresh_plan(account_ids=account_ids, catch_up=catch_up)
    if plan.later:
        # Queued before its marks are written, so that no mark exists without its task.
        usage_refresh_later.apply_async(args=[plan.later], countdown=USAGE_BUMPS.countdown)
    plan.write()
    if plan.due:  # after the new versions are written: the prewarm fills the pages they key
        usage_prewarm.delay(plan.due)


@shared_task_renamed(old_name="analytics.tasks.usage_refresh_later", ignore_result=True)
def usage_refresh_later(account_ids: list[int]) -> None:
    """The catch-up run of `usage_refresh` for accounts whose version had moved less than USAGE_BUMPS.seconds before."""
    usage_refresh(account_ids=account_ids, catch_up=True)


@shared_task_renamed(old_name="analytics.tasks.usage_prewarm", ignore_result=True)
def usage_prewarm(account_ids: list[int]) -> None:
    """Compute the watched accounts' default overview and activity ahead, after their version moved (in each
    account's own time zone, read for all of them at once)."""
    zones = prewarm.account_zones(account_ids=account_ids)
    # From the replica once it has replayed the chunks that moved these versions (core.replica).
    with replica_prewarm():
        for account_id in account_ids:
            if account_id in zones:  # an account deleted since is skipped
                prewarm.usage_prewarm(account_id=account_id, zone=zones[account_id])
