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
    week, day, hour = (endpoint_stats(model_id=model.pk, now=now, window=w) for w in ("7d", "1d", "1h"))
    a_id, b_id = Provider.objects.get(name="A").pk, Provider.objects.get(name="B").pk
    a, b = week[a_id], week[b_id]

    # A: 4 successes + 1 failed attempt before B answered; B: 2 successes today, 1 failure 3 days ago.
    assert (day[a_id].uptime, a.uptime) == (pytest.approx(0.8), pytest.approx(0.8))
    assert (day[b_id].uptime, b.uptime) == (pytest.approx(1.0), pytest.approx(2 / 3))
    # the last hour (12:00-13:00, the clock at 12:30) holds no request: no traffic, no uptime; the
    # percentiles are today's (the histograms are daily)
    assert (hour[a_id].tokens, hour[a_id].uptime, hour[a_id].share) == (0, None, 0.0)
    assert hour[a_id].latency == day[a_id].latency
    # Nearest-rank percentiles of the exact values, within 5%: A latency 100..400 ms, throughput 50..200 tok/s.
    assert a.latency == pytest.approx((200, 300, 400, 400), rel=0.05)
    assert a.throughput == pytest.approx((100, 150, 200, 200), rel=0.05)
    assert (a.latency_p50, a.latency_p90) == (a.latency[0], a.latency[2])
    assert b.latency_p50 == pytest.approx(1000, rel=0.05)
    assert b.throughput_p90 == pytest.approx(300, rel=0.05)
    # Tokens over 7 days: A 4 x 100 prompt + 500 completion = 900; B 200 + 400 = 600.
    assert (a.tokens, b.tokens) == (900, 600)
    assert a.share == pytest.approx(0.6)


def test_percentiles_merged_across_days_are_within_5_percent_of_the_exact_ones(tmp_path, clock):
    import math
    import random

    from analytics.histograms import percentile
    from analytics.models import EndpointHistogram

    clock.move_to(timezone.now().replace(hour=12, minute=0, second=0, microsecond=0))
    now = timezone.now()
    rng = random.Random(19)
    latencies = [round(rng.lognormvariate(6.5, 0.8)) for _ in range(12_000)]
    rows = [record(id=f"h{i}", model="lab/h", provider_name="H", latency=value, generation_time=1000,
                   created_at=(now - timedelta(days=i % 3, hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
            for i, value in enumerate(latencies)]
    run_batch(write_jsonl(tmp_path / "h.jsonl", rows))
    model = Model.objects.get(slug="lab/h")
    assert EndpointHistogram.objects.filter(model=model, metric=1).values("day").distinct().count() == 3
    stats = endpoint_stats(model_id=model.pk, now=now)[Provider.objects.get(name="H").pk]
    ordered = sorted(latencies)
    for q, merged in zip((0.5, 0.75, 0.9, 0.99), stats.latency, strict=True):
        exact = ordered[max(1, math.ceil(len(ordered) * q)) - 1]  # nearest rank
        assert merged == pytest.approx(exact, rel=0.05), q
    assert percentile({}, 0.5) is None


def test_a_provider_seen_only_in_the_traffic_is_a_row_with_an_unknown_price(client, served):
    model, now = served
    from analytics.rankings.endpoint_stats import model_endpoints

    Endpoint.objects.filter(model=model, provider__name="B").delete()  # B still served it
    rows = model_endpoints(model=model)
    assert [(r.provider.name, r.endpoint is not None) for r in rows] == [("A", True), ("B", False)]
    assert (rows[1].cheapest, rows[1].blended, rows[0].cheapest) == (False, None, True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", client.get(model.get_absolute_url()).content.decode()))
    assert "B not in the catalog price unknown unknown unknown" in text
    [b] = [e for e in client.get("/api/v1/models/lab/m/endpoints").json()["endpoints"] if e["provider"] == "B"]
    assert (b["in_catalog"], b["prompt_price_per_million"], b["uptime_7d"]) == (False, None, pytest.approx(2 / 3))


def test_the_model_page_charts_uptime_per_hour_and_takes_a_window(client, served):
    from analytics.rankings.endpoint_stats import hourly_uptime

    model, now = served
    series = hourly_uptime(model_id=model.pk, now=now)
    assert len(series.periods) == 72
    assert series.periods[-1] == f"{now:%Y-%m-%d} 12:00"
    # A's failed attempt (b1's fallback, 2 h before 12:30) is in the 10:00 hour with A's a1 success
    assert series.series["A"][series.periods.index(f"{now:%Y-%m-%d} 10:00")] == 50.0
    assert series.series["B"][series.periods.index(f"{now:%Y-%m-%d} 10:00")] == 100.0
    assert series.series["B"][series.periods.index(f"{now:%Y-%m-%d} 09:00")] == 100.0
    assert series.series["A"][series.periods.index(f"{now:%Y-%m-%d} 09:00")] == 100.0
    assert sum(v is not None for v in series.series["B"]) == 2  # b1's and b2's hours (b3 is 72 h 30 ago)
    body = client.get(model.get_absolute_url()).content.decode()
    assert 'id="chart-model-uptime"' in body
    hour = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", client.get(model.get_absolute_url(), {"window": "1h"})
                                      .content.decode()))
    assert "over the last hour" in hour


def test_the_model_page_marks_cheapest_fastest_and_most_reliable(client, served, django_assert_max_num_queries):
    model, _ = served
    with django_assert_max_num_queries(12):
        response = client.get(model.get_absolute_url())
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))
    assert "B cheapest $1.00 $1.00" in text
    assert "A fastest most reliable $2.00 $2.00" in text
    assert re.search(r"A fastest most reliable .*? 80\.0% ", text)
    assert re.search(r"B cheapest .*? 66\.7% ", text)


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
    assert (stats.uptime, stats.rate_limited) == (pytest.approx(2 / 3), pytest.approx(2 / 5))
    assert endpoint_stats(model_id=model.pk, now=now, window="1d")[c.pk].uptime == pytest.approx(2 / 3)
    assert endpoint_stats(model_id=model.pk, now=now)[Provider.objects.get(name="A").pk].uptime == (
        pytest.approx(5 / 6))  # A: 5 successes, the 502 of b1; unchanged by C's 429
    Endpoint.objects.create(model=model, provider=c, prompt_price=Decimal("0.000003"),
                            completion_price=Decimal("0.000003"))
    body = client.get("/api/v1/models/lab/m/endpoints").json()
    [row] = [e for e in body["endpoints"] if e["provider"] == "C"]
    assert (row["uptime_7d"], row["rate_limited_7d"]) == (pytest.approx(2 / 3), pytest.approx(0.4))
    page = client.get(f"/models/{model.author.slug}/{model.route_name}/").content.decode()
    assert "Rate-limited" in page
    assert re.search(r"C</a>.*?66\.7%.*?40\.0%", page, re.S)


def test_a_provider_only_tried_as_a_fallback_is_no_row_and_no_line(served, tmp_path):
    from analytics.rankings.endpoint_stats import hourly_uptime, model_endpoints

    model, now = served
    at = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    run_batch(write_jsonl(tmp_path / "tried.jsonl", [
        record(id="z1", model="lab/m", provider_name="A", created_at=at,
               provider_responses=[{"provider_name": "Zed", "status": 502, "latency": 5},
                                   {"provider_name": "A", "status": 200, "latency": 300}])]))
    zed = Provider.objects.get(name="Zed")
    stats = endpoint_stats(model_id=model.pk, now=now)
    assert (stats[zed.pk].attempts, stats[zed.pk].requests, stats[zed.pk].uptime) == (1, 0, 0.0)
    assert [r.provider.name for r in model_endpoints(model=model)] == ["B", "A"]  # by price; no Zed
    assert sorted(hourly_uptime(model_id=model.pk, now=now).series) == ["A", "B"]
