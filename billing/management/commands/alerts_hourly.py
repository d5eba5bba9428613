"""Run the hourly alerts now: unusual spend of an hour, and the pace forecasts (what the beat task runs)."""
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from billing.pace import pace_alerts_check
from billing.unusual import last_complete_hour, unusual_spend_check


class Command(BaseCommand):
    help = ("Emit the unusual-spend alerts of the last complete hour (or --hour), once per account and hour,"
            " and the pace alerts, once per period.")

    def add_arguments(self, parser):
        parser.add_argument("--hour", default="", help="the hour's start, ISO 8601 with a zone (default: the last "
                                                       "complete hour)")

    def handle(self, *args, **options):
        hour = last_complete_hour()
        if options["hour"]:
            try:
                hour = datetime.fromisoformat(options["hour"].replace("Z", "+00:00"))
            except ValueError:
                raise CommandError("--hour: an ISO 8601 time, e.g. 2026-12-07T13:00:00Z") from None
            if hour.tzinfo is None:
                raise CommandError("--hour needs a time zone, e.g. 2026-12-07T13:00:00Z")
            hour = hour.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        events = unusual_spend_check(hour=hour)
        self.stdout.write(f"{hour.isoformat()}: {len(events)} unusual-spend alerts")
        self.stdout.write(f"{len(pace_alerts_check())} pace alerts (runs out before the period ends)")
