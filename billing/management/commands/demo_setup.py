"""Create the demo login, attach it to the busiest account and give that account credits to show (idempotent)."""
from decimal import ROUND_CEILING, Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from analytics.usage.spend import spend_busiest_account, spend_by_key
from billing.accounts import api_key_limit_set
from billing.alerts import low_balance_threshold_set
from billing.models import Account, ApiKey, Budget, Membership, Payment, PromoCode, PromoRedemption
from billing.periods import period_now
from billing.promos import promo_redeem
from billing.purchases import credits_purchase_start
from core.money import units_to_usd, usd_to_units
from core.numbers import money

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "tokengrid-demo"  # noqa: S105  (printed by `make demo`; local demo only)
LAUNCH_CODE = "TOKENGRID-LAUNCH"  # redeemed by the demo account: a grant on its statement
DEMO_CODE = "DEMO-10"  # printed, for the person trying the demo to redeem


class Command(BaseCommand):
    help = ("Create the demo user (staff) and make it the owner of the account with the most traffic; give the "
            "account a purchase, a promo grant, key limits and a promo code to redeem.")

    def handle(self, *args, **options):
        user, created = get_user_model().objects.get_or_create(
            username=DEMO_USERNAME, defaults={"email": "demo@tokengrid.local", "is_staff": True,
                                              "is_superuser": True})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        busiest = spend_busiest_account()
        if busiest is not None:
            account = Account.objects.get(pk=busiest)
        else:
            account, _ = Account.objects.get_or_create(external_id="acct_demo", defaults={"name": "Demo account"})
        if not account.name:
            account.name = "Demo account"
            account.save(update_fields=["name"])
        Membership.objects.get_or_create(user=user, account=account, defaults={"role": Membership.Role.OWNER})
        self.stdout.write(f"demo login: {DEMO_USERNAME} / {DEMO_PASSWORD} (owner of {account.external_id})")
        self._credits(account, user)

    def _credits(self, account: Account, user) -> None:
        """A purchase that covers the usage so far, a redeemed grant, key limits, an alert, a code to redeem."""
        if not Payment.objects.filter(account=account, status=Payment.Status.SUCCEEDED).exists():
            account.refresh_from_db(fields=["balance_units"])
            owed = max(Decimal(0), -units_to_usd(account.balance_units)).quantize(Decimal(1), rounding=ROUND_CEILING)
            amount = min(max(owed + 100, Decimal(5)), Decimal(10_000))
            credits_purchase_start(account=account, amount=amount, user=user, save_method=True, gateway_name="demo")
        launch, _ = PromoCode.objects.get_or_create(code=LAUNCH_CODE, defaults={"amount_units": usd_to_units("25")})
        if not PromoRedemption.objects.filter(promo=launch, account=account).exists():
            promo_redeem(account=account, code=LAUNCH_CODE, actor="demo_setup")
        PromoCode.objects.get_or_create(code=DEMO_CODE, defaults={
            "amount_units": usd_to_units("10"), "credit_expiry_days": 30, "max_redemptions": 1000})
        if account.low_balance_threshold_units is None:
            low_balance_threshold_set(account=account, threshold_units=usd_to_units("10"))
        self._key_limits(account)
        account.refresh_from_db(fields=["balance_units"])
        month = timezone.now().strftime("%Y-%m")
        self.stdout.write(f"credits: balance {money(account.balance_units)}; promo code to redeem on "
                          f"/account/credits/: {DEMO_CODE}; statement: /account/statements/{month}/")

    def _key_limits(self, account: Account) -> None:
        """The busiest keys get limits, once: monthly at twice this month's spend, and a daily one."""
        if Budget.objects.filter(account=account, scope=Budget.Scope.KEY).exists():
            return
        _, start, _ = period_now(period="month", now=timezone.now(), zone=account.zone, week_start=account.week_start)
        spend = spend_by_key(account_id=account.pk, since=start)
        keys = sorted(ApiKey.objects.filter(account=account), key=lambda k: -(spend.get(k.pk) or 0))
        for key, interval in zip(keys, (ApiKey.Interval.MONTHLY, ApiKey.Interval.DAILY), strict=False):
            used = units_to_usd(spend.get(key.pk) or 0)
            limit = max(Decimal(5), (used * 2).quantize(Decimal(1), rounding=ROUND_CEILING)) \
                if interval == ApiKey.Interval.MONTHLY else Decimal(2)
            api_key_limit_set(account=account, key_id=key.pk, limit_units=usd_to_units(limit), interval=interval)
