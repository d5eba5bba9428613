from dataclasses import dataclass

import plotly
from django.utils import timezone

from .timerange import day_starts_at, zone_label, zone_offset


@dataclass(frozen=True)
class ZoneNote:
    """What an account page says about its times: the zone, its offset now, where its days start."""

    name: str
    offset: str  # "UTC+05:30"
    day_starts_at: str | None  # "00:30" in a zone whose midnight falls inside a UTC hour


def site(request) -> dict:
    """Values every page template needs; on an account's pages, its time zone."""
    values = {"plotly_version": plotly.__version__}
    account = getattr(request, "account", None)
    if account is not None:
        zone, now = account.zone, timezone.now()
        values["zone_note"] = ZoneNote(zone_label(zone), zone_offset(zone, now),
                                       day_starts_at(zone, now.astimezone(zone).date()))
    return values
