"""python manage.py generate_traffic --events N --out FILE [--seed S] [--days D] [--accounts N] [--apps N]"""
from datetime import datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from analytics.demo.traffic import EmptyCatalog, traffic_generate


class Command(BaseCommand):
    help = "Write realistic openrouter-format routed-traffic logs over the real catalog."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, required=True)
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

    def handle(self, *args, events, out, seed, days, end, accounts, apps, hostile_app, **options):
        if events < 0 or days < 1 or accounts < 1 or apps < 1:
            raise CommandError("--events must be ≥ 0; --days, --accounts and --apps ≥ 1")
        if end is not None and end.tzinfo is None:
            raise CommandError("--end needs a time zone, e.g. 2026-03-01T00:00:00+00:00")
        try:
            summary = traffic_generate(events=events, out=out, seed=seed, days=days, end=end, accounts=accounts,
                                       apps=apps, hostile_app=hostile_app)
        except EmptyCatalog as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"wrote {summary.records:,} records to {out} in {summary.seconds:.1f} s "
            f"({summary.records / max(summary.seconds, 1e-9):,.0f} records/s): {summary.accounts_seen:,} of "
            f"{summary.accounts:,} accounts, {summary.keys_seen:,} keys, {summary.users_seen:,} end users, "
            f"{summary.apps_seen:,} of {summary.apps:,} apps, {summary.models} models, {summary.providers} providers")
