"""`cost_source` is every generation's (0018 filled the old rows'), so `cost_priced`, which nothing reads any
more, goes, and `cost_source` becomes NOT NULL.

SET NOT NULL scans every partition under ACCESS EXCLUSIVE (ingestion and the generation log wait; see
docs/scaling.md, "cost_source backfill", for the time per million rows). It cannot meet a row without a
source: ingestion has set one since 0011 and 0018 gave one to every older row (were one left, it would
fail and change nothing). DROP COLUMN only
marks the column dropped: no rewrite.
"""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("analytics", "0018_cost_source_backfill"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="generation",
            name="cost_priced",
        ),
        migrations.AlterField(
            model_name="generation",
            name="cost_source",
            field=models.SmallIntegerField(
                choices=[(1, "the gateway's total_cost"), (2, "the catalog's price at the time"),
                         (3, "zero-completion insurance ($0)"), (4, "not priced: the catalog has no price")],
                help_text="where the cost came from"),
        ),
    ]
