"""Fill the usage cache with what an account's pages show by default (after its chunk is ingested)."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo

from billing.models import Account
from core.timerange import zone_named

from . import savings
from .explorer import usage_activity
from .grouping import NO_FILTERS
from .names import filter_choices
from .overview import forecast_days, usage_overview
from .params import TOP_DEFAULT, activity_granularity, period_parse


def usage_prewarm(*, account_id: int, zone: tzinfo | None = None) -> None:
    """Compute and cache what the overview and the activity page show by default (in the account's zone,
    read when not given)."""
    if zone is None:
        zone = Account.objects.get(pk=account_id).zone
    period = period_parse(None, zone=zone)
    usage_overview(account_id=account_id, period=period)
    # Every argument as the activity view passes it: the cache key is made of them.
    usage_activity(account_id=account_id, period=period, metric="spend", group_by=(),
                   granularity=activity_granularity(period, None), filters=NO_FILTERS, top=TOP_DEFAULT,
                   cumulative=False)
    filter_choices(account_id=account_id)
    forecast_days(account_id=account_id, zone=zone)
    savings.account_savings(account_id=account_id)



def account_zones(*, account_ids: Iterable[int]) -> dict[int, tzinfo]:
    """The time zones of these accounts, in one query."""
    return {pk: zone_named(name) for pk, name in Account.objects.filter(pk__in=list(account_ids))
            .values_list("pk", "time_zone")}

