"""Post the expiry of promo credits that are due (idempotent; run it daily)."""
from django.core.management.base import BaseCommand

from billing.promos import grants_expire


class Command(BaseCommand):
    help = "Expire what is left of promo credits whose expiry date has passed."

    def handle(self, *args, **options):
        self.stdout.write(f"{grants_expire()} expiry entries posted")
