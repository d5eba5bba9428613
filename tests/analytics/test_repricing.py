"""Repricing (analytics.repricing): dry run, apply, idempotency, what is never repriced, rollups, ledger, statement."""
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from analytics import ingest
from analytics import models as rollups
from analytics.models import Generation, Reprice, RepriceAccount
from analytics.repricing import tasks as repricing_tasks
from analytics.repricing.services import (
    reprice_applied_read,
    reprice_apply,
    reprice_plan,
    reprice_plan_read,
    reprice_rollups,
    reprice_units,
)
from billing.ledger import ledger_verify
from billing.models import Account, LedgerEntry
from billing.statements import statement_month
from marketplace.models import EndpointPrice, Model, PendingPriceChange, Provider
from marketplace.price_history import endpoint_price_set
from marketplace.pricing import Prices
from tests.analytics.conftest import at, record, run_batch, write_jsonl
from tests.conftest import TODAY
from tests.marketplace.factories import EndpointFactory

pytestmark = pytest.mark.django_db

FROM = TODAY - timedelta(days=10)  # the corrected price applies from this day
START = datetime.combine(FROM, time(0), tzinfo=UTC)
END = datetime.combine(TODAY - timedelta(days=1), time(0), tzinfo=UTC)
ALPHA = {"model": "lab/alpha", "provider_name": "ProvOne"}
# The price in force before (from the year 2000): $1 / $2 per 1M prompt / completion tokens.
OLD = {"prompt": Decimal("0.000001"), "completion": Decimal("0.000002")}
# The corrected price: $3 / $7, cache reads $1.50, reasoning as completion.
NEW = {"prompt": Decimal("0.000003"), "completion": Decimal("0.000007"), "cache_read": Decimal("0.0000015")}


def _day(days_after_from: int, hour: int = 10) -> str:
    return at(FROM + timedelta(days=days_after_from), hour)


def _traffic(tmp_path) -> dict:
    """Account A: two catalog rows in range (one BYOK), a gateway row, a failed row, one before the range;
    account B: a catalog row with an app and a row ingested unpriced (before the endpoint existed); a
    row of another endpoint."""
    unpriced = run_batch(write_jsonl(tmp_path / "early.jsonl", [
        record(id="b2", created_at=_day(2, 9), account="acct_b", api_key="kb", tokens_prompt=1000,
               tokens_completion=1000, total_cost=..., **ALPHA)]))
    assert unpriced.accepted == 1
    endpoint = EndpointFactory(model=Model.objects.get(slug="lab/alpha"), provider=Provider.objects.get(name="ProvOne"),
                               prompt_price=OLD["prompt"], completion_price=OLD["completion"])
    old = EndpointPrice.objects.create(endpoint=endpoint, valid_from=datetime(2000, 1, 1, tzinfo=UTC),
                                       prompt_price=OLD["prompt"], completion_price=OLD["completion"])
    EndpointFactory(model__slug="lab/beta", provider=Provider.objects.get(name="ProvOne"),
                    prompt_price=OLD["prompt"], completion_price=OLD["completion"])
    ingest.pricebook_reset()
    batch = run_batch(write_jsonl(tmp_path / "traffic.jsonl", [
        record(id="a1", created_at=_day(1), account="acct_a", tokens_prompt=1000, tokens_completion=500,
               native_tokens_reasoning=100, native_tokens_cached=200, total_cost=..., **ALPHA),
        record(id="a2", created_at=_day(2, 11), account="acct_a", tokens_prompt=100, tokens_completion=100,
               is_byok=True, total_cost=..., **ALPHA),
        record(id="a3", created_at=_day(3), account="acct_a", total_cost=0.5, **ALPHA),
        record(id="a4", created_at=_day(4), account="acct_a", status=500, tokens_completion=0, latency=None,
               total_cost=..., **ALPHA),
        record(id="a5", created_at=at(FROM - timedelta(days=5), 8), account="acct_a", tokens_prompt=100,
               tokens_completion=200, total_cost=..., **ALPHA),
        record(id="b1", created_at=_day(1, 9), account="acct_b", api_key="kb", origin="https://b.example/",
               tokens_prompt=10, tokens_completion=10, total_cost=..., **ALPHA),
        record(id="c1", created_at=_day(1, 12), account="acct_b", api_key="kb", model="lab/beta",
               provider_name="ProvOne", tokens_prompt=10, tokens_completion=10, total_cost=...),
    ]))
    assert batch.accepted == 7
    new = endpoint_price_set(model_id=endpoint.model_id, provider_id=endpoint.provider_id, valid_from=START, **NEW)
    return {"endpoint": endpoint, "old": old, "new": new, "a": Account.objects.get(external_id="acct_a"),
            "b": Account.objects.get(external_id="acct_b")}


def _plan(world, **kwargs):
    e = world["endpoint"]
    return reprice_plan(model_id=e.model_id, provider_id=e.provider_id, price_id=world["new"].pk, start=START,
                        end=kwargs.pop("end", END), created_by="staff", **kwargs)


def _direct_aggregate(keys: tuple[str, ...], where: str) -> dict:
    """A rollup's requests and spend as a direct aggregate over the generations."""
    truth: Counter = Counter()
    requests: Counter = Counter()
    for g in Generation.objects.all():
        fields = {"hour": g.created_at.replace(minute=0, second=0, microsecond=0), "day": g.created_at.date(),
                  "model_id": g.model_id, "provider_id": g.provider_id, "account_id": g.account_id,
                  "api_key_id": g.api_key_id or 0, "app_id": g.app_id or 0, "end_user": g.end_user, "tags": g.tags}
        if not {"1 = 1": True, "app_id <> 0": fields["app_id"] != 0, "end_user <> ''": fields["end_user"] != "",
                    "tags <> ''": fields["tags"] != ""}[where]:
            continue
        key = tuple(fields[k] for k in keys)
        truth[key] += 0 if g.is_byok else g.cost_units
        requests[key] += 1
    return {key: (requests[key], truth[key]) for key in requests}


def rollups_assert_equal_generations() -> None:
    """Every rollup holding spend equals a direct aggregate of the generations, row by row."""
    for rollup in reprice_rollups():
        stored = {tuple(row[:-2]): (row[-2], row[-1]) for row in rollup.model.objects.values_list(
            *rollup.keys, "requests", "spend_units")}
        assert stored == _direct_aggregate(rollup.keys, rollup.where), rollup.table


def books_assert_balanced() -> None:
    assert ledger_verify().problems == []
    call_command("ledger_verify")
    for account in Account.objects.all():
        assert account.balance_units == LedgerEntry.objects.filter(account=account).aggregate(
            s=Sum("amount_units"))["s"]


def test_every_rollup_summing_spend_is_repriced():
    """Every model with spend is a rollup declared with spend (analytics.rollups), which a reprice moves."""
    with_spend = {m._meta.db_table for m in rollups.__dict__.values()
                  if isinstance(m, type) and issubclass(m, rollups._Usage) and not m._meta.abstract}
    assert with_spend == {r.table for r in reprice_rollups()}


def test_ingestion_records_each_generations_price_reference(tmp_path):
    world = _traffic(tmp_path)
    sources = dict(Generation.objects.values_list("id", "cost_source"))
    prices = dict(Generation.objects.values_list("id", "price_id"))
    source = Generation.CostSource
    assert sources == {"a1": source.CATALOG, "a2": source.CATALOG, "a3": source.GATEWAY, "a4": source.INSURANCE,
                       "a5": source.CATALOG, "b1": source.CATALOG, "b2": source.UNPRICED, "c1": source.CATALOG}
    # The catalog rows of alpha name the history row in force; lab/beta has no history (current price): none.
    assert prices == {"a1": world["old"].pk, "a2": world["old"].pk, "a3": None, "a4": None, "a5": world["old"].pk,
                      "b1": world["old"].pk, "b2": None, "c1": None}


def test_the_dry_run_shows_each_accounts_requests_and_spend_and_changes_nothing(tmp_path):
    world = _traffic(tmp_path)
    costs_before = dict(Generation.objects.values_list("id", "cost_units"))
    plan = _plan(world)
    figures = {a.account_id: (a.requests, a.old_units, a.new_units, a.difference_units) for a in plan.accounts}
    # a1: 800 x $3 + 200 x $1.50 + 400 x $7 + 100 x $7 (per 1M) = $0.0062, was 1000 x $1 + 500 x $2 = $0.002.
    # a2 is BYOK: its cost is repriced, its spend is 0 either way.
    # b1: 10 x $3 + 10 x $7 = $0.0001, was $0.00003; b2 (unpriced, $0): 1000 x $3 + 1000 x $7 = $0.01.
    assert figures == {world["a"].pk: (2, 20_000_000, 62_000_000, 42_000_000),
                       world["b"].pk: (2, 300_000, 101_000_000, 100_700_000)}
    assert (plan.requests, plan.difference_units) == (4, 142_700_000)
    assert (plan.excluded_gateway, plan.excluded_insurance) == (1, 1)
    assert Reprice.objects.get().status == Reprice.Status.PLANNED
    assert dict(Generation.objects.values_list("id", "cost_units")) == costs_before
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REPRICING).exists()


@pytest.mark.parametrize("batch_rows", [None, 1])
def test_applying_changes_exactly_what_the_dry_run_showed(tmp_path, batch_rows):
    world = _traffic(tmp_path)
    rollups_assert_equal_generations()
    unpriced = {m: ("unpriced_requests", "unpriced_tokens") if m in (rollups.EndpointDay, rollups.EndpointHour)
                else ("unpriced_requests",) for m in (rollups.EndpointDay, rollups.EndpointHour, rollups.AccountDay,
                                                      rollups.AccountHour)}
    for model, columns in unpriced.items():  # b2: 1 request, 2,000 tokens ingested unpriced
        assert [model.objects.aggregate(s=Sum(c))["s"] for c in columns] == [1, 2000][:len(columns)], model
    spend_before = {m: m.objects.aggregate(s=Sum("spend_units"))["s"] for m in (rollups.EndpointDay, rollups.AccountHour)}
    app_before = rollups.AppDay.objects.aggregate(s=Sum("spend_units"))["s"]
    balances_before = dict(Account.objects.values_list("pk", "balance_units"))
    plan = _plan(world)

    result = reprice_apply(reprice_id=plan.reprice_id, actor="staff", batch_rows=batch_rows)

    assert result.applied_now
    assert result.requests == plan.requests == 4
    assert result.batches == (4 if batch_rows == 1 else 1)
    assert reprice_applied_read(reprice_id=plan.reprice_id) == plan.accounts
    assert result.difference_units == plan.difference_units
    for model, before in spend_before.items():
        assert model.objects.aggregate(s=Sum("spend_units"))["s"] - before == plan.difference_units, model
    assert rollups.AppDay.objects.aggregate(s=Sum("spend_units"))["s"] - app_before == 700_000  # b1 has the app
    rollups_assert_equal_generations()
    for model, columns in unpriced.items():  # b2 is priced now: it leaves the unpriced counters
        assert [model.objects.aggregate(s=Sum(c))["s"] for c in columns] == [0, 0][:len(columns)], model
    rows = {g.id: (g.cost_units, g.cost_source, g.price_id) for g in Generation.objects.all()}
    catalog, new, old = Generation.CostSource.CATALOG, world["new"].pk, world["old"].pk
    assert rows["a1"] == (62_000_000, catalog, new)
    assert rows["a2"] == (10_000_000, catalog, new)  # BYOK: the cost is the new price's
    assert rows["b1"] == (1_000_000, catalog, new)
    assert rows["b2"] == (100_000_000, catalog, new)  # unpriced, now priced
    assert rows["a5"] == (5_000_000, catalog, old)  # before the range
    assert rows["a3"] == (5_000_000_000, Generation.CostSource.GATEWAY, None)
    assert rows["a4"] == (0, Generation.CostSource.INSURANCE, None)
    balances = dict(Account.objects.values_list("pk", "balance_units"))
    assert balances[world["a"].pk] == balances_before[world["a"].pk] - 42_000_000
    assert balances[world["b"].pk] == balances_before[world["b"].pk] - 100_700_000
    entries = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REPRICING).order_by("account_id")
    assert [(e.account_id, e.amount_units, e.idempotency_key) for e in entries] == sorted([
        (world["a"].pk, -42_000_000, f"reprice:{plan.reprice_id}:account:{world['a'].pk}"),
        (world["b"].pk, -100_700_000, f"reprice:{plan.reprice_id}:account:{world['b'].pk}")])
    assert Reprice.objects.get().status == Reprice.Status.APPLIED
    books_assert_balanced()


def test_applying_twice_equals_applying_once_and_a_new_reprice_finds_nothing(tmp_path):
    world = _traffic(tmp_path)
    plan = _plan(world)
    reprice_apply(reprice_id=plan.reprice_id, actor="staff")
    state = (sorted(Generation.objects.values_list("id", "cost_units", "price_id")),
             sorted(rollups.AccountHour.objects.values_list("pk", "spend_units")),
             sorted(LedgerEntry.objects.values_list("id", "amount_units")),
             sorted(Account.objects.values_list("id", "balance_units")))

    again = reprice_apply(reprice_id=plan.reprice_id, actor="staff")
    second = _plan(world)
    applied_second = reprice_apply(reprice_id=second.reprice_id, actor="staff")

    assert not again.applied_now
    assert second.accounts == []
    assert applied_second.requests == 0
    assert applied_second.accounts_posted == []
    assert state == (sorted(Generation.objects.values_list("id", "cost_units", "price_id")),
                     sorted(rollups.AccountHour.objects.values_list("pk", "spend_units")),
                     sorted(LedgerEntry.objects.values_list("id", "amount_units")),
                     sorted(Account.objects.values_list("id", "balance_units")))
    books_assert_balanced()


def test_a_reprice_of_gateway_priced_rows_only_touches_none(tmp_path):
    world = _traffic(tmp_path)
    a3 = datetime.fromisoformat(_day(3).replace("Z", "+00:00"))
    before = sorted(Generation.objects.values_list("id", "cost_units", "cost_source", "price_id"))
    e = world["endpoint"]
    plan = reprice_plan(model_id=e.model_id, provider_id=e.provider_id, price_id=world["new"].pk,
                        start=a3, end=a3 + timedelta(hours=1), created_by="staff")

    result = reprice_apply(reprice_id=plan.reprice_id, actor="staff")

    assert (plan.accounts, plan.excluded_gateway, plan.excluded_insurance) == ([], 1, 0)
    assert (result.requests, result.accounts_posted) == (0, [])
    assert sorted(Generation.objects.values_list("id", "cost_units", "cost_source", "price_id")) == before
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REPRICING).exists()


def test_rows_priced_before_insurance_existed_are_told_apart_by_their_status(tmp_path):
    """Rows as migration 0018 left the old ones: every row Tokengrid priced is the catalog's, a failed or empty
    one too (insurance did not exist yet); a reprice leaves those out as insurance, whatever their source says."""
    world = _traffic(tmp_path)
    Generation.objects.exclude(cost_source=Generation.CostSource.GATEWAY).update(
        cost_source=Generation.CostSource.CATALOG, price_id=None)
    plan = _plan(world)
    assert (plan.requests, plan.excluded_gateway, plan.excluded_insurance) == (4, 1, 1)


def test_the_statement_shows_the_repricing_line(tmp_path):
    world = _traffic(tmp_path)
    plan = _plan(world)
    reprice_apply(reprice_id=plan.reprice_id, actor="staff")

    statement = statement_month(account=world["a"], month=TODAY.replace(day=1))

    assert (f"Repricing of lab/alpha from {FROM:%Y-%m-%d}", -42_000_000) in statement.lines
    assert sum(units for _, units in statement.lines) == statement.closing_units - statement.opening_units


def test_the_end_defaults_to_the_next_price_else_now(tmp_path, clock):
    world = _traffic(tmp_path)
    plan = _plan(world, end=None)
    assert Reprice.objects.get(pk=plan.reprice_id).end == datetime.now(tz=UTC)
    later = datetime.combine(FROM + timedelta(days=2), time(0), tzinfo=UTC)
    EndpointPrice.objects.create(endpoint=world["endpoint"], valid_from=later, prompt_price=1, completion_price=1)
    plan = _plan(world, end=None)
    assert Reprice.objects.get(pk=plan.reprice_id).end == later
    assert {a.account_id: a.requests for a in plan.accounts} == {world["a"].pk: 1, world["b"].pk: 1}  # a1, b1


# Awkward token counts (reasoning past completion, cache past prompt, a billion tokens) and an awkward
# price (15 places; halves of a unit, which round to even).
AWKWARD_TOKENS = [(1, 1, 0, 0), (3, 5, 0, 0), (7, 9, 3, 2), (123_457, 98_765, 4_321, 9_999), (5, 1, 7, 9),
                  (999_999_937, 3, 0, 0), (1, 2, 2, 0), (1, 4, 4, 0), (3, 4, 4, 0), (13, 7, 7, 13)]
AWKWARD_PRICE = {"prompt": Decimal("0.000000000050000"), "completion": Decimal("0.000000123456789"),
                 "cache_read": Decimal("0.000000000000001"), "reasoning": Decimal("0.000000000050000")}


def test_the_repriced_cost_equals_ingestions_pricing_to_the_unit(tmp_path):
    """The reprice's arithmetic (SQL NUMERIC on PostgreSQL) equals ingestion's Python pricing at the same price."""
    world = _traffic(tmp_path)
    awkward = endpoint_price_set(model_id=world["endpoint"].model_id, provider_id=world["endpoint"].provider_id,
                                 valid_from=START, **AWKWARD_PRICE)
    records = [record(id=f"w{i}", created_at=_day(5, 0), account="acct_w", tokens_prompt=p, tokens_completion=c,
                      native_tokens_reasoning=r, native_tokens_cached=k, total_cost=..., **ALPHA)
               for i, (p, c, r, k) in enumerate(AWKWARD_TOKENS)]
    run_batch(write_jsonl(tmp_path / "awkward-before.jsonl", records))  # priced at the old price (book cached)
    ingest.pricebook_reset()
    run_batch(write_jsonl(tmp_path / "awkward-now.jsonl", [{**r, "id": "n" + r["id"], "account": "acct_n"}
                                                            for r in records]))
    ingested = dict(Generation.objects.filter(id__startswith="nw").values_list("id", "cost_units"))
    assert len(set(ingested.values())) > 5
    e = world["endpoint"]

    plan = reprice_plan(model_id=e.model_id, provider_id=e.provider_id, price_id=awkward.pk, start=START, end=END,
                        created_by="staff")
    reprice_apply(reprice_id=plan.reprice_id, actor="staff")

    repriced = dict(Generation.objects.filter(id__startswith="w").values_list("id", "cost_units"))
    assert {f"n{k}": v for k, v in repriced.items()} == ingested
    prices = Prices(*(AWKWARD_PRICE[k] for k in ("prompt", "completion", "cache_read", "reasoning")))
    by_hand = {f"w{i}": reprice_units(prices=prices, tokens_prompt=p, tokens_completion=c, tokens_reasoning=r,
                                      tokens_cached=k) for i, (p, c, r, k) in enumerate(AWKWARD_TOKENS)}
    assert repriced == by_hand
    assert [by_hand[f"w{i}"] for i in (6, 7, 8)] == [2, 2, 4]  # 1.5, 2.5 and 3.5 units: half to even
    rollups_assert_equal_generations()
    books_assert_balanced()


# The staff pages -----------------------------------------------------------------------------------------

@pytest.fixture
def staff_client():
    user = get_user_model().objects.create_user("ops", password="x", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


def test_staff_enter_a_price_see_the_dry_run_and_apply_it(tmp_path, staff_client, monkeypatch,
                                                        django_capture_on_commit_callbacks):
    world = _traffic(tmp_path)
    EndpointPrice.objects.filter(pk=world["new"].pk).delete()  # staff enter it through the page
    response = staff_client.post("/ops/reprice/", {
        "model": "lab/alpha", "provider": world["endpoint"].provider_id, "start": FROM.isoformat(),
        "end": END.date().isoformat(), "prompt": "3", "completion": "7", "cache_read": "1.5", "reasoning": ""})
    reprice = Reprice.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/ops/reprice/{reprice.pk}/"
    assert (reprice.price.valid_from, reprice.price.prompt_price, reprice.price.cache_read_price) == (
        START, Decimal("0.000003"), Decimal("0.0000015"))
    world["endpoint"].refresh_from_db()  # the entered price is the one in force now: the listed price too
    assert world["endpoint"].prompt_price == Decimal("0.000003")

    page = staff_client.get(f"/ops/reprice/{reprice.pk}/")
    body = page.content.decode()
    assert "acct_a" in body
    assert "acct_b" in body
    for difference in ("$0.0042", "$0.01007", "$0.01427"):  # A, B and the total
        assert f">{difference}<" in body
    assert "1 request(s) priced by the gateway" in body

    queued = []
    monkeypatch.setattr(repricing_tasks.reprice_apply_task, "delay", lambda *args: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        applied = staff_client.post(f"/ops/reprice/{reprice.pk}/apply", follow=True)
    # The apply is a task (minutes at a router's size), queued after the request's transaction.
    assert f"Reprice {reprice.pk} is being applied ($0.01427 in all by the dry run)" in applied.content.decode()
    assert queued == [(reprice.pk, "ops")]
    assert not RepriceAccount.objects.filter(reprice=reprice, applied_requests__gt=0).exists()
    repricing_tasks.reprice_apply_task(*queued[0])
    assert RepriceAccount.objects.filter(reprice=reprice, applied_requests__gt=0).count() == 2
    assert staff_client.get(f"/ops/reprice/{reprice.pk}/").context["reprice"].status == Reprice.Status.APPLIED
    again = staff_client.post(f"/ops/reprice/{reprice.pk}/apply", follow=True)
    assert "already applied" in again.content.decode()
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REPRICING).count() == 2
    assert staff_client.get("/ops/reprice/").status_code == 200


def test_the_form_refuses_an_endpoint_that_does_not_exist_and_a_price_past_15_places(tmp_path, staff_client):
    _traffic(tmp_path)
    response = staff_client.post("/ops/reprice/", {
        "model": "lab/beta", "provider": Provider.objects.create(slug="other", name="Other").pk,
        "start": FROM.isoformat(), "prompt": "0.0000000001", "completion": "1"})
    assert response.status_code == 200
    assert "does not serve this model" in response.content.decode()
    assert "no more than 9 decimal places" in response.content.decode()
    assert not Reprice.objects.exists()


def test_applying_moves_the_rankings_version_and_the_watched_accounts_usage_version(
        tmp_path, django_capture_on_commit_callbacks):
    from analytics.rankings.cache import version
    from analytics.usage.cache import usage_version, usage_watch

    world = _traffic(tmp_path)
    usage_watch(account_id=world["a"].pk)
    usage_before, rankings_before = usage_version(world["a"].pk), version()
    plan = _plan(world)

    with django_capture_on_commit_callbacks(execute=True):
        reprice_apply(reprice_id=plan.reprice_id, actor="staff")

    assert version() != rankings_before
    assert usage_version(world["a"].pk) != usage_before


def test_the_admin_lists_reprices_read_only(tmp_path, admin_client):
    world = _traffic(tmp_path)
    plan = _plan(world)
    page = admin_client.get("/admin/analytics/reprice/")
    assert page.status_code == 200
    assert f"/ops/reprice/{plan.reprice_id}/" in page.content.decode()
    assert admin_client.get("/admin/analytics/reprice/add/").status_code == 403


def test_an_interrupted_apply_resumes_where_it_stopped(tmp_path, monkeypatch):
    from analytics.repricing import services

    world = _traffic(tmp_path)
    plan = _plan(world)
    real, calls = services._batch_apply, []

    def dies_at_the_third_batch(*args):
        calls.append(args)
        if len(calls) == 3:
            raise RuntimeError("worker killed")
        real(*args)

    monkeypatch.setattr(services, "_batch_apply", dies_at_the_third_batch)
    with pytest.raises(RuntimeError):
        reprice_apply(reprice_id=plan.reprice_id, actor="staff", batch_rows=1)
    assert Reprice.objects.get().status == Reprice.Status.APPLYING
    assert sum(a.requests for a in reprice_applied_read(reprice_id=plan.reprice_id)) == 2
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REPRICING).exists()
    monkeypatch.setattr(services, "_batch_apply", real)

    result = reprice_apply(reprice_id=plan.reprice_id, actor="staff", batch_rows=1)

    assert (result.applied_now, result.batches) == (True, 2)  # the two rows left
    assert reprice_applied_read(reprice_id=plan.reprice_id) == plan.accounts
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REPRICING).aggregate(
        s=Sum("amount_units"))["s"] == -plan.difference_units
    rollups_assert_equal_generations()
    books_assert_balanced()


def test_a_repriced_generation_shows_its_cost_at_the_price_that_priced_it(tmp_path, client):
    from analytics.usage.cost_breakdown import generation_cost
    from billing.models import Membership
    from tests.billing.factories import member_of

    world = _traffic(tmp_path)
    reprice_apply(reprice_id=_plan(world).reprice_id, actor="staff")

    breakdown = generation_cost(Generation.objects.get(id="a1"))

    assert (breakdown.total_units, breakdown.since, breakdown.matches_bill) == (62_000_000, START, True)
    client.force_login(member_of(world["a"], Membership.Role.OWNER, "alice"))
    page = client.get("/account/generations/a1/").content.decode()
    assert f"price #{world['new'].pk} from {FROM:%Y-%m-%d}" in page


def test_a_held_back_catalog_change_is_taken_up_into_a_planned_reprice_or_dismissed(tmp_path, staff_client):
    """catalog_sync kept the old price at START (requests were billed at it) and recorded the change: staff see it on
    /ops/reprice/, plan it (the new price written at START, the dry run of the billed requests: the same figures
    as a reprice entered by hand at that price), or dismiss another one (the old price stays)."""
    world = _traffic(tmp_path)
    held = world["new"]
    EndpointPrice.objects.filter(pk=held.pk).update(prompt_price=OLD["prompt"], completion_price=OLD["completion"],
                                                    cache_read_price=None)
    now = timezone.now()
    change = PendingPriceChange.objects.create(
        endpoint=world["endpoint"], valid_from=START, reprice_from=START, reprice_until=None,
        old_prompt_price=OLD["prompt"], old_completion_price=OLD["completion"], new_prompt_price=NEW["prompt"],
        new_completion_price=NEW["completion"], new_cache_read_price=NEW["cache_read"], requests=3,
        billed_since=START, detected_at=now)
    other = PendingPriceChange.objects.create(
        endpoint=world["endpoint"], valid_from=datetime(2000, 1, 1, tzinfo=UTC), old_prompt_price=OLD["prompt"],
        old_completion_price=OLD["completion"], new_prompt_price=Decimal("0.000009"),
        new_completion_price=Decimal("0.000009"), requests=1, detected_at=now)

    page = staff_client.get("/ops/reprice/").content.decode()
    assert f"/ops/reprice/change/{change.pk}/plan" in page
    assert "$1.00 → $3.00" in page  # prompt per 1M, old → new

    response = staff_client.post(f"/ops/reprice/change/{change.pk}/plan", follow=True)
    reprice = Reprice.objects.get()
    assert response.redirect_chain[-1][0] == f"/ops/reprice/{reprice.pk}/"
    assert f"Price change {change.pk} taken up" in response.content.decode()
    held.refresh_from_db()
    assert (reprice.price_id, held.prompt_price, held.completion_price, held.cache_read_price) == (
        held.pk, NEW["prompt"], NEW["completion"], NEW["cache_read"])
    assert reprice.start == START
    world["endpoint"].refresh_from_db()  # the row in force now: the listed price follows
    assert (world["endpoint"].prompt_price, world["endpoint"].completion_price) == (NEW["prompt"], NEW["completion"])
    change.refresh_from_db()
    assert change.status == PendingPriceChange.Status.APPLIED
    assert change.resolved_at is not None
    by_hand = _plan(world, end=reprice.end)  # the same price and range, entered on the form
    planned = reprice_plan_read(reprice_id=reprice.pk)
    assert (planned.requests, planned.difference_units) == (by_hand.requests, by_hand.difference_units) == (
        4, 142_700_000)  # $0.014270 over 4 requests, as test_staff_enter_a_price_see_the_dry_run_and_apply_it
    again = staff_client.post(f"/ops/reprice/change/{change.pk}/plan", follow=True).content.decode()
    assert f"price change {change.pk} is applied, not pending." in again
    assert Reprice.objects.count() == 2  # the one taken up and the one by hand: none from the second click

    dismissed = staff_client.post(f"/ops/reprice/change/{other.pk}/dismiss", follow=True).content.decode()
    assert f"Price change {other.pk} dismissed" in dismissed
    other.refresh_from_db()
    assert other.status == PendingPriceChange.Status.DISMISSED
    assert f"/ops/reprice/change/{other.pk}/plan" not in staff_client.get("/ops/reprice/").content.decode()
