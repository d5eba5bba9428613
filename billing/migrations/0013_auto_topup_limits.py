"""Auto top-up that cannot run away: a monthly cap and a count of failures in a row on the account,
at most one automatic charge in flight per account (a partial unique constraint), and the audit
trail of changes.

Before the constraint, every pending automatic charge but each account's latest is marked failed
(they were left by a crashed worker: the old code settled its charge in the same request). Accounts
with auto top-up on get a cap of four top-ups a month, so that none is left without one; the
credits page shows it and the owner changes it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0012_alert_thresholds'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='AutoTopupChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('actor', models.CharField(max_length=200)),
                ('reason', models.CharField(blank=True, max_length=1000)),
                ('old', models.JSONField(default=dict)),
                ('new', models.JSONField(default=dict)),
                ('created', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'ordering': ['-created', '-id'],
            },
        ),
        migrations.AddField(
            model_name='account',
            name='auto_topup_failures',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='account',
            name='auto_topup_monthly_cap_units',
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='payment',
            name='attempted_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(
            sql="""
                UPDATE billing_payment p SET status = 'failed', failure = 'left pending by an earlier version'
                WHERE p.kind = 'auto_topup' AND p.status = 'pending' AND EXISTS (
                    SELECT 1 FROM billing_payment q WHERE q.account_id = p.account_id AND q.kind = 'auto_topup'
                    AND q.status = 'pending' AND q.id > p.id)""",
            reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(
            sql="UPDATE billing_account SET auto_topup_monthly_cap_units = 4 * auto_topup_amount_units"
                " WHERE auto_topup_enabled",
            reverse_sql=migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name='payment',
            constraint=models.UniqueConstraint(condition=models.Q(('kind', 'auto_topup'), ('status', 'pending')), fields=('account',), name='payment_one_auto_topup_in_flight'),
        ),
        migrations.AddField(
            model_name='autotopupchange',
            name='account',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='auto_topup_changes', to='billing.account'),
        ),
        migrations.AddField(
            model_name='autotopupchange',
            name='user',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddIndex(
            model_name='autotopupchange',
            index=models.Index(fields=['account', '-created'], name='autotopupchange_recent'),
        ),
    ]
