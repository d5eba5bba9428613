"""Key limits become key budgets: each limited key gets a hard key budget of the same amount, its
interval as the period (daily → day, weekly → week, monthly → month, never → none), counted from
then on in the account's time zone; the current period's spend so far is counted once from the
key's generations (BYOK excluded). The limit columns go. Reversed, each key's hard key budget
becomes its limit again (the one with the least amount, if several)."""
from django.db import migrations
from django.db.models import Sum
from django.utils import timezone

PERIOD_OF = {"daily": "day", "weekly": "week", "monthly": "month", "never": "none"}
INTERVAL_OF = {period: interval for interval, period in PERIOD_OF.items()}


def limits_to_budgets(apps, schema_editor):
    from billing.periods import period_now
    from core.timerange import zone_named

    ApiKey = apps.get_model("billing", "ApiKey")
    Budget = apps.get_model("billing", "Budget")
    BudgetSpend = apps.get_model("billing", "BudgetSpend")
    Generation = apps.get_model("analytics", "Generation")
    now = timezone.now()
    for key in ApiKey.objects.filter(limit_units__isnull=False).select_related("account").iterator():
        period = PERIOD_OF[key.limit_interval]
        budget, created = Budget.objects.get_or_create(
            account_id=key.account_id, scope="key", target=key.external_id, period=period,
            defaults={"api_key_id": key.pk, "amount_units": key.limit_units, "mode": "hard"})
        if not created:  # a key budget of that period already: the limit is the hard one
            Budget.objects.filter(pk=budget.pk).update(amount_units=key.limit_units, mode="hard", api_key_id=key.pk)
        account = key.account
        period_key, start, _ = period_now(period=period, now=now, zone=zone_named(account.time_zone),
                                          week_start=account.week_start)
        rows = Generation.objects.filter(account_id=key.account_id, api_key_id=key.pk, is_byok=False)
        if start is not None:
            rows = rows.filter(created_at__gte=start)
        spent = rows.aggregate(s=Sum("cost_units"))["s"]
        BudgetSpend.objects.filter(budget_id=budget.pk).delete()
        if spent:
            BudgetSpend.objects.create(budget_id=budget.pk, subject="", period_key=period_key, spent_units=spent)


def budgets_to_limits(apps, schema_editor):
    ApiKey = apps.get_model("billing", "ApiKey")
    Budget = apps.get_model("billing", "Budget")
    for budget in Budget.objects.filter(scope="key", mode="hard", api_key__isnull=False).order_by("-amount_units"):
        ApiKey.objects.filter(pk=budget.api_key_id).update(limit_units=budget.amount_units,
                                                           limit_interval=INTERVAL_OF[budget.period])


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0007_budgets"),
        ("analytics", "0016_model_week"),
    ]

    operations = [
        migrations.RunPython(limits_to_budgets, budgets_to_limits),
        migrations.RemoveField(
            model_name="apikey",
            name="limit_interval",
        ),
        migrations.RemoveField(
            model_name="apikey",
            name="limit_units",
        ),
    ]
