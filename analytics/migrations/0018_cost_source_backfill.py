"""Every generation gets its cost source: the rows ingested before migration 0011 have none (NULL), and
their `cost_priced` said it: false, the gateway's total_cost; true, the catalog's price then (failed or
empty requests included: insurance did not exist, they were priced from the catalog like the others,
and rolled up so; none was counted unpriced). After this nothing reads `cost_priced` (0019 drops it).

Batched and resumable, not one transaction: each partition of the generation table (analytics.ingest.
partitions) is read in slices of BATCH_PAGES pages by a TID range scan (`ctid` bounds, PostgreSQL 14+),
each slice one `UPDATE … WHERE cost_source IS NULL` committed on its own. A slice's rows are locked for
its duration only (ingestion inserts new rows and waits on none of them); an interrupted run leaves
committed slices done, and a second run skips every row that has a source. The new row versions land
beyond the slices still to read or in them: either way they have a source and are skipped. A
partition is vacuumed after each quarter of it, so that the next quarter's new versions reuse the space
of the old ones rather than doubling the table. Reversing it changes nothing.
Measured: see docs/scaling.md ("cost_source backfill").
"""
from django.db import migrations, transaction

PARENT = "analytics_generation"
BATCH_PAGES = 2000  # about 25k generations (13 a page of 8 kB): a slice commits in about half a second
VACUUMS = 4  # a partition is vacuumed after each quarter of it: it should grow by a quarter, not double
GATEWAY, CATALOG = 1, 2  # Generation.CostSource, as they were when written


def _tables(cursor) -> list[tuple[str, int]]:
    """(table, pages) of the generation table's partitions; the table itself when it has none."""
    cursor.execute(
        "SELECT c.relname, pg_relation_size(c.oid) / current_setting('block_size')::int FROM pg_class c"
        " WHERE c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(%s))"
        " OR (c.oid = to_regclass(%s) AND c.relkind = 'r') ORDER BY c.relname", [PARENT, PARENT])
    return cursor.fetchall()


def _vacuum(connection, table: str) -> None:
    """Make the dead versions' space reusable by the next slices' new ones (not in a transaction: a test's)."""
    if not connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(f'VACUUM "{table}"')


def backfill(apps, schema_editor, *, batch_pages: int = BATCH_PAGES) -> int:
    """Give every generation without a source the one `cost_priced` says; return how many rows changed."""
    connection = schema_editor.connection
    changed = 0
    with connection.cursor() as cursor:
        tables = _tables(cursor)
    for table, pages in tables:
        unvacuumed = read = 0
        for low in range(0, pages, batch_pages):
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                cursor.execute(
                    f'UPDATE "{table}" SET cost_source = CASE WHEN cost_priced THEN {CATALOG} ELSE {GATEWAY} END'
                    " WHERE ctid >= %s::tid AND ctid < %s::tid AND cost_source IS NULL",
                    [f"({low},0)", f"({low + batch_pages},0)"])
                changed += cursor.rowcount
                unvacuumed += cursor.rowcount
            read += batch_pages
            if read * VACUUMS >= pages or low + batch_pages >= pages:
                if unvacuumed:
                    _vacuum(connection, table)
                unvacuumed = read = 0
    return changed


class Migration(migrations.Migration):
    atomic = False  # each slice commits on its own (and VACUUM runs outside a transaction)

    dependencies = [
        ("analytics", "0017_merge_duplicate_names"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
