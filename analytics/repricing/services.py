"""Repricing with provenance: staff reprice an endpoint's generations over a range at one price of its history.

`reprice_plan` is the dry run: it records a `Reprice` and, per account, the requests it would change
and the spend before and after. `reprice_apply` applies it once, batch by batch: each batch's
generations get the new cost, `cost_source` catalog and the price's id, and every rollup holding
their spend moves by the difference (a per-row delta, set-based); at the end one ledger entry per
account posts what changed, under the key `reprice:<id>:account:<account id>`. README "Repricing".

Which rows: the endpoint's generations in [start, end) priced by Tokengrid from the catalog, or left
unpriced. Never the gateway's own cost, never zero-completion insurance (failed or empty requests:
$0; rows ingested before insurance existed were priced from the catalog whatever they did, and are
told apart by their status and completion). BYOK rows are repriced like the others (their generation's cost is shown in
the log) but, as at ingestion (analytics.ingest.loader `_SPEND`), their spend is 0: they move no
rollup spend and no balance. A row already at the new cost, source and price is not changed.

The new cost is the ingestion's arithmetic (marketplace.pricing.Prices.cost, then units rounded
half-even, analytics.ingest.stage), in SQL: exact NUMERIC with the same half-even rounding, into a
work table from which everything else follows.

(Longer than 400 lines: the plan, the apply and their provenance share the one rollup walk and
lock order; split, each half would re-derive it.)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from analytics import cost_sources, rollups
from analytics.models import Reprice, RepriceAccount
from analytics.rollups import Rollup, utc_hour_day_sql
from billing.ledger import ledger_reprice
from core.money import usd_to_units
from marketplace.models import EndpointPrice, PendingPriceChange
from marketplace.price_history import endpoint_price_set
from marketplace.pricing import Prices

CATALOG = cost_sources.CATALOG.value

# A generation a reprice may change: priced from the catalog (or unpriced) by Tokengrid, and a request
# that succeeded and generated something (the others are insurance: $0 whatever the price). The predicates
# are analytics.cost_sources'; cost_source is never NULL, so NOT of either is what it says.
_ELIGIBLE = (f"({cost_sources.CATALOG.sql('g.cost_source')} OR {cost_sources.UNPRICED.sql('g.cost_source')})"
             " AND g.status >= 200 AND g.status < 300 AND g.tokens_completion > 0")
_GATEWAY = cost_sources.GATEWAY.sql("g.cost_source")
_IN_RANGE = ("g.model_id = %(model)s AND g.provider_id = %(provider)s"
             " AND g.created_at >= %(start)s AND g.created_at < %(end)s")
_SPEND_OLD = "CASE WHEN is_byok THEN 0 ELSE old_cost END"
_SPEND_NEW = "CASE WHEN is_byok THEN 0 ELSE new_cost END"

# The generic per-row delta: what each changed generation moves in every rollup that counts it. A
# generation that was unpriced (`was_unpriced` = 1) and is priced now leaves the unpriced counters
# (every rollup counts its requests, the endpoint rollups its tokens too); IngestBatch.unpriced stays
# what ingestion saw: a record of the batch, not a rollup.
ROLLUP_DELTAS = {"spend_units": f"SUM({_SPEND_NEW} - {_SPEND_OLD})", "unpriced_requests": "-SUM(was_unpriced)",
                 "unpriced_tokens": "-SUM(CASE WHEN was_unpriced = 1 AND NOT is_byok"
                                    " THEN tokens_prompt + tokens_completion ELSE 0 END)"}


def reprice_rollups() -> tuple[Rollup, ...]:
    """Every rollup carrying spend (analytics.rollups), in the loader's order: a reprice moves each."""
    return tuple(r for r in rollups.ROLLUPS if r.spend)


_TODO_COLUMNS = (("n", "bigint"), ("id", "text"), ("created_at", "timestamptz"), ("account_id", "bigint"),
                 ("is_byok", "boolean"), ("old_cost", "bigint"), ("old_source", "smallint"),
                 ("old_price_id", "bigint"), ("new_cost", "bigint"))
_CHANGED_COLUMNS = (("id", "text"), ("created_at", "timestamptz"), ("account_id", "bigint"), ("hour", "timestamptz"),
                    ("day", "date"), ("model_id", "bigint"), ("provider_id", "bigint"), ("api_key_id", "bigint"),
                    ("app_id", "bigint"), ("end_user", "text"), ("tags", "text"), ("is_byok", "boolean"),
                    ("old_cost", "bigint"), ("new_cost", "bigint"), ("was_unpriced", "smallint"),
                    ("tokens_prompt", "bigint"), ("tokens_completion", "bigint"), ("batch_id", "bigint"))


@dataclass(frozen=True)
class AccountFigures:
    """One account's part of a reprice, in units (1e-10 USD), BYOK spend excluded."""

    account_id: int
    requests: int
    old_units: int
    new_units: int

    @property
    def difference_units(self) -> int:
        return self.new_units - self.old_units


@dataclass(frozen=True)
class RepricePlan:
    """The dry run: what applying the reprice would change, per account, and what it leaves alone."""

    reprice_id: int
    accounts: list[AccountFigures]
    excluded_gateway: int
    excluded_insurance: int

    @property
    def requests(self) -> int:
        return sum(a.requests for a in self.accounts)

    @property
    def old_units(self) -> int:
        return sum(a.old_units for a in self.accounts)

    @property
    def new_units(self) -> int:
        return sum(a.new_units for a in self.accounts)

    @property
    def difference_units(self) -> int:
        return self.new_units - self.old_units


@dataclass(frozen=True)
class RepriceApplied:
    """What `reprice_apply` did: nothing when the reprice was applied before (`applied_now` False)."""

    reprice_id: int
    applied_now: bool
    batches: int = 0
    requests: int = 0
    difference_units: int = 0
    accounts_posted: list[int] = field(default_factory=list)
    batch_seconds: list[float] = field(default_factory=list)  # each batch transaction: how long rollup rows stayed locked


def reprice_price(*, price: EndpointPrice) -> Prices:
    """The price to apply, as ingestion's arithmetic reads it."""
    return Prices(price.prompt_price, price.completion_price, price.cache_read_price, price.reasoning_price)


def reprice_units(*, prices: Prices, tokens_prompt: int, tokens_completion: int, tokens_reasoning: int,
                  tokens_cached: int) -> int:
    """A generation's cost in units at `prices`, exactly as ingestion computes it (analytics.ingest.stage)."""
    cost = prices.cost(prompt=tokens_prompt, completion=tokens_completion, reasoning=tokens_reasoning,
                       cached=tokens_cached)
    return usd_to_units(cost) if cost else 0


def reprice_plan(*, model_id: int, provider_id: int, price_id: int, start: datetime, end: datetime | None = None,
                 created_by: str) -> RepricePlan:
    """Record a reprice of the endpoint's generations in [start, end) at `price_id`, and its dry run.

    `end` defaults to the next price of the endpoint's history after this one, else now: the
    price applies where it is the one in force. Raises ValueError when the price is not one of the
    endpoint's or the range is empty.
    """
    price = EndpointPrice.objects.select_related("endpoint").get(pk=price_id)
    if (price.endpoint.model_id, price.endpoint.provider_id) != (model_id, provider_id):
        raise ValueError("the price is not one of this endpoint's")
    if end is None:
        later = (EndpointPrice.objects.filter(endpoint_id=price.endpoint_id, valid_from__gt=price.valid_from)
                 .order_by("valid_from").values_list("valid_from", flat=True).first())
        end = later or timezone.now()
    if not start < end:
        raise ValueError("the range is empty: start must be before end")
    with transaction.atomic():
        reprice = Reprice.objects.create(model_id=model_id, provider_id=provider_id, price=price, start=start,
                                         end=end, created_by=created_by)
        _todo_fill(reprice, price)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO analytics_repriceaccount (reprice_id, account_id, requests, old_units, new_units,"
                " applied_requests, applied_old_units, applied_new_units)"
                f" SELECT %s, account_id, COUNT(*), SUM({_SPEND_OLD}), SUM({_SPEND_NEW}), 0, 0, 0"
                " FROM reprice_todo GROUP BY account_id ORDER BY account_id", [reprice.pk])
            gateway, insurance = _excluded(cursor, reprice)
        Reprice.objects.filter(pk=reprice.pk).update(excluded_gateway=gateway, excluded_insurance=insurance)
    return reprice_plan_read(reprice_id=reprice.pk)


def reprice_plan_read(*, reprice_id: int) -> RepricePlan:
    """Read a reprice's dry run back (the staff page)."""
    reprice = Reprice.objects.get(pk=reprice_id)
    rows = RepriceAccount.objects.filter(reprice_id=reprice_id, requests__gt=0).order_by("account_id").values_list(
        "account_id", "requests", "old_units", "new_units")
    return RepricePlan(reprice_id=reprice_id, accounts=[AccountFigures(*row) for row in rows],
                       excluded_gateway=reprice.excluded_gateway, excluded_insurance=reprice.excluded_insurance)


def reprice_applied_read(*, reprice_id: int) -> list[AccountFigures]:
    """What applying a reprice changed, per account (equal to the plan unless ingestion added rows in between)."""
    rows = RepriceAccount.objects.filter(reprice_id=reprice_id, applied_requests__gt=0).order_by(
        "account_id").values_list("account_id", "applied_requests", "applied_old_units", "applied_new_units")
    return [AccountFigures(*row) for row in rows]


def reprice_apply(*, reprice_id: int, actor: str, batch_rows: int | None = None) -> RepriceApplied:
    """Apply a planned reprice once: generations, rollups and one ledger entry per account; again, a no-op.

    The rows to change are read first (one scan of the range, no lock), then changed in batches
    of REPRICE_BATCH_ROWS rows, one transaction each, so ingestion waits at most about a chunk's time
    on a rollup row. A batch takes its locks in the order ingestion does
    (analytics.ingest.loader, billing.lock_objects): the reprice row, which no chunk takes; the
    batch's generation rows, which no chunk locks (chunks insert new rows, keyed through
    `analytics_generationkey`); then the rollups table by table in the loader's order (endpoint
    hours, endpoint days, app days, account days, account hours), each table's rows in its key
    order, as the loader's `GROUP BY key ORDER BY key` upserts take them; the accounts last, in id
    order, in the final transaction (billing.ledger), as a chunk's debit does after its rollups. Two
    transactions that both take locks in one global order cannot wait on each other in a cycle,
    so a reprice cannot deadlock with a chunk (nor with another reprice).

    Each batch re-checks its rows (cost, source and price as read) under their lock and adds what
    it changed to the reprice's per-account figures; an interrupted apply (status `applying`)
    resumes with the rows not yet changed. The ledger entries are posted from those figures in the
    last transaction, which marks the reprice applied; their idempotency keys make a second post
    impossible. After commit: the accounts' usage versions and the rankings version move.
    """
    from analytics.rankings.cache import rankings_invalidate
    from analytics.usage.tasks import usage_refresh
    from billing.tasks import billing_after_debit

    batch_rows = batch_rows or settings.REPRICE_BATCH_ROWS
    with transaction.atomic():
        reprice = Reprice.objects.select_for_update().select_related("price", "model").get(pk=reprice_id)
        if reprice.status == Reprice.Status.APPLIED:
            return RepriceApplied(reprice_id=reprice_id, applied_now=False)
        Reprice.objects.filter(pk=reprice_id).update(status=Reprice.Status.APPLYING)
        todo = _todo_fill(reprice, reprice.price)
    batch_seconds = []
    for low in range(0, todo, batch_rows):
        started = time.perf_counter()
        with transaction.atomic():
            Reprice.objects.select_for_update().filter(pk=reprice_id).values_list("pk", flat=True).get()
            _batch_apply(reprice, low, low + batch_rows)
        batch_seconds.append(time.perf_counter() - started)
    batches = len(batch_seconds)
    with transaction.atomic():
        reprice = Reprice.objects.select_for_update().select_related("model").get(pk=reprice_id)
        if reprice.status == Reprice.Status.APPLIED:  # a concurrent apply finished first
            return RepriceApplied(reprice_id=reprice_id, applied_now=False, batches=batches)
        figures = reprice_applied_read(reprice_id=reprice_id)
        debits = {a.account_id: a.difference_units for a in figures}
        posted = ledger_reprice(debit_by_account=debits, idempotency_prefix=f"reprice:{reprice_id}",
                                reference=f"reprice:{reprice_id}", actor=actor,
                                memo=reprice_memo(reprice=reprice))
        Reprice.objects.filter(pk=reprice_id).update(status=Reprice.Status.APPLIED, applied_at=timezone.now())
        accounts = [a.account_id for a in figures]
        charged = [account_id for account_id in posted if debits[account_id] > 0]

        def after_commit() -> None:
            usage_refresh(account_ids=accounts)
            rankings_invalidate()
            if charged:
                billing_after_debit.delay(charged)

        transaction.on_commit(after_commit)
    return RepriceApplied(reprice_id=reprice_id, applied_now=True, batches=batches,
                          requests=sum(a.requests for a in figures),
                          difference_units=sum(a.difference_units for a in figures), accounts_posted=posted,
                          batch_seconds=batch_seconds)


def reprice_memo(*, reprice: Reprice) -> str:
    """The statement's line for a reprice's ledger entry."""
    return f"Repricing of {reprice.model.slug} from {reprice.start:%Y-%m-%d}"



# The work tables ------------------------------------------------------------------------------------

def _temp_table(cursor, name: str, columns, *, per_transaction: bool) -> None:
    spec = ", ".join(f"{c} {kind}" for c, kind in columns)
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({spec})"
                   + (" ON COMMIT DELETE ROWS" if per_transaction else ""))
    cursor.execute(f"TRUNCATE {name}")


def _range_params(reprice: Reprice) -> dict:
    adapt = connection.ops.adapt_datetimefield_value
    return {"model": reprice.model_id, "provider": reprice.provider_id, "start": adapt(reprice.start),
            "end": adapt(reprice.end)}


def _todo_fill(reprice: Reprice, price: EndpointPrice) -> int:
    """Fill `reprice_todo` (this connection's) with the rows the reprice changes, numbered in time order."""
    prices = reprice_price(price=price)
    params = {**_range_params(reprice), "price": price.pk}
    with connection.cursor() as cursor:
        _temp_table(cursor, "reprice_todo", _TODO_COLUMNS, per_transaction=False)
        params.update(prompt=prices.prompt, completion=prices.completion,
                      cache_read=prices.prompt if prices.cache_read is None else prices.cache_read,
                      reasoning=prices.completion if prices.reasoning is None else prices.reasoning)
        # Prices.parts in NUMERIC (exact), then units rounded half-even as Decimal.quantize does:
        # floor, plus one above a half, or at exactly a half when the floor is odd.
        cursor.execute(
            "INSERT INTO reprice_todo SELECT row_number() OVER (ORDER BY g.created_at, g.id), g.id, g.created_at,"
            " g.account_id, g.is_byok, g.cost_units, g.cost_source, g.price_id, c.new_cost"
            " FROM analytics_generation g"
            " CROSS JOIN LATERAL (SELECT ((g.tokens_prompt - LEAST(g.tokens_cached, g.tokens_prompt))"
            " * CAST(%(prompt)s AS numeric) + LEAST(g.tokens_cached, g.tokens_prompt) * CAST(%(cache_read)s AS numeric)"
            " + (g.tokens_completion - LEAST(g.tokens_reasoning, g.tokens_completion)) * CAST(%(completion)s AS numeric)"
            " + LEAST(g.tokens_reasoning, g.tokens_completion) * CAST(%(reasoning)s AS numeric))"
            " * 10000000000 AS x) AS u"
            " CROSS JOIN LATERAL (SELECT CAST(floor(u.x) + CASE WHEN u.x - floor(u.x) > 0.5 THEN 1"
            " WHEN u.x - floor(u.x) < 0.5 THEN 0 WHEN mod(floor(u.x), 2) = 1 THEN 1 ELSE 0 END AS bigint)"
            " AS new_cost) AS c"
            f" WHERE {_IN_RANGE} AND {_ELIGIBLE}"
            f" AND (g.cost_units <> c.new_cost OR g.price_id IS DISTINCT FROM %(price)s"
            f" OR g.cost_source IS DISTINCT FROM {CATALOG})", params)
        count = cursor.rowcount
        cursor.execute("CREATE INDEX IF NOT EXISTS reprice_todo_n ON reprice_todo (n)")
        cursor.execute("ANALYZE reprice_todo")
        return count


def _excluded(cursor, reprice: Reprice) -> tuple[int, int]:
    """The endpoint's rows in range that no reprice touches: the gateway's costs, and insurance."""
    cursor.execute(
        f"SELECT SUM(CASE WHEN {_GATEWAY} THEN 1 ELSE 0 END),"
        f" SUM(CASE WHEN NOT {_GATEWAY} AND NOT ({_ELIGIBLE}) THEN 1 ELSE 0 END)"
        f" FROM analytics_generation g WHERE {_IN_RANGE}", _range_params(reprice))
    gateway, insurance = cursor.fetchone()
    return int(gateway or 0), int(insurance or 0)


def _rollup_sql(rollup: Rollup) -> str:
    """Move a rollup's rows by the changed rows' deltas, locking them in key order."""
    table, keys, where = rollup.table, rollup.keys, rollup.where
    deltas = {column: delta for column, delta in ROLLUP_DELTAS.items() if column in rollup.counters}
    key_list = ", ".join(keys)
    sums = ", ".join(f"{expr} AS {column}" for column, expr in deltas.items())
    delta = f"SELECT {key_list}, {sums} FROM reprice_changed WHERE {where} GROUP BY {key_list}"
    match = " AND ".join(f"t.{k} = d.{k}" for k in keys)
    order = ", ".join(f"t.{k}" for k in keys)
    moved = ", ".join(f"d.{c}" for c in deltas)
    sets = ", ".join(f"{c} = {table}.{c} + l.{c}" for c in deltas)
    # Matched by its key (the account rollups have no `id`: their key is their primary key).
    locked = ", ".join(f"t.{k}" for k in keys)
    same = " AND ".join(f"{table}.{k} = l.{k}" for k in keys)
    return (f"WITH d AS ({delta}), l AS (SELECT {locked}, {moved} FROM {table} t JOIN d ON {match}"
            f" ORDER BY {order} FOR UPDATE OF t)"
            f" UPDATE {table} SET {sets} FROM l WHERE {same}")


def _batch_apply(reprice: Reprice, low: int, high: int) -> None:
    """Change the todo rows numbered (low, high]: generations, rollups, the reprice's per-account figures."""
    hour, day = utc_hour_day_sql("g.created_at")  # as the loader stores them
    with connection.cursor() as cursor:
        _temp_table(cursor, "reprice_changed", _CHANGED_COLUMNS, per_transaction=True)
        # The rows still as the todo read them (locked first): another reprice may have changed some.
        cursor.execute(
            f"INSERT INTO reprice_changed SELECT g.id, g.created_at, g.account_id, {hour}, {day}, g.model_id,"
            " g.provider_id, COALESCE(g.api_key_id, 0), COALESCE(g.app_id, 0), g.end_user, g.tags, g.is_byok,"
            f" t.old_cost, t.new_cost, CASE WHEN {cost_sources.UNPRICED.sql('g.cost_source')} THEN 1 ELSE 0 END,"
            " g.tokens_prompt,"
            " g.tokens_completion, g.batch_id"
            " FROM reprice_todo t JOIN analytics_generation g ON g.account_id = t.account_id"
            " AND g.created_at = t.created_at AND g.id = t.id"
            " WHERE t.n > %s AND t.n <= %s AND g.cost_units = t.old_cost"
            " AND g.cost_source IS NOT DISTINCT FROM t.old_source"
            " AND g.price_id IS NOT DISTINCT FROM t.old_price_id FOR UPDATE OF g", [low, high])
        if not cursor.rowcount:
            return
        cursor.execute("ANALYZE reprice_changed")
        cursor.execute(
            f"UPDATE analytics_generation SET cost_units = c.new_cost, cost_source = {CATALOG}, price_id = %s"
            " FROM reprice_changed c WHERE analytics_generation.account_id = c.account_id"
            " AND analytics_generation.created_at = c.created_at AND analytics_generation.id = c.id",
            [reprice.price_id])
        for rollup in reprice_rollups():
            cursor.execute(_rollup_sql(rollup))
        cursor.execute(
            "INSERT INTO analytics_repriceaccount (reprice_id, account_id, requests, old_units, new_units,"
            " applied_requests, applied_old_units, applied_new_units)"
            f" SELECT %s, account_id, 0, 0, 0, COUNT(*), SUM({_SPEND_OLD}), SUM({_SPEND_NEW})"
            " FROM reprice_changed WHERE 1 = 1 GROUP BY account_id ORDER BY account_id"
            " ON CONFLICT (reprice_id, account_id) DO UPDATE SET"
            " applied_requests = analytics_repriceaccount.applied_requests + EXCLUDED.applied_requests,"
            " applied_old_units = analytics_repriceaccount.applied_old_units + EXCLUDED.applied_old_units,"
            " applied_new_units = analytics_repriceaccount.applied_new_units + EXCLUDED.applied_new_units",
            [reprice.pk])


def pending_change_plan(*, change_id: int, created_by: str) -> RepricePlan:
    """Take up a price change catalog_sync held back (marketplace.PendingPriceChange): write its new price into
    the endpoint's history at its start and plan the reprice of the requests billed at the old one.

    When that price is the one in force now, the endpoint's listed price becomes it too (`endpoint_price_set`).
    The range is the change's: from `reprice_from` (or, for the history's first price, which also priced
    what came before it, from the first billed request) to `reprice_until` (or the next price, else now).
    The change is then applied (its price is in force for new requests at once); the billed requests
    change when staff apply the planned reprice. Raises ValueError unless the change is pending.
    """
    with transaction.atomic():
        change = PendingPriceChange.objects.select_for_update().select_related("endpoint").get(pk=change_id)
        if change.status != PendingPriceChange.Status.PENDING:
            raise ValueError(f"price change {change_id} is {change.status}, not pending")
        endpoint = change.endpoint
        price = endpoint_price_set(model_id=endpoint.model_id, provider_id=endpoint.provider_id,
                                   valid_from=change.valid_from, prompt=change.new_prompt_price,
                                   completion=change.new_completion_price, cache_read=change.new_cache_read_price,
                                   reasoning=change.new_reasoning_price)
        start = change.reprice_from or change.billed_since or change.valid_from
        plan = reprice_plan(model_id=endpoint.model_id, provider_id=endpoint.provider_id, price_id=price.pk,
                            start=start, end=change.reprice_until, created_by=created_by)
        change.status, change.resolved_at = PendingPriceChange.Status.APPLIED, timezone.now()
        change.save(update_fields=["status", "resolved_at"])
    return plan


def pending_change_dismiss(*, change_id: int) -> None:
    """Keep the old price for good: a later catalog_sync does not raise the same change again."""
    updated = PendingPriceChange.objects.filter(pk=change_id, status=PendingPriceChange.Status.PENDING).update(
        status=PendingPriceChange.Status.DISMISSED, resolved_at=timezone.now())
    if not updated:
        raise ValueError(f"price change {change_id} is not pending")
