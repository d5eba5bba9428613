"""Property: whatever the records and chunking, rollups equal a direct aggregate of generations."""
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate, TruncHour
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics import rollups
from analytics.models import (
    AccountHour,
    AppDay,
    EndpointDay,
    EndpointHour,
    Generation,
    GenerationKey,
    IngestBatch,
)
from analytics.usage import sources
from billing.models import Account, LedgerEntry
from core.money import usd_to_units
from tests.analytics.conftest import run_batch, write_jsonl

pytestmark = pytest.mark.django_db

PROVIDERS = ["Alpha", "Beta", "Gamma"]
record_strategy = st.fixed_dictionaries({
    "id": st.integers(0, 60).map(lambda i: f"g{i}"),  # small id space: duplicates happen
    "created_at": st.tuples(st.integers(1, 3), st.integers(0, 23), st.integers(0, 59)).map(
        lambda t: f"2026-02-0{t[0]}T{t[1]:02d}:{t[2]:02d}:00Z"),
    "account": st.sampled_from(["a1", "a2"]),
    "api_key": st.sampled_from(["k1", "k2", None]),
    "model": st.sampled_from(["lab/m1", "lab/m2"]),
    "provider_name": st.sampled_from(PROVIDERS),
    "origin": st.sampled_from(["https://one.example", None]),
    "tokens_prompt": st.integers(0, 5000),
    "tokens_completion": st.integers(0, 2000),
    "total_cost": st.decimals(min_value=0, max_value=Decimal("0.5"), places=8).map(float),
    "is_byok": st.booleans(),
    "status": st.sampled_from([200, 200, 200, 500]),
    "latency": st.integers(1, 5000),
    "user": st.sampled_from(["u1", "u2", None]),
    "tags": st.sampled_from([None, ["a"], ["b", "a"], ["b"]]),
    "provider_responses": st.one_of(st.none(), st.lists(st.fixed_dictionaries({
        "provider_name": st.sampled_from(PROVIDERS), "status": st.sampled_from([200, 502])}), min_size=1, max_size=3)),
})


def _clean():
    for model in (*(r.model for r in rollups.ROLLUPS), Generation, GenerationKey, LedgerEntry, IngestBatch):
        model.objects.all().delete()
    Account.objects.update(balance_units=0)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(records=st.lists(record_strategy, max_size=40), chunk_lines=st.integers(1, 15))
def test_rollups_equal_a_direct_aggregate_of_generations(records, chunk_lines, settings):
    _clean()
    settings.INGEST_CHUNK_LINES = chunk_lines
    rows = [{k: v for k, v in r.items() if v is not None} for r in records]
    with tempfile.TemporaryDirectory() as folder:
        batch = run_batch(write_jsonl(Path(folder) / "p.jsonl", rows))

    first_by_id = {}
    for r in rows:
        first_by_id.setdefault(r["id"], r)
    assert batch.accepted == len(first_by_id)
    assert batch.accepted + batch.duplicates == len(rows)

    spend = Sum("cost_units", filter=Q(is_byok=False))
    direct = {
        (row["hour"], row["model_id"], row["provider_id"]): (row["n"], row["p"], row["c"], row["s"] or 0, row["f"])
        for row in Generation.objects.annotate(hour=TruncHour("created_at")).values("hour", "model_id", "provider_id")
        .annotate(n=Count("id"), p=Sum("tokens_prompt"), c=Sum("tokens_completion"), s=spend,
                  f=Count("id", filter=~Q(status=200)))
    }
    rolled = {
        (r.hour, r.model_id, r.provider_id): (r.requests, r.tokens_prompt, r.tokens_completion, r.spend_units, r.failed)
        for r in EndpointHour.objects.filter(requests__gt=0)
    }
    assert rolled == direct

    # The daily rollup is the hourly one summed by date, attempts included.
    daily = {}
    for r in EndpointHour.objects.all():
        key = (r.hour.date(), r.model_id, r.provider_id)
        daily[key] = tuple(a + b for a, b in zip(daily.get(key, (0,) * 5), (
            r.requests, r.tokens_prompt, r.spend_units, r.attempts, r.failed_attempts), strict=True))
    assert {(r.day, r.model_id, r.provider_id): (r.requests, r.tokens_prompt, r.spend_units, r.attempts,
                                                  r.failed_attempts) for r in EndpointDay.objects.all()} == daily

    by_account = {
        (row["account_id"], row["hour"]): (row["n"], row["s"] or 0)
        for row in Generation.objects.annotate(hour=TruncHour("created_at")).values("account_id", "hour")
        .annotate(n=Count("id"), s=spend)
    }
    account_rolled = {}
    for r in AccountHour.objects.all():
        n, s = account_rolled.get((r.account_id, r.hour), (0, 0))
        account_rolled[(r.account_id, r.hour)] = (n + r.requests, s + r.spend_units)
    assert account_rolled == by_account

    rollups_assert_equal_generations()

    apps = dict(Generation.objects.filter(app__isnull=False).annotate(day=TruncDate("created_at"))
                .values("day").annotate(n=Count("id")).values_list("day", "n"))
    app_rolled = {}
    for r in AppDay.objects.all():
        app_rolled[r.day] = app_rolled.get(r.day, 0) + r.requests
    assert app_rolled == apps

    # Attempts: every provider_responses entry (or the final status) counts once, against its provider.
    attempts = sum(len(r.get("provider_responses") or [None]) for r in first_by_id.values())
    assert (EndpointHour.objects.aggregate(a=Sum("attempts"))["a"] or 0) == attempts

    # The ledger: each account debited exactly its non-BYOK spend, and balance = sum of entries.
    truth = {}
    for r in first_by_id.values():
        if not r["is_byok"]:
            truth[r["account"]] = truth.get(r["account"], 0) + usd_to_units(Decimal(repr(r["total_cost"])))
    for account in Account.objects.all():
        entries = LedgerEntry.objects.filter(account=account).aggregate(s=Sum("amount_units"))["s"] or 0
        assert account.balance_units == entries == -truth.get(account.external_id, 0)


def rollups_assert_equal_generations() -> None:
    """Each rollup fed one row per generation (analytics.rollups), row by row and counter by counter, equals
    the generations summed by its own counters; an account rollup also equals them summed as the usage
    queries sum them when no rollup answers (analytics.usage.sources): the paths agree."""
    start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)  # every generation
    for rollup in rollups.ROLLUPS:
        if not rollup.per_generation:
            continue
        keys, counters = rollup.keys, tuple(rollup.counters)
        stored = {tuple(row[:len(keys)]): tuple(row[len(keys):])
                  for row in rollup.model.objects.values_list(*keys, *counters)}
        sums = ", ".join(f"COALESCE(CAST({expr} AS BIGINT), 0)" for expr in rollup.counters.values())
        assert stored == _summed(f"SELECT {', '.join(keys)}, {sums} FROM {rollups.generation_rows_sql('1 = 1')} r"
                                 f" WHERE {rollup.where} GROUP BY {', '.join(keys)}", [], len(keys)), rollup.table
        if not rollup.account:
            continue
        for account_id in Account.objects.values_list("pk", flat=True):
            rows = sources.account_rows(account_id, start, end, hourly=rollup.grain == "hour",
                                        columns=["end_user", "tags"])
            assert rows.generations
            dims = keys[1:]
            summed = _summed(f"SELECT {', '.join(dims)}, {rows.sums_of(counters)} {rows.sql} AND {rollup.where}"
                             f" GROUP BY {', '.join(dims)}", rows.params, len(dims))
            assert {k[1:]: v for k, v in stored.items() if k[0] == account_id} == summed, rollup.table
            # What the pages read for the rollup's columns (the user and tag rollups' "none" rows derived)
            # is every generation's, the rows the rollup leaves out included.
            everything = _summed(f"SELECT {', '.join(dims)}, {rows.sums_of(counters)} {rows.sql}"
                                 f" GROUP BY {', '.join(dims)}", rows.params, len(dims))
            read = sources.account_rows(account_id, start, end, hourly=rollup.grain == "hour", columns=dims)
            assert not read.generations
            assert _summed(f"SELECT {', '.join(dims)}, {read.sums_of(counters)} {read.sql}"
                           f" GROUP BY {', '.join(dims)}", read.params, len(dims)) == everything, rollup.table


def _summed(sql: str, params: list, width: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {tuple(row[:width]): tuple(int(v) for v in row[width:]) for row in cursor.fetchall()}
