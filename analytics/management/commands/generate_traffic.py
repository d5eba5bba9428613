"""python manage.py generate_traffic --events N --out FILE [--seed S] [--days D] [--accounts N] [--apps N] [--shuffle]
python manage.py generate_traffic --live --rate R --hours H --out FILE [--diurnal] [--end T] [--accounts N] …"""
from datetime import datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from analytics.demo.traffic import EmptyCatalog, traffic_generate


class Command(BaseCommand):
    help = ("Write realistic openrouter-format routed-traffic logs over the real catalog: a backfill of --events "
            "records over --days days (in time order, or --shuffle), or with --live a router's stream in time "
            "order, --rate R requests/s over the --hours H before --end: R × H × 3600 records (rounded).")

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, help="records of a backfill (required without --live)")
        parser.add_argument("--out", type=Path, required=True, help="output file; .gz compresses")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--end", type=datetime.fromisoformat, default=None,
                            help="ISO time the traffic ends at (default: now)")
        parser.add_argument("--accounts", type=int, default=12,
                            help="accounts, Zipf-popular (a router's cardinality: e.g. 100000)")
        parser.add_argument("--apps", type=int, default=250, help="apps, Zipf-popular")
        parser.add_argument("--hostile-app", action="store_true",
                            help="name one app <img src=x onerror=alert(1)> (escaping demo)")
        parser.add_argument("--shuffle", action="store_true",
                            help="scatter the backfill's timestamps at random through the file (the worst case)")
        parser.add_argument("--live", action="store_true",
                            help="a live stream in time order: Poisson arrivals at --rate over --hours "
                                 "(R × H × 3600 records), written a block at a time")
        parser.add_argument("--rate", type=float, help="with --live: requests per second on average")
        parser.add_argument("--hours", type=float, help="with --live: hours of traffic, ending at --end")
        parser.add_argument("--diurnal", action="store_true",
                            help="with --live: the rate follows the hour of day (same total)")

    def handle(self, *args, events, out, seed, days, end, accounts, apps, hostile_app, shuffle, live, rate, hours,
               diurnal, **options):
        if live:
            if events is not None or shuffle:
                raise CommandError("--live writes --rate × --hours × 3600 records in time order: "
                                   "no --events or --shuffle")
            if rate is None or hours is None or rate <= 0 or hours <= 0:
                raise CommandError("--live needs --rate > 0 (requests per second) and --hours > 0")
            events = round(rate * hours * 3600)
        elif events is None:
            raise CommandError("--events is required (or --live with --rate and --hours)")
        elif rate is not None or hours is not None or diurnal:
            raise CommandError("--rate, --hours and --diurnal go with --live")
        if events < 0 or days < 1 or accounts < 1 or apps < 1:
            raise CommandError("--events must be ≥ 0; --days, --accounts and --apps ≥ 1")
        if end is not None and end.tzinfo is None:
            raise CommandError("--end needs a time zone, e.g. 2026-03-01T00:00:00+00:00")
        try:
            summary = traffic_generate(events=events, out=out, seed=seed, days=days, end=end, accounts=accounts,
                                       apps=apps, hostile_app=hostile_app, shuffle=shuffle,
                                       live_hours=hours if live else None, diurnal=diurnal)
        except EmptyCatalog as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"wrote {summary.records:,} records to {out} in {summary.seconds:.1f} s "
            f"({summary.records / max(summary.seconds, 1e-9):,.0f} records/s): {summary.accounts_seen:,} of "
            f"{summary.accounts:,} accounts, {summary.keys_seen:,} keys, {summary.users_seen:,} end users, "
            f"{summary.apps_seen:,} of {summary.apps:,} apps, {summary.models} models, {summary.providers} providers"
            + (f"; a live stream of {hours:g} h at {rate:g} requests/s" if live else ""))
