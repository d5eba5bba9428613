"""python manage.py catalog_sync"""
import time

from django.core.management.base import BaseCommand

from marketplace.services import catalog_sync


class Command(BaseCommand):
    help = "Load or refresh models, providers, endpoints and prices from genai-prices (no network)."

    def handle(self, *args, **options):
        started = time.perf_counter()
        report = catalog_sync()
        for kind, counts in report.as_dict().items():
            self.stdout.write(f"{kind}: {counts['added']} added, {counts['changed']} changed, "
                              f"{counts['unchanged']} unchanged")
        self.stdout.write(f"catalog synced in {time.perf_counter() - started:.1f} s")
