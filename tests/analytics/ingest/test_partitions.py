"""Monthly partitions of raw generations on PostgreSQL: made ahead, strays moved, retention drops only raw months."""
import re
import time
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from analytics.ingest import partitions
from analytics.models import AccountDay, EndpointDay, EndpointHour, Generation, GenerationKey, IngestBatch
from analytics.usage.generation_log import LogFilter, generation_of, generations_page
from billing.models import Account, LedgerEntry
from tests.analytics.conftest import record, run_batch, write_jsonl

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 9, tzinfo=UTC)


def _rows_in(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


def _totals() -> dict:
    """What the pages and the ledger show: every rollup's sums and every balance."""
    sums = {"requests": Sum("requests"), "tokens": Sum("tokens_prompt"), "spend": Sum("spend_units")}
    return {"endpoint_hour": EndpointHour.objects.aggregate(**sums), "endpoint_day": EndpointDay.objects.aggregate(**sums),
            "account_day": AccountDay.objects.aggregate(**sums),
            "balances": dict(Account.objects.values_list("external_id", "balance_units")),
            "ledger": LedgerEntry.objects.count()}


def _traffic(tmp_path, name: str, months: list[str], per_month: int = 3):
    records = [record(id=f"{month}-{i}", created_at=f"{month}-1{i}T08:00:00Z", tokens_prompt=100 + i, total_cost=0.001)
               for month in months for i in range(per_month)]
    return write_jsonl(tmp_path / name, records)


def test_the_table_is_partitioned_with_this_month_and_the_next_ones():
    assert partitions.is_partitioned()
    months = partitions.partition_months()
    # The migration ran on the real clock, before the test clock (TOKENGRID_TEST_NOW may be months away) started.
    current = partitions.month_start(time_machine.escape_hatch.datetime.datetime.now(UTC))
    assert {partitions.month_add(current, n) for n in range(4)} <= set(months)


def test_upkeep_creates_the_partitions_ahead_and_is_idempotent():
    done = partitions.partitions_ensure(months_ahead=3, now=datetime(2031, 5, 10, tzinfo=UTC))
    assert done.created == [date(2031, 5, 1), date(2031, 6, 1), date(2031, 7, 1), date(2031, 8, 1)]
    assert {date(2031, 5, 1), date(2031, 8, 1)} <= set(partitions.partition_months())
    assert partitions.partitions_ensure(months_ahead=3, now=datetime(2031, 5, 10, tzinfo=UTC)).created == []


def test_rows_of_a_month_without_partition_land_in_the_default_one_and_upkeep_moves_them(tmp_path):
    batch = run_batch(_traffic(tmp_path, "old.jsonl", ["2019-03"]))
    assert batch.accepted == 3
    assert _rows_in(partitions.DEFAULT) == 3

    done = partitions.partitions_ensure(months_ahead=0)
    assert date(2019, 3, 1) in done.created
    assert done.moved_rows == 3
    assert _rows_in(partitions.DEFAULT) == 0
    assert _rows_in(partitions.partition_name(date(2019, 3, 1))) == 3
    # Still one generation each, found by the log's detail lookup (key table -> its month's partition).
    account = Account.objects.get(external_id="acct_a")
    assert generation_of(account_id=account.pk, generation_id="2019-03-1").tokens_prompt == 101
    assert run_batch(_traffic(tmp_path, "old-again.jsonl", ["2019-03"])).duplicates == 3


def test_retention_drops_only_raw_months_past_the_window_and_keeps_rollups_and_totals(tmp_path):
    months = ["2025-01", "2025-09", "2025-10", "2026-11"]
    run_batch(_traffic(tmp_path, "traffic.jsonl", months))
    partitions.partitions_ensure(months_ahead=0, now=NOW)
    before = _totals()
    assert Generation.objects.count() == 12

    # 13 months back from November 2026: October 2025 is the oldest month kept (partly in the window).
    result = partitions.retention_apply(months=13, now=NOW)

    assert result.dropped == [date(2025, 1, 1), date(2025, 9, 1)]
    assert result.horizon == datetime(2025, 10, 1, tzinfo=UTC)
    assert result.keys_deleted == 6
    assert sorted({g.created_at.strftime("%Y-%m") for g in Generation.objects.all()}) == ["2025-10", "2026-11"]
    assert not GenerationKey.objects.filter(created_at__lt=result.horizon).exists()
    assert partitions.partition_months()[0] == date(2025, 10, 1)
    assert _totals() == before  # rollups, balances and the ledger are untouched

    # A re-sent file with expired months: those records count as duplicates; nothing moves twice.
    again = run_batch(_traffic(tmp_path, "traffic-again.jsonl", months))
    assert (again.status, again.accepted, again.duplicates) == (IngestBatch.Status.DONE, 0, 12)
    assert _totals() == before
    # A second run at the same time changes nothing; 0 months keeps everything.
    assert partitions.retention_apply(months=13, now=NOW).dropped == []
    assert partitions.retention_apply(months=0, now=NOW).horizon is None
    assert Generation.objects.count() == 6


def test_retention_clears_stray_rows_below_the_horizon_from_the_default_partition(tmp_path):
    partitions.partitions_ensure(months_ahead=0, now=NOW)  # November 2026 has its partition, whatever today is
    run_batch(_traffic(tmp_path, "stray.jsonl", ["2021-06", "2026-11"]))
    assert _rows_in(partitions.DEFAULT) == 3  # 2021-06 has no partition yet

    partitions.retention_apply(months=13, now=NOW)

    assert _rows_in(partitions.DEFAULT) == 0
    assert not GenerationKey.objects.filter(id__startswith="2021-06").exists()
    # Upkeep never recreates a month below the horizon.
    assert date(2021, 6, 1) not in partitions.partitions_ensure(months_ahead=0, now=NOW).created


def _partitions_read(sql: str) -> set[str]:
    """The generation partitions an executed plan really scanned (not pruned, not `never executed`)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}")
        plan = [row[0] for row in cursor.fetchall()]
    return {m[1] for line in plan if "never executed" not in line
            and (m := re.search(r" on (analytics_generation_(?:p\d{4}_\d{2}|default))\b", line))}


def test_the_detail_and_a_dated_log_page_read_one_month(tmp_path):
    run_batch(_traffic(tmp_path, "two-months.jsonl", ["2026-10", "2026-11"]))
    partitions.partitions_ensure(months_ahead=0)  # October out of the default partition, if it is there
    account = Account.objects.get(external_id="acct_a")
    with CaptureQueriesContext(connection) as detail:
        generation_of(account_id=account.pk, generation_id="2026-10-1")
    assert _partitions_read(detail.captured_queries[-1]["sql"]) == {"analytics_generation_p2026_10"}

    november = LogFilter(start=datetime(2026, 11, 1, tzinfo=UTC), end=datetime(2026, 12, 1, tzinfo=UTC))
    with CaptureQueriesContext(connection) as page:
        assert len(generations_page(account_id=account.pk, log_filter=november).rows) == 3
    assert _partitions_read(page.captured_queries[-1]["sql"]) == {"analytics_generation_p2026_11"}


@pytest.mark.django_db(transaction=True)
def test_upkeep_outside_a_transaction_vacuums_the_default_partition_it_emptied(tmp_path):
    """As beat runs it (autocommit): the moved rows' dead index entries would slow every log page."""
    run_batch(_traffic(tmp_path, "old.jsonl", ["2018-07"]))
    try:
        assert partitions.partitions_ensure(months_ahead=0).moved_rows == 3
        with connection.cursor() as cursor:
            cursor.execute("SELECT last_vacuum IS NOT NULL, n_dead_tup FROM pg_stat_user_tables WHERE relname = %s",
                           [partitions.DEFAULT])
            vacuumed, dead = cursor.fetchone()
            assert vacuumed
            if dead:
                # VACUUM keeps a dead row that another session's snapshot could still see when it ran
                # (a thread of an earlier test, in a whole run), and that session may be gone by now
                # (a CI run on PostgreSQL 18 left 86 with nobody holding a snapshot a moment later).
                # Once no other session holds one, a VACUUM removes them all: nothing else keeps them.
                for _ in range(50):
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                   " AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL")
                    if not cursor.fetchone()[0]:
                        break
                    time.sleep(0.1)
                cursor.execute(f"VACUUM {partitions.DEFAULT}")
                cursor.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = %s", [partitions.DEFAULT])
                assert cursor.fetchone()[0] == 0
    finally:  # committed DDL outlives the flush of a transactional test
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {partitions.partition_name(date(2018, 7, 1))}")


def test_a_view_only_the_log_holds_says_where_the_log_starts_after_retention(tmp_path, client):
    """Users crossed with models are summed from generations: past the retention horizon the explorer says
    the view counts nothing before it; a view a rollup holds (kept forever) counts those months and says nothing."""
    from billing.models import Membership
    from tests.billing.factories import member_of

    records = [record(id=f"{month}-u", created_at=f"{month}-15T08:00:00Z", user="u1", total_cost=0.001)
               for month in ("2025-09", "2025-10", "2025-11")]
    run_batch(write_jsonl(tmp_path / "u.jsonl", records))
    partitions.partitions_ensure(months_ahead=0, now=NOW)
    assert partitions.retention_apply(months=13, now=NOW).horizon == datetime(2025, 10, 1, tzinfo=UTC)
    client.force_login(member_of(Account.objects.get(external_id="acct_a"), Membership.Role.OWNER, "alice"))
    view = "/account/activity/?period=custom&start=2025-09-01&end=2025-11-30&granularity=month&metric=requests"
    notice = "the log keeps generations from 2025-10-01: the view counts nothing before that day"
    with time_machine.travel(NOW, tick=False):
        crossed = client.get(view + "&group_by=user&group_by=model")
        by_model = client.get(view + "&group_by=model")
        in_range = client.get(view.replace("2025-09-01", "2025-10-01") + "&group_by=user&group_by=model")
    assert notice in crossed.content.decode()
    assert notice not in by_model.content.decode()
    assert (crossed.context["activity"].from_generations, by_model.context["activity"].from_generations) == (True, False)
    assert notice not in in_range.content.decode()
    # the requests each view counts: September is gone from the log, not from the daily rollup
    assert [(row.labels[0], row.totals.requests) for row in crossed.context["activity"].groups] == [("u1", 2)]
    assert crossed.context["activity"].total.requests == 2
    assert by_model.context["activity"].total.requests == 3
