"""Merge the providers and models that traffic (and catalog_sync's `Z.ai`) made beside the catalog's.

A data migration: `analytics.catalog_merge.names_merge` on this migration's models (generations,
rollups, endpoints, reprices), and what it merged is printed. Forward only: a merge cannot be told
apart afterwards. The lead renumbers it when merging branch `issue29` if other 0017s land first.
"""
from django.db import migrations


def merge(apps, schema_editor):
    from analytics.catalog_merge import names_merge

    for merged in names_merge(apps=apps):
        print(f"\n  {merged}", end="")  # noqa: T201 - the repair counts, for the operator running migrate


class Migration(migrations.Migration):

    dependencies = [
        ("analytics", "0016_model_week"),
        ("marketplace", "0004_pending_price_change"),
    ]

    operations = [migrations.RunPython(merge, migrations.RunPython.noop, elidable=True)]
