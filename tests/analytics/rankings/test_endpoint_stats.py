"""A model's providers table: uptime, latency and throughput percentiles, share, and the marks."""
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.rankings.endpoint_stats import endpoint_stats
from marketplace.models import Endpoint, Model, Provider
from tests.analytics.conftest import record, run_batch, write_jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture
def served(tmp_path, clock):
    """The clock frozen at 12:30 UTC of the test's day: the traffic of the last hours falls on one day,
    whatever hour the suite runs at (TOKENGRID_TEST_NOW may be 00:10)."""
    clock.move_to(timezone.now().replace(hour=12, minute=30, second=0, microsecond=0))
    now = timezone.now()

    def at(hours):
        return (now - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")

    rows = [record(id=f"a{i}", model="lab/m", provider_name="A", created_at=at(1 + i), latency=latency,
                   generation_time=1000, tokens_completion=completion)
            for i, (latency, completion) in enumerate([(100, 50), (200, 100), (300, 150), (400, 200)])]
    rows += [
        record(id="b1", model="lab/m", provider_name="B", created_at=at(2), latency=1000, generation_time=2000,
               tokens_completion=100, provider_responses=[{"provider_name": "A", "status": 502, "latency": 10},
                                                          {"provider_name": "B", "status": 200, "latency": 1000}]),
        record(id="b2", model="lab/m", provider_name="B", created_at=at(3), latency=2000, generation_time=1000,
               tokens_completion=300),
        record(id="b3", model="lab/m", provider_name="B", created_at=at(72), status=500, tokens_prompt=0,
               tokens_completion=0, latency=..., generation_time=...),
    ]
    run_batch(write_jsonl(tmp_path / "s.jsonl", rows))
    model = Model.objects.get(slug="lab/m")
    Model.objects.filter(pk=model.pk).update(listed=True)
    for name, price in (("A", "0.000002"), ("B", "0.000001")):
        Endpoint.objects.create(model=model, provider=Provider.objects.get(name=name), prompt_price=Decimal(price),
                                completion_price=Decimal(price))
    return model, now


def test_uptime_percentiles_and_share_per_provider(served):
    model, now = served
    stats = endpoint_stats(model_id=model.pk, now=now)
    a = stats[Provider.objects.get(name="A").pk]
    b = stats[Provider.objects.get(name="B").pk]

    # A: 4 successes + 1 failed attempt before B answered; B: 2 successes today, 1 failure 3 days ago.
    assert (a.uptime_1d, a.uptime_7d) == (pytest.approx(0.8), pytest.approx(0.8))
    assert (b.uptime_1d, b.uptime_7d) == (pytest.approx(1.0), pytest.approx(2 / 3))
    # Nearest-rank percentiles of the exact values, within 5%: A latency 100..400 ms, throughput 50..200 tok/s.
    assert a.latency_p50 == pytest.approx(200, rel=0.05)
    assert a.latency_p90 == pytest.approx(400, rel=0.05)
    assert a.throughput_p50 == pytest.approx(100, rel=0.05)
    assert a.throughput_p90 == pytest.approx(200, rel=0.05)
    assert b.latency_p50 == pytest.approx(1000, rel=0.05)
    assert b.throughput_p90 == pytest.approx(300, rel=0.05)
    # Tokens over 7 days: A 4 x 100 prompt + 500 completion = 900; B 200 + 400 = 600.
    assert (a.tokens_7d, b.tokens_7d) == (900, 600)
    assert a.share == pytest.approx(0.6)


def test_the_model_page_marks_cheapest_fastest_and_most_reliable(client, served, django_assert_max_num_queries):
    model, _ = served
    with django_assert_max_num_queries(10):
        response = client.get(model.get_absolute_url())
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))
    assert "B cheapest $1 $1" in text
    assert "A fastest most reliable $2 $2" in text
    assert "80.0% / 80.0%" in text
    assert "100.0% / 66.7%" in text


def test_provider_health_per_day(served):
    from analytics.rankings.series import provider_daily_health

    model, now = served
    a = Provider.objects.get(name="A")
    days = {day: (tokens, uptime) for day, tokens, uptime, _ in provider_daily_health(provider_id=a.pk, now=now)}
    # A's 4 requests and its failed attempt fall within the last 5 hours: today, the clock being at noon.
    assert list(days) == [now.date().isoformat()]
    assert sum(t for t, _ in days.values()) == 900
    assert days[now.date().isoformat()][1] == pytest.approx(0.8)  # 4 successes of 5 attempts


def test_author_provider_and_app_pages_chart_their_traffic(client, served):
    from marketplace.models import App

    model, _ = served
    for url in (model.author.get_absolute_url(), Provider.objects.get(name="A").get_absolute_url()):
        body = client.get(url).content.decode()
        assert 'class="chart"' in body, url
        assert "/assets/plotly-" in body
    App.objects.create(slug="x", origin="https://x.example", name="<b>X</b>")
    body = client.get("/apps/x/").content.decode()
    assert "&lt;b&gt;X&lt;/b&gt;" in body
    assert "No traffic in the last 30 days." in body


def test_a_rate_limited_answer_is_not_down_and_is_shown_apart(client, served, tmp_path):
    model, now = served
    at = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    run_batch(write_jsonl(tmp_path / "limited.jsonl", [
        # C is asked first and says 429, then A answers: C's attempt is rate-limited, not failed
        record(id="c1", model="lab/m", provider_name="A", created_at=at,
               provider_responses=[{"provider_name": "C", "status": 429, "latency": 5},
                                   {"provider_name": "A", "status": 200, "latency": 300}]),
        # C's own final answers: one 429 (rate-limited), one 503 (down), two successes
        record(id="c2", model="lab/m", provider_name="C", created_at=at, status=429, tokens_prompt=0,
               tokens_completion=0, latency=..., generation_time=...),
        record(id="c3", model="lab/m", provider_name="C", created_at=at, status=503, tokens_prompt=0,
               tokens_completion=0, latency=..., generation_time=...),
        record(id="c4", model="lab/m", provider_name="C", created_at=at),
        record(id="c5", model="lab/m", provider_name="C", created_at=at,
               provider_responses=[{"provider_name": "C", "status": 200, "latency": 400}]),
    ]))
    from analytics.models import EndpointHour

    c = Provider.objects.get(name="C")
    row = EndpointHour.objects.get(model=model, provider=c)
    assert (row.attempts, row.failed_attempts, row.rate_limited_attempts, row.requests, row.failed) == (
        5, 1, 2, 4, 2)  # requests: c2 (429) and c3 (503) failed for the account that sent them
    stats = endpoint_stats(model_id=model.pk, now=now)[c.pk]
    # 5 attempts, 2 rate-limited left out: 2 of the 3 others succeeded
    assert (stats.uptime_1d, stats.uptime_7d, stats.rate_limited_7d) == (
        pytest.approx(2 / 3), pytest.approx(2 / 3), pytest.approx(2 / 5))
    assert endpoint_stats(model_id=model.pk, now=now)[Provider.objects.get(name="A").pk].uptime_7d == (
        pytest.approx(5 / 6))  # A: 5 successes, the 502 of b1; unchanged by C's 429
    Endpoint.objects.create(model=model, provider=c, prompt_price=Decimal("0.000003"),
                            completion_price=Decimal("0.000003"))
    body = client.get("/api/v1/models/lab/m/endpoints").json()
    [row] = [e for e in body["endpoints"] if e["provider"] == "C"]
    assert (row["uptime_7d"], row["rate_limited_7d"]) == (pytest.approx(2 / 3), pytest.approx(0.4))
    page = client.get(f"/models/{model.author.slug}/{model.route_name}/").content.decode()
    assert "Rate-limited (7d)" in page
    assert re.search(r"C</a>.*?66\.7%.*?40\.0%", page, re.S)
