"""The token price index on hand-computed weeks: spend ÷ tokens not BYOK, overall, per author and category."""
from datetime import datetime
from decimal import Decimal

import pytest
from django.core.cache import cache

from analytics.rankings.price_index import price_index, price_per_million
from marketplace.models import App, Model
from tests.analytics.conftest import record, run_batch, write_jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture
def weeks(tmp_path, clock):
    """A Thursday: this week began Monday 2026-11-23, the week before on 2026-11-16."""
    from datetime import UTC

    clock.move_to(datetime(2026, 11, 26, 15, 30, tzinfo=UTC))
    cache.clear()

    def at(day: str) -> str:
        return f"{day}T10:00:00Z"

    rows = [
        # the week before: lab 1M tokens for $2 -> $2 / 1M
        record(id="w1", model="lab/a", created_at=at("2026-11-17"), tokens_prompt=900_000, tokens_completion=100_000,
               total_cost=2, origin="https://coder.example", app_categories="programming"),
        # this week: lab 1M tokens for $1, plus a BYOK request (out of both sums) ...
        record(id="w2", model="lab/a", created_at=at("2026-11-24"), tokens_prompt=500_000, tokens_completion=500_000,
               total_cost=1, origin="https://coder.example", app_categories="programming"),
        record(id="w3", model="lab/a", created_at=at("2026-11-25"), tokens_prompt=3_000_000, tokens_completion=0,
               total_cost=9, is_byok=True),
        # ... and other's 3M tokens free: overall this week $1 / 4M = $0.25 / 1M
        record(id="w4", model="other/free", created_at=at("2026-11-25"), tokens_prompt=3_000_000,
               tokens_completion=0, total_cost=0, origin="https://chat.example", app_categories="chat"),
    ]
    run_batch(write_jsonl(tmp_path / "w.jsonl", rows))
    Model.objects.update(listed=True)
    App.objects.update(public=True)
    return price_index(weeks=3)


def test_the_index_is_spend_over_tokens_not_byok_per_week(weeks):
    assert weeks.weeks == ["2026-11-09", "2026-11-16", "2026-11-23"]
    assert weeks.current_partial is True
    overall = weeks.overall
    assert [(p.week, p.spend_units, p.tokens, p.price) for p in overall.points] == [
        ("2026-11-09", 0, 0, None), ("2026-11-16", 20_000_000_000, 1_000_000, Decimal("2.000000")),
        ("2026-11-23", 10_000_000_000, 4_000_000, Decimal("0.250000"))]
    assert overall.change == pytest.approx(-0.875)  # $2 -> $0.25
    by_author = {line.url: (line.latest.price, line.change) for line in weeks.authors}
    assert by_author["/authors/lab/"] == (Decimal("1.000000"), pytest.approx(-0.5))
    assert by_author["/authors/other/"] == (Decimal("0.000000"), None)  # no week before
    by_category = {line.name.lower(): line.latest.price for line in weeks.categories}
    assert by_category == {"programming": Decimal("1.000000"), "chat": Decimal("0.000000")}


def test_price_per_million_is_exact_and_rounded_half_even():
    assert price_per_million(1, 3) == Decimal("0.000033")  # 1e-10 USD for 3 tokens: 3.33e-5 USD per 1M
    assert price_per_million(25, 1_000) == Decimal("0.000002")  # 2.5e-6: half-even, down to the even digit
    assert price_per_million(35, 1_000) == Decimal("0.000004")  # 3.5e-6: up to the even digit
    assert price_per_million(5, 0) is None


def test_the_index_page_and_the_rankings_card(client, weeks):
    page = client.get("/rankings/price-index/").content.decode()
    assert '<div class="value"><span class="exact" title="$0.25">$0.25</span>' not in page  # shown == exact: no span
    assert '<div class="value">$0.25</div>' in page
    assert "so far" in page
    assert "BYOK requests (bring your own key) are left out of both sums" in page
    assert 'id="chart-price-index"' in page
    rankings = client.get("/rankings/").content.decode()
    assert "Token price index" in rankings
    assert "$0.25</strong> per 1M tokens in the week of 2026-11-23" in rankings
