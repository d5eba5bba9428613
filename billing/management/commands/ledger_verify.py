"""Check the books: every balance equals the sum of its entries and the last entry's balance after."""
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max, Sum

from billing.models import Account, LedgerEntry
from core.money import units_to_usd


def _usd(units: int) -> str:
    """Exact, to the unit: 18.7500000001 USD."""
    return f"{units_to_usd(units):f} USD"


class Command(BaseCommand):
    help = ("Compare each account's balance with the sum of its ledger entries and with the last entry's "
            "balance after; exit non-zero listing every difference.")

    def handle(self, *args, **options):
        sums = dict(LedgerEntry.objects.values_list("account_id").annotate(s=Sum("amount_units"))
                    .values_list("account_id", "s"))
        last_ids = LedgerEntry.objects.values("account_id").annotate(last=Max("id")).values_list("last", flat=True)
        last_after = dict(LedgerEntry.objects.filter(pk__in=last_ids).values_list("account_id", "balance_after_units"))
        problems, checked = [], 0
        for account_id, external_id, balance in Account.objects.order_by("pk").values_list(
                "pk", "external_id", "balance_units").iterator(chunk_size=5000):
            checked += 1
            total = int(sums.get(account_id) or 0)
            if balance != total:
                problems.append(f"{external_id} (id {account_id}): balance {_usd(balance)} but entries sum "
                                f"to {_usd(total)} (difference {_usd(balance - total)})")
            after = last_after.get(account_id, 0)
            if balance != after:
                problems.append(f"{external_id} (id {account_id}): balance {_usd(balance)} but the last "
                                f"entry's balance after is {_usd(after)}")
        for line in problems:
            self.stderr.write(line)
        if problems:
            raise CommandError(f"{len(problems)} difference(s) in {checked} accounts")
        self.stdout.write(f"ledger ok: {checked} accounts, {sum(1 for _ in sums)} with entries, every balance "
                          "equals the sum of its entries")
