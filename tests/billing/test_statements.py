"""Monthly statements: opening, movements, usage by model, closing, against totals worked by hand."""
import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from analytics import ingest
from billing.models import Account, LedgerEntry
from billing.promos import promo_redeem
from billing.purchases import credits_refund
from core.money import usd_to_units
from tests.analytics.conftest import record, run_batch, write_jsonl
from tests.billing.factories import PromoCodeFactory

from .conftest import buy, iso, text_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]  # intervals and months of today


@pytest.fixture
def books(tmp_path, acct_a, acct_b):
    """Last month: a $100 purchase. This month: usage $0.015 (alpha) + $0.03 (beta), a $10 grant,
    a $30 purchase refunded whole; acct_b buys $70."""
    ingest.pricebook_reset()
    now = datetime.now(tz=UTC)
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    Account.objects.filter(pk=acct_a.pk).update(created=last_month)
    first = buy(acct_a, "100")
    LedgerEntry.objects.filter(account=acct_a).update(created=last_month + timedelta(days=3))
    moment = now - timedelta(seconds=5)
    run_batch(write_jsonl(tmp_path / "usage.jsonl", [
        record(id="s1", created_at=iso(moment), model="lab/alpha", total_cost=0.015, account="acct_a"),
        record(id="s2", created_at=iso(moment), model="lab/beta", total_cost=0.03, account="acct_a",
               tokens_prompt=1000, tokens_completion=500),
    ]))
    PromoCodeFactory(code="WELCOME10", amount_units=usd_to_units("10"))
    promo_redeem(account=acct_a, code="welcome10")
    second = buy(acct_a, "30")
    credits_refund(account=acct_a, payment_id=second.pk)
    buy(acct_b, "70")
    return {"this": this_month, "last": last_month, "first": first}


def test_statement_months_and_totals(client, owner, books):
    client.force_login(owner)
    this, last = books["this"].strftime("%Y-%m"), books["last"].strftime("%Y-%m")
    listing = text_of(client.get("/account/statements/"))
    assert f"{books['this']:%B %Y} CSV {books['last']:%B %Y} CSV" in listing

    previous = text_of(client.get(f"/account/statements/{last}/"))
    assert "Opening balance $0.00 Purchases $100.00" in previous
    assert "Closing balance $100.00" in previous

    response = client.get(f"/account/statements/{this}/")
    current = text_of(response)
    # 100 + 30 - 30 + 10 - 0.045 = 109.955: $109.96 (half to even), the exact amount on hover
    assert ("Opening balance $100.00 Purchases $30.00 Promo grants $10.00 Refunds -$30.00 "
            "Usage -$0.045 Adjustments $0.00 Expired credits $0.00 Closing balance $109.96 ") in current
    assert '<span class="exact" title="$109.955">$109.96</span>' in response.content.decode()
    assert "lab/beta 1 1,500 $0.03 " in current
    assert "lab/alpha 1 150 $0.015 " in current
    assert "Total $0.045 " in current
    assert "$70" not in current  # acct_b's purchase


def test_statement_csv(client, owner, books):
    client.force_login(owner)
    response = client.get(f"/account/statements/{books['this']:%Y-%m}/csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f"statement-acct_a-{books['this']:%Y-%m}.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["section", "item", "requests", "tokens", "amount_usd"]
    by_item = {row[1]: row[4] for row in rows[1:]}
    assert by_item["Opening balance"] == "100.0000000000"
    assert by_item["Refunds"] == "-30.0000000000"
    assert by_item["Usage"] == "-0.0450000000"
    assert by_item["Closing balance"] == "109.9550000000"
    assert ["usage by model", "lab/beta", "1", "1500", "0.0300000000"] in rows


def test_statement_cells_are_neutralized(client, owner, books, tmp_path):
    ingest.pricebook_reset()
    run_batch(write_jsonl(tmp_path / "evil.jsonl", [record(
        id="e1", created_at=iso(datetime.now(tz=UTC) - timedelta(seconds=5)), model="=cmd/evil", account="acct_a")]))
    client.force_login(owner)
    body = b"".join(client.get(f"/account/statements/{books['this']:%Y-%m}/csv").streaming_content).decode()
    assert "\"'=cmd/evil\"" in body or "'=cmd/evil" in body


def test_months_outside_the_account_answer_404(client, owner, owner_b, books):
    client.force_login(owner)
    before = (books["last"] - timedelta(days=1)).strftime("%Y-%m")
    for url in (f"/account/statements/{before}/", "/account/statements/2026-13/", "/account/statements/x/",
                f"/account/statements/{before}/csv"):
        assert client.get(url).status_code == 404, url
    client.force_login(owner_b)  # acct_b was created this month: last month is not theirs
    assert client.get(f"/account/statements/{books['last']:%Y-%m}/").status_code == 404
    mine = text_of(client.get(f"/account/statements/{books['this']:%Y-%m}/"))
    assert "Purchases $70.00 " in mine
    assert "lab/beta" not in mine


def test_backfilled_usage_has_its_months_statement(client, owner_b, tmp_path):
    """An account registered today by logs of requests that ran two months ago gets that month's statement."""
    ingest.pricebook_reset()
    this_month = datetime.now(tz=UTC).replace(day=1, hour=12, minute=0, second=0, microsecond=0)
    two_ago = (this_month - timedelta(days=32)).replace(day=10)
    run_batch(write_jsonl(tmp_path / "backfill.jsonl", [
        record(id="old1", created_at=iso(two_ago), model="lab/alpha", total_cost=0.25, account="acct_b"),
        record(id="old2", created_at=iso(two_ago), model="lab/alpha", total_cost=0.5, account="acct_b"),
        # another account's older usage gives acct_b no earlier month
        record(id="older", created_at=iso(two_ago - timedelta(days=40)), model="lab/alpha", total_cost=9.99,
               account="acct_other")]))
    client.force_login(owner_b)
    listing = text_of(client.get("/account/statements/"))
    between = (this_month - timedelta(days=1)).replace(day=1)
    assert f"{this_month:%B %Y} CSV {between:%B %Y} CSV {two_ago:%B %Y} CSV" in listing
    page = text_of(client.get(f"/account/statements/{two_ago:%Y-%m}/"))
    assert "lab/alpha 2 300 $0.75 " in page  # by the days the requests ran; debited this month
    before = (two_ago.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    assert client.get(f"/account/statements/{before}/").status_code == 404
