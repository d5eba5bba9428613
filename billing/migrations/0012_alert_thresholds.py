"""Alert thresholds (issue 33): a level's state per budget, period and subject (once per crossing),
the low-balance crossing count, the unusual-spend settings. Key limits keep alerting at 80% as they
did: each hard key budget (a key limit) without chosen percentages gets [80] (100% is always evaluated). The keys'
80/100 marks go: the crossings are `BudgetAlertLevel` rows now, counted from the next debit (a key
told at 80% today is told once more if still over 80%, once)."""
import django.db.models.deletion
from decimal import Decimal
from django.db import migrations, models


def key_budgets_alert_at_80(apps, schema_editor):
    Budget = apps.get_model("billing", "Budget")
    Budget.objects.filter(scope="key", mode="hard", alert_percentages=[]).update(alert_percentages=[80])


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0011_alert_channels'),
    ]

    operations = [
        migrations.RunPython(key_budgets_alert_at_80, migrations.RunPython.noop),
        migrations.RemoveField(
            model_name='apikey',
            name='alert_100_interval',
        ),
        migrations.RemoveField(
            model_name='apikey',
            name='alert_80_interval',
        ),
        migrations.AddField(
            model_name='account',
            name='low_balance_crossings',
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name='account',
            name='unusual_spend_k',
            field=models.DecimalField(db_default=Decimal('5.0'), decimal_places=1, default=Decimal('5.0'), max_digits=4),
        ),
        migrations.AddField(
            model_name='account',
            name='unusual_spend_min_units',
            field=models.BigIntegerField(db_default=100000000000, default=100000000000),
        ),
        migrations.CreateModel(
            name='BudgetAlertLevel',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('subject', models.CharField(blank=True, default='', max_length=128)),
                ('period_key', models.DateField()),
                ('level', models.PositiveIntegerField(help_text='a percentage of the amount')),
                ('armed', models.BooleanField(default=False)),
                ('crossings', models.PositiveIntegerField(default=0)),
                ('budget', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='billing.budget')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('budget', 'subject', 'period_key', 'level'), name='budgetalertlevel_key')],
            },
        ),
    ]
