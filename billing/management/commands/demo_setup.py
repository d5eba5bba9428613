"""Create the demo login and attach it to the busiest account (idempotent)."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db.models import Sum

from analytics.models import AccountHour
from billing.models import Account, Membership

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "tokengrid-demo"  # noqa: S105  (printed by `make demo`; local demo only)


class Command(BaseCommand):
    help = "Create the demo user (staff) and make it the owner of the account with the most traffic."

    def handle(self, *args, **options):
        user, created = get_user_model().objects.get_or_create(
            username=DEMO_USERNAME, defaults={"email": "demo@tokengrid.local", "is_staff": True,
                                              "is_superuser": True})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        busiest = (AccountHour.objects.values("account_id").annotate(spend=Sum("spend_units"))
                   .order_by("-spend").first())
        if busiest:
            account = Account.objects.get(pk=busiest["account_id"])
        else:
            account, _ = Account.objects.get_or_create(external_id="acct_demo", defaults={"name": "Demo account"})
        if not account.name:
            account.name = "Demo account"
            account.save(update_fields=["name"])
        Membership.objects.get_or_create(user=user, account=account, defaults={"role": Membership.Role.OWNER})
        self.stdout.write(f"demo login: {DEMO_USERNAME} / {DEMO_PASSWORD} (owner of {account.external_id})")
