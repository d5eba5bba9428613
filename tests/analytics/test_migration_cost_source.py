"""Migrations 0018 and 0019: every generation ingested before `cost_source` was kept gets the source its
`cost_priced` said, in batches that a second run skips; then `cost_priced` goes and the source is required."""
import importlib
from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("analytics", "0017_merge_duplicate_names")]
BACKFILLED = [("analytics", "0018_cost_source_backfill")]
backfill = importlib.import_module("analytics.migrations.0018_cost_source_backfill").backfill
GATEWAY, CATALOG, INSURANCE, UNPRICED = 1, 2, 3, 4


class _Editor:
    connection = connection


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _sources() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, cost_source FROM analytics_generation")
        return dict(cursor.fetchall())


def test_old_rows_get_the_source_cost_priced_said_in_resumable_batches_then_the_column_goes():
    try:
        _migrate(BEFORE)
        generation = MigrationExecutor(connection).loader.project_state(BEFORE).apps.get_model(
            "analytics", "Generation")
        rows = {  # id: (created_at, cost_priced, status, tokens_completion, cost_source as stored)
            # Ingested before 0011 (no source), in two months' partitions and the default one (year 2001).
            "gw": (datetime(2026, 11, 3, tzinfo=UTC), False, 200, 10, None),
            "gw-failed": (datetime(2026, 12, 1, tzinfo=UTC), False, 502, 0, None),
            "cat": (datetime(2026, 11, 30, 23, 59, tzinfo=UTC), True, 200, 10, None),
            "cat-failed": (datetime(2026, 12, 2, tzinfo=UTC), True, 500, 0, None),  # priced then, not insured
            "cat-2001": (datetime(2001, 1, 1, tzinfo=UTC), True, 200, 10, None),
            # Ingested since: their source stands.
            "new-unpriced": (datetime(2026, 11, 4, tzinfo=UTC), True, 200, 10, UNPRICED),
            "new-insured": (datetime(2026, 11, 4, tzinfo=UTC), True, 200, 0, INSURANCE),
        }
        rows |= {f"bulk-{i:03d}": (datetime(2026, 11, 5, tzinfo=UTC), i % 2 == 0, 200, 10, None) for i in range(400)}
        generation.objects.bulk_create([
            generation(id=gid, created_at=at, account_id=1, model_id=1, provider_id=1, cost_priced=priced,
                       status=status, tokens_completion=completion, cost_source=source)
            for gid, (at, priced, status, completion, source) in rows.items()])

        # One page a batch: the November partition's 400-odd rows take several; a second run changes nothing.
        assert backfill(None, _Editor(), batch_pages=1) == 405
        assert backfill(None, _Editor(), batch_pages=1) == 0
        sources = _sources()
        assert {gid: sources[gid] for gid in ("gw", "gw-failed", "cat", "cat-failed", "cat-2001", "new-unpriced",
                                              "new-insured")} == {
            "gw": GATEWAY, "gw-failed": GATEWAY, "cat": CATALOG, "cat-failed": CATALOG, "cat-2001": CATALOG,
            "new-unpriced": UNPRICED, "new-insured": INSURANCE}
        assert {sources[f"bulk-{i:03d}"] for i in range(0, 400, 2)} == {CATALOG}
        assert {sources[f"bulk-{i:03d}"] for i in range(1, 400, 2)} == {GATEWAY}

        # The migrations themselves: 0018 finds nothing left, 0019 drops cost_priced and requires a source.
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
        with connection.cursor() as cursor:
            cursor.execute("SELECT column_name, is_nullable FROM information_schema.columns"
                           " WHERE table_name = 'analytics_generation' AND column_name LIKE 'cost_%%'")
            assert sorted(cursor.fetchall()) == [("cost_source", "NO"), ("cost_units", "NO")]
            with pytest.raises(IntegrityError, match='null value in column "cost_source"'), transaction.atomic():
                cursor.execute("INSERT INTO analytics_generation (id, created_at, account_id, model_id, provider_id,"
                               " batch_id, tokens_prompt, tokens_completion, tokens_reasoning, tokens_cached,"
                               " cost_units, is_byok, status, finish_reason, end_user, session_id, tags)"
                               " VALUES ('x', now(), 1, 1, 1, 0, 0, 0, 0, 0, 0, false, 200, '', '', '', '')")
        assert _sources() == sources
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
