"""python manage.py catalog_sync [--snapshot FILE] [--dry-run] [--json]"""
import json
import time
from pathlib import Path

import genai_prices
from django.core.management.base import BaseCommand, CommandError

from marketplace.genai_catalog import snapshot_load
from marketplace.services import catalog_sync


class Command(BaseCommand):
    help = ("Load or refresh models, providers, endpoints and prices from genai-prices (no network), and report "
            "what changed; a change to a price already used for billing is recorded as pending, not applied.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="show the report and write nothing")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--snapshot", type=Path,
                            help="read genai-prices' JSON data from this file instead of the installed release's")

    def handle(self, *args, **options):
        started = time.perf_counter()
        snapshot, source = None, f"genai-prices {genai_prices.__version__}, its bundled data"
        if options["snapshot"]:
            try:
                snapshot = snapshot_load(path=options["snapshot"])
            except (OSError, ValueError) as error:
                raise CommandError(f"cannot read the snapshot {options['snapshot']}: {error}") from error
            source = f"the snapshot {options['snapshot']}"
        report = catalog_sync(snapshot=snapshot, source=source, dry_run=options["dry_run"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
            return
        for line in report.lines():
            self.stdout.write(line)
        self.stdout.write(f"catalog {'checked' if options['dry_run'] else 'synced'} in "
                          f"{time.perf_counter() - started:.1f} s")
