"""Unpriced is a state, not a number: what the catalog cannot price is marked, counted and never debited;
failed or empty requests without a gateway cost are insured at $0; a gateway's own cost stands.

One hand-built file and one catalog; every figure below is computed by hand from them.
"""
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import Client

from analytics import ingest
from analytics.models import (
    AccountDay,
    AccountHour,
    EndpointDay,
    EndpointHour,
    Generation,
)
from analytics.usage.grouping import grouped_sums
from billing.accounts import account_token_create
from billing.models import Account, LedgerEntry, Membership
from marketplace.models import Provider
from tests.analytics.conftest import D1, at, record, run_batch, write_jsonl
from tests.billing.factories import UserFactory, member_of
from tests.marketplace.factories import EndpointFactory

pytestmark = pytest.mark.django_db

ROCKET, MYSTERY = "acme/rocket-1", "nobody/knows-this"
SOURCE = Generation.CostSource


@pytest.fixture
def catalog():
    """acme/rocket-1 at Acme Cloud: $3 per 1M prompt tokens, $15 per 1M completion tokens."""
    return EndpointFactory(model__author__slug="acme", model__route_name="rocket-1", provider__name="Acme Cloud",
                           provider__slug="acme-cloud", prompt_price=Decimal("0.000003"),
                           completion_price=Decimal("0.000015"))


def _rec(gen_id: str, *, model: str = ROCKET, provider: str = "Acme Cloud", hour: int = 10, **fields) -> dict:
    return record(**{"id": gen_id, "created_at": at(D1, hour), "account": "acct_u", "api_key": "k1", "model": model,
                     "provider_name": provider, "tokens_prompt": 1000, "tokens_completion": 100, "total_cost": ...,
                     **fields})


FIRST = [
    _rec("u-model", model=MYSTERY),  # a model neither the catalog nor genai-prices knows: unpriced
    _rec("u-model-2", model=MYSTERY, tokens_prompt=10, tokens_completion=5),
    _rec("u-provider", provider="Shadow Host", tokens_prompt=2000, tokens_completion=200),  # no endpoint there
    _rec("p-catalog"),  # 1000 x $3/M + 100 x $15/M = $0.0045
    _rec("i-503", status=503, tokens_completion=0),  # failed, no gateway cost: insured at $0
    _rec("i-cancelled", cancelled=True, tokens_completion=0),  # nothing generated: $0
    _rec("i-empty", tokens_completion=0),  # a 200 with zero completion tokens: $0
    _rec("g-502", status=502, tokens_completion=0, total_cost=0.25),  # the gateway's cost, as it is
]
# After staff map Shadow Host to Acme Cloud: 2000 x $3/M + 200 x $15/M = $0.009.
SECOND = [_rec("m-mapped", provider="Shadow Host", hour=11, tokens_prompt=2000, tokens_completion=200)]


@pytest.fixture
def ingested(tmp_path, catalog):
    first = run_batch(write_jsonl(tmp_path / "first.jsonl", FIRST))
    shadow = Provider.objects.get(name="Shadow Host")  # registered by the first batch, as traffic names it
    shadow.prices_as = catalog.provider
    shadow.save(update_fields=["prices_as"])
    ingest.pricebook_reset()  # workers reload the price book within PRICEBOOK_TTL_SECONDS
    second = run_batch(write_jsonl(tmp_path / "second.jsonl", SECOND))
    return {"first": first, "second": second, "account": Account.objects.get(external_id="acct_u")}


def test_each_row_says_where_its_cost_came_from(ingested):
    got = {g.id: (g.cost_source, g.cost_units) for g in Generation.objects.all()}
    assert got == {
        "u-model": (SOURCE.UNPRICED, 0), "u-model-2": (SOURCE.UNPRICED, 0),
        "u-provider": (SOURCE.UNPRICED, 0),
        "p-catalog": (SOURCE.CATALOG, 45_000_000),
        "i-503": (SOURCE.INSURANCE, 0), "i-cancelled": (SOURCE.INSURANCE, 0),
        "i-empty": (SOURCE.INSURANCE, 0),
        "g-502": (SOURCE.GATEWAY, 2_500_000_000),
        "m-mapped": (SOURCE.CATALOG, 90_000_000),  # priced at Acme Cloud's endpoint price
    }


def test_unpriced_requests_are_not_debited(ingested):
    account = ingested["account"]
    # Batch 1 debits $0.0045 + $0.25 (the unpriced and insured rows add 0); batch 2 debits $0.009.
    assert sorted(LedgerEntry.objects.filter(account=account).values_list("amount_units", flat=True)) == [
        -2_545_000_000, -90_000_000]
    account.refresh_from_db()
    assert account.balance_units == -2_635_000_000
    assert AccountDay.objects.filter(account=account).values_list("day").distinct().count() == 1
    day = {r.provider.name: r for r in AccountDay.objects.filter(account=account, model__slug=ROCKET)}
    assert (day["Shadow Host"].requests, day["Shadow Host"].unpriced_requests, day["Shadow Host"].spend_units) == (
        2, 1, 90_000_000)


def test_counters_per_account_endpoint_and_batch(ingested):
    first, second, account = ingested["first"], ingested["second"], ingested["account"]
    assert (first.accepted, first.unpriced) == (8, 3)
    assert (second.accepted, second.unpriced) == (1, 0)

    for rollup in (AccountDay, AccountHour):
        rows = rollup.objects.filter(account=account)
        assert sum(r.unpriced_requests for r in rows) == 3, rollup
        assert sum(r.requests for r in rows) == 9, rollup
        assert sum(r.spend_units for r in rows) == 2_635_000_000, rollup
    for rollup in (EndpointDay, EndpointHour):
        got: dict[tuple, tuple] = {}
        for r in rollup.objects.select_related("model", "provider"):  # hourly: the second batch is an hour later
            counts = (r.requests, r.unpriced_requests, r.unpriced_tokens, r.spend_units)
            before = got.get((r.model.slug, r.provider.name), (0, 0, 0, 0))
            got[(r.model.slug, r.provider.name)] = tuple(map(sum, zip(before, counts, strict=True)))
        assert got == {
            (MYSTERY, "Acme Cloud"): (2, 2, 1100 + 15, 0),
            (ROCKET, "Shadow Host"): (2, 1, 2200, 90_000_000),
            (ROCKET, "Acme Cloud"): (5, 0, 0, 2_545_000_000),
        }, rollup


def test_the_account_pages_and_api_say_how_many_requests_are_not_priced(ingested, tmp_path):
    account = ingested["account"]
    alice = member_of(account, Membership.Role.OWNER, "alice")
    client = Client()
    client.force_login(alice)

    overview = client.get("/account/", {"period": "7d"}).content.decode()
    assert "3 requests not priced yet" in overview
    credits = client.get("/account/credits/").content.decode()
    assert "3 requests of the last 30 days not priced yet" in credits

    detail = client.get("/account/generations/u-model/").content.decode()
    assert f"Not priced yet: the catalog has no price for {MYSTERY} at Acme Cloud" in detail
    assert "not debited" in detail
    mapped_since = client.get("/account/generations/u-provider/").content.decode()
    assert f"Not priced yet: the catalog had no price for {ROCKET} at Shadow Host when this request" in mapped_since
    assert "$0.009<" in mapped_since  # the mapped price now in force: 2000 x $3/M + 200 x $15/M
    insured = client.get("/account/generations/i-503/").content.decode()
    assert "zero-completion insurance" in insured

    _, secret = account_token_create(account=account, name="ci", created_by=alice)
    usage = client.get("/api/v1/account/usage", {"start": D1.isoformat(), "end": D1.isoformat(), "group_by": "model"},
                       HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    assert [(r["model"], r["requests"], r["unpriced_requests"], r["spend_usd"]) for r in usage["rows"]] == [
        (ROCKET, 7, 1, "0.2635000000"), (MYSTERY, 2, 2, "0.0000000000")]
    credits_api = client.get("/api/v1/credits", HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    assert (credits_api["unpriced_requests"], credits_api["balance_usd"]) == (3, "-0.2635000000")


def test_an_account_with_everything_priced_sees_no_note(tmp_path, catalog):
    run_batch(write_jsonl(tmp_path / "priced.jsonl", [_rec("p-1"), _rec("i-1", status=500, tokens_completion=0)]))
    client = Client()
    client.force_login(member_of(Account.objects.get(external_id="acct_u"), Membership.Role.OWNER, "bob"))
    assert "not priced yet" not in client.get("/account/", {"period": "7d"}).content.decode()
    assert "not priced yet" not in client.get("/account/credits/").content.decode()


def test_the_operator_page_lists_unpriced_traffic_per_model_and_provider(ingested):
    staff = Client()
    staff.force_login(UserFactory(username="ops", is_staff=True))
    response = staff.get("/ops/unpriced/")
    assert response.status_code == 200
    rows = response.context["rows"]
    # Most requests first: the unknown model (2 requests, 1,115 tokens), then the mapped provider's old row.
    assert [(r.model_slug, r.provider_name, r.requests, r.tokens) for r in rows] == [
        (MYSTERY, "Acme Cloud", 2, 1115), (ROCKET, "Shadow Host", 1, 2200)]
    assert rows[1].prices_as == "Acme Cloud"
    assert rows[0].endpoint_id is None
    body = response.content.decode()
    shadow = Provider.objects.get(name="Shadow Host")
    assert f"/admin/marketplace/provider/{shadow.pk}/change/" in body
    assert f"/admin/marketplace/model/{rows[0].model_id}/change/" in body
    batches = staff.get("/ops/ingest/").content.decode()
    assert '<td class="num" data-stat="unpriced"><a href="/ops/unpriced/">3</a></td>' in batches  # the first batch
    assert '<td class="num" data-stat="unpriced">0</td>' in batches  # the second
    batch_page = staff.get(f"/ops/ingest/{ingested['first'].pk}/").content.decode()
    assert 'data-stat="unpriced"' in batch_page
    assert "/ops/unpriced/" in batch_page

    outsider = Client()
    outsider.force_login(UserFactory(username="not-staff"))
    assert outsider.get("/ops/unpriced/")["Location"].startswith("/admin/login/")


def test_the_spend_rankings_say_what_they_leave_out(ingested):
    # Listed models only: acme/rocket-1 (7 requests, 1 unpriced); the unknown model was registered unlisted.
    page = Client().get("/rankings/", {"window": "week", "metric": "spend"}).content.decode()
    assert "Leaves out 14.3% of requests (not priced" in page
    assert "Leaves out" not in Client().get("/rankings/", {"window": "week", "metric": "tokens"}).content.decode()

    by_spend = Client().get("/api/v1/rankings/models", {"window": "week", "metric": "spend"}).json()
    assert (by_spend["unpriced_requests"], by_spend["unpriced_share"]) == (1, round(1 / 7, 6))
    assert by_spend["results"][0]["value"] == "0.2635000000"
    by_tokens = Client().get("/api/v1/rankings/providers", {"window": "week", "metric": "tokens"}).json()
    assert (by_tokens["unpriced_requests"], by_tokens["unpriced_share"]) == (None, None)


def test_a_price_per_million_leaves_the_unpriced_tokens_out_as_it_leaves_their_spend(ingested):
    """acme/rocket-1: 9,500 tokens, of which 2,200 unpriced (u-provider), for $0.2635: $0.2635 / 7,300 priced
    tokens = $36.095890 per 1M (not $27.736842 over all 9,500). The account adds the unknown model's 1,115
    unpriced tokens and no spend: the same 7,300 priced tokens."""
    from analytics.rankings.price_index import price_index
    from analytics.rankings.series import daily_top_models
    from analytics.usage import overview
    from analytics.usage.params import period_parse

    index = price_index()
    [point] = [p for p in index.overall.points if p.tokens]
    assert (point.spend_units, point.tokens, point.price) == (2_635_000_000, 7300, Decimal("36.095890"))
    [row] = daily_top_models(start=D1, end=D1)
    assert (row.model, row.tokens, row.unpriced_tokens, row.price_per_million) == (
        ROCKET, 9500, 2200, Decimal("36.095890"))

    account = ingested["account"]
    totals, _ = overview.usage_totals(account_id=account.pk, period=period_parse("7d"))
    assert (totals.tokens, totals.unpriced_tokens, totals.byok_tokens) == (10_615, 3315, 0)
    assert totals.cost_per_million_units == 2_635_000_000 * 1_000_000 // 7300 == 360_958_904_109
    assert totals.value("cost_per_million") == Decimal("36.0958904109")
    for rollup in (AccountDay, AccountHour):
        assert sum(r.unpriced_tokens for r in rollup.objects.filter(account=account)) == 3315, rollup
    # The user and tag rollups hold no row for requests without a user (tags); what the pages read of
    # them (usage.sources: those rows derived from AccountDay) counts every unpriced token all the same.
    start = datetime(2000, 1, 1, tzinfo=UTC)
    for column in ("end_user", "tags"):
        read = grouped_sums(account.pk, start, start.replace(year=2100), hourly=False, sets=[(column,)])[(column,)]
        assert sum(t.unpriced_tokens for t in read.values()) == 3315, column
