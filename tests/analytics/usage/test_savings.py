"""The savings advisor (analytics.usage.savings) on a hand-built catalog, against figures worked out by hand:
the overview's card, `GET /api/v1/account/savings`, and one account never seeing another's."""
import re
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from analytics.models import AccountDay, AccountHour, EndpointDay
from analytics.usage.savings import NO_PRICE, NO_RELIABLE, account_savings
from billing.accounts import account_token_create
from billing.models import Account, Membership
from core.money import usd_to_units as usd
from marketplace.models import EndpointPrice
from tests.analytics.conftest import at, record, run_batch, write_jsonl
from tests.billing.factories import AccountFactory, member_of
from tests.marketplace.factories import EndpointFactory, ModelFactory, ProviderFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2027, 3, 15, 12, tzinfo=UTC)  # the last 30 days: February 14th to March 15th
M = Decimal("0.000001")  # a price of $1 per million tokens


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _card(response) -> str:
    """What a person reads in the savings card alone."""
    found = re.search(r'<section class="card" id="savings".*?</section>', response.content.decode(), re.S)
    assert found, "the page has a savings card"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(0)))


def _day(account, model, provider, day, *, spend, key=1, hours=(), **tokens):
    AccountDay.objects.create(account=account, model=model, provider=provider, day=day, api_key_id=key, requests=1,
                              spend_units=usd(spend), **tokens)
    for hour, hour_spend, hour_tokens in hours:
        AccountHour.objects.create(account=account, model=model, provider=provider, api_key_id=key, requests=1,
                                   hour=datetime.combine(day, time(hour), tzinfo=UTC), spend_units=usd(hour_spend),
                                   **hour_tokens)


def _uptime(model, provider, day, attempts, failed):
    EndpointDay.objects.create(model=model, provider=provider, day=day, attempts=attempts, failed_attempts=failed)


@pytest.fixture
def world(clock):
    """Alpha at three providers: Cheapo ($1/$2 per M, 98% up: unreliable), Midway ($3/$6 until March 10th
    12:00, then $2/$4; exactly 99% up) and Dearco ($5/$10, cache read $0.50, 100% up, no history): the
    account used Dearco. Beta has no endpoint, Gamma only an unreliable one; three small models follow."""
    clock.move_to(NOW)
    a, b = AccountFactory(external_id="acct_sa"), AccountFactory(external_id="acct_sb")
    cheapo, midway, dearco = (ProviderFactory(slug=s, name=s.title()) for s in ("cheapo", "midway", "dearco"))
    lab = ModelFactory(route_name="alpha", author__slug="lab", author__name="Lab").author
    alpha = lab.models.get()
    beta, gamma, *small = (ModelFactory(author=lab, route_name=n) for n in ("beta", "gamma", "m4", "m5", "m6"))
    EndpointFactory(model=alpha, provider=cheapo, prompt_price=1 * M, completion_price=2 * M)
    mid = EndpointFactory(model=alpha, provider=midway, prompt_price=2 * M, completion_price=4 * M)
    EndpointPrice.objects.create(endpoint=mid, valid_from=datetime(2027, 2, 1, tzinfo=UTC), prompt_price=3 * M,
                                 completion_price=6 * M)
    EndpointPrice.objects.create(endpoint=mid, valid_from=datetime(2027, 3, 10, 12, tzinfo=UTC),
                                 prompt_price=2 * M, completion_price=4 * M)
    EndpointFactory(model=alpha, provider=dearco, prompt_price=5 * M, completion_price=10 * M,
                    cache_read_price=Decimal("0.5") * M)
    EndpointFactory(model=gamma, provider=cheapo, prompt_price=1 * M, completion_price=1 * M)
    first = date(2027, 3, 1)
    _uptime(alpha, cheapo, first, 100, 2)
    _uptime(alpha, cheapo, date(2027, 2, 13), 10_000, 0)  # before the window: would lift Cheapo over 99%
    _uptime(alpha, midway, first, 200, 2)
    _uptime(alpha, dearco, first, 50, 0)
    _uptime(gamma, cheapo, first, 10, 1)
    # Alpha at Dearco. March 5th: 1M prompt (200k cached), 500k completion (100k reasoning):
    # 800k x 5 + 200k x 0.5 + 500k x 10 = 4 + 0.10 + 5 = $9.10.
    _day(a, alpha, dearco, date(2027, 3, 5), spend="9.10", tokens_prompt=1_000_000, tokens_cached=200_000,
         tokens_completion=500_000, tokens_reasoning=100_000)
    # March 10th, the day Midway's price changed at noon: 1M + 500k at 08:00 and again at 14:00: $20.
    half = {"tokens_prompt": 1_000_000, "tokens_completion": 500_000}
    _day(a, alpha, dearco, date(2027, 3, 10), spend="20", tokens_prompt=2_000_000, tokens_completion=1_000_000,
         hours=[(8, "10", half), (14, "10", half)])
    # BYOK only (no spend), and a row mixing $1 of paid requests with BYOK ones: both left out of the comparison.
    _day(a, alpha, dearco, date(2027, 3, 11), spend="0", key=2, tokens_prompt=1_000_000,
         tokens_completion=1_000_000, byok_tokens=2_000_000)
    _day(a, alpha, dearco, date(2027, 3, 12), spend="1", key=3, tokens_prompt=100_000, tokens_completion=100_000,
         byok_tokens=100_000)
    _day(a, alpha, dearco, date(2027, 2, 13), spend="500", tokens_prompt=50_000_000)  # before the window
    _day(a, beta, cheapo, date(2027, 3, 6), spend="2", tokens_prompt=1_000_000)
    _day(a, gamma, cheapo, date(2027, 3, 7), spend="1.50", tokens_prompt=1_000_000)
    for model, spend in zip(small, ("1.20", "1.10", "1.00"), strict=True):
        _day(a, model, cheapo, date(2027, 3, 8), spend=spend, tokens_prompt=1_000)
    # Another account: $1,000 of Alpha at Dearco on March 5th.
    _day(b, alpha, dearco, date(2027, 3, 5), spend="1000", tokens_prompt=100_000_000, tokens_completion=50_000_000)
    return a, b


def test_the_cheapest_reliable_provider_at_the_prices_in_force(world):
    shown = account_savings(account_id=world[0].pk)
    assert (shown.first_day, shown.last_day) == (date(2027, 2, 14), date(2027, 3, 15))
    assert [row.model for row in shown.models] == ["lab/alpha", "lab/beta", "lab/gamma", "lab/m4", "lab/m5"]
    alpha = shown.models[0]
    # At Midway: March 5th at $3/$6 (no cache price: cached tokens at the prompt price) = 3 + 3 = $6;
    # March 10th 08:00 at $3/$6 = $6, 14:00 at $2/$4 = $4 (the day's start price would make it $12).
    assert (alpha.provider, alpha.paid_units, alpha.alternative_units) == ("Midway", usd("29.10"), usd(16))
    assert alpha.saving_units == usd("13.10")
    assert alpha.uptime == 0.99
    assert shown.left_out_units == usd(1)  # the mixed row's paid spend
    assert (shown.models[1].alternative_units, shown.models[1].reason) == (None, NO_PRICE)
    assert (shown.models[2].alternative_units, shown.models[2].reason) == (None, NO_RELIABLE)
    assert shown.saving_units == usd("13.10")


def test_the_overview_shows_the_card(client, world):
    client.force_login(member_of(world[0], Membership.Role.VIEWER, "vic"))
    page = _card(client.get("/account/"))
    assert "Savings advisor · 2027-02-14 to 2027-03-15" in page
    assert "lab/alpha $29.10 Midway (99.00% up) $16.00 $13.10" in page
    assert "lab/beta $2.00 no priced alternative (no price in the catalog)" in page
    assert "lab/gamma $1.50 no priced alternative (no provider with uptime ≥ 99% and a price)" in page
    assert "lab/m6" not in page  # sixth by spend
    assert "$1.00 of spend in such rows is left out." in page


def test_the_api_answers_exact_decimals(client, world):
    owner = member_of(world[0], Membership.Role.OWNER, "olga")
    _, secret = account_token_create(account=world[0], name="ci", created_by=owner)
    body = client.get("/api/v1/account/savings", HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    assert (body["start"], body["end"], body["left_out_usd"]) == ("2027-02-14", "2027-03-15", "1.0000000000")
    alpha, beta = body["models"][:2]
    assert alpha == {"model": "lab/alpha", "paid_usd": "29.1000000000", "provider": "Midway", "provider_uptime": 0.99,
                     "alternative_usd": "16.0000000000", "saving_usd": "13.1000000000", "no_alternative_reason": None}
    assert (beta["alternative_usd"], beta["saving_usd"], beta["no_alternative_reason"]) == (None, None, NO_PRICE)
    assert client.get("/api/v1/account/savings").status_code == 401


def test_one_account_never_sees_anothers_figures(client, world):
    a, b = world
    shown = account_savings(account_id=b.pk)
    # B's Alpha: 100M x 3 + 50M x 6 = $600 at Midway against $1,000 paid; none of A's models or figures.
    assert [(r.model, r.paid_units, r.alternative_units) for r in shown.models] == [
        ("lab/alpha", usd(1000), usd(600))]
    client.force_login(member_of(b, Membership.Role.OWNER, "ben"))
    page = _card(client.get("/account/"))
    assert "lab/alpha $1,000.00 Midway (99.00% up) $600.00 $400.00" in page
    assert "lab/beta" not in page
    assert "$29.10" not in page
    _, secret = account_token_create(account=b, name="ci", created_by=member_of(b, Membership.Role.OWNER, "bo"))
    body = client.get("/api/v1/account/savings", HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    assert [m["paid_usd"] for m in body["models"]] == ["1000.0000000000"]


def test_an_account_without_spend_has_no_card(client, clock):
    clock.move_to(NOW)
    account = AccountFactory(external_id="acct_idle")
    assert account_savings(account_id=account.pk).models == []
    client.force_login(member_of(account, Membership.Role.OWNER, "ida"))
    assert "Savings advisor" not in _text(client.get("/account/"))


def test_priced_by_ingestion_at_the_same_provider_the_alternative_is_what_was_paid(clock, tmp_path):
    """Through real ingestion: requests without a gateway cost are priced at the price in force at their
    moment; the advisor, pricing the same tokens at the same provider, finds exactly that, BYOK aside."""
    clock.move_to(NOW)
    omega = ModelFactory(route_name="omega", author__slug="lab", author__name="Lab")
    endpoint = EndpointFactory(model=omega, provider=ProviderFactory(slug="pone", name="Pone"),
                               prompt_price=1 * M, completion_price=2 * M)
    EndpointPrice.objects.create(endpoint=endpoint, valid_from=datetime(2027, 2, 1, tzinfo=UTC), prompt_price=2 * M,
                                 completion_price=4 * M, cache_read_price=Decimal("0.5") * M)
    EndpointPrice.objects.create(endpoint=endpoint, valid_from=datetime(2027, 3, 10, 12, 30, tzinfo=UTC),
                                 prompt_price=1 * M, completion_price=2 * M)
    common = {"model": "lab/omega", "provider_name": "Pone", "account": "acct_e2e", "total_cost": ...}
    records = [
        record(id="e1", created_at=at(date(2027, 3, 5), 10), tokens_prompt=1_000_000, tokens_completion=500_000,
               native_tokens_cached=100_000, native_tokens_reasoning=50_000, api_key="k1", **common),
        record(id="e2", created_at=at(date(2027, 3, 10), 9), tokens_prompt=300_000, tokens_completion=100_000,
               api_key="k1", **common),
        record(id="e3", created_at=at(date(2027, 3, 10), 15), tokens_prompt=300_000, tokens_completion=100_000,
               api_key="k1", **common),
        record(id="e4", created_at=at(date(2027, 3, 11), 8), tokens_prompt=5_000_000, tokens_completion=0,
               api_key="k2", is_byok=True, **common),
    ]
    assert run_batch(write_jsonl(tmp_path / "e2e.jsonl", records)).accepted == 4
    account = Account.objects.get(external_id="acct_e2e")
    # e1 at $2/$4, cache $0.50: 900k x 2 + 100k x 0.5 + 500k x 4 = 1.80 + 0.05 + 2 = $3.85; e2 at $2/$4: 0.60 +
    # 0.40 = $1; e3 after the 12:30 change at $1/$2: 0.30 + 0.20 = $0.50. e4 is BYOK: no spend, left out.
    row = account_savings(account_id=account.pk).models[0]
    assert (row.provider, row.paid_units, row.alternative_units, row.saving_units) == (
        "Pone", usd("5.35"), usd("5.35"), 0)
