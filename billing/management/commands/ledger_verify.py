"""Check the books: every balance equals the sum of its entries and the last entry's balance after."""
from django.core.management.base import BaseCommand, CommandError

from billing.ledger import ledger_verify


class Command(BaseCommand):
    help = ("Compare each account's balance with the sum of its ledger entries and with the last entry's "
            "balance after; exit non-zero listing every difference.")

    def handle(self, *args, **options):
        check = ledger_verify()
        for line in check.problems:
            self.stderr.write(line)
        if check.problems:
            raise CommandError(f"{len(check.problems)} difference(s) in {check.checked} accounts")
        self.stdout.write(f"ledger ok: {check.checked} accounts, {check.with_entries} with entries, every balance "
                          "equals the sum of its entries")
