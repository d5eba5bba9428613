"""Rankings against hand-computed truth: windows, change, share, listing and the page."""
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from analytics.rankings import leaderboards as rankings
from analytics.rankings import prewarm
from marketplace.models import App, Model
from tests.analytics.conftest import record, run_batch, write_jsonl
from tests.analytics.rankings.conftest import hours_before

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def test_model_ranking_by_tokens_over_the_last_day(traffic):
    window = rankings.window_parse("day", now=traffic)
    rows = rankings.ranking_models(window=window, metric="tokens")

    assert [(r.rank, r.slug, r.value, r.previous) for r in rows] == [
        (1, "lab/alpha", 1500, 1000), (2, "lab/beta", 300, 600)]
    assert rows[0].change == pytest.approx(0.5)
    assert rows[1].change == pytest.approx(-0.5)
    assert rows[0].share == pytest.approx(1500 / 1800)


def test_model_ranking_by_spend_and_all_time(traffic):
    spend = rankings.ranking_models(window=rankings.window_parse("day", now=traffic), metric="spend")
    assert [(r.slug, r.value) for r in spend] == [("lab/beta", 6_000_000_000), ("lab/alpha", 3_000_000_000)]

    all_time = rankings.ranking_models(window=rankings.window_parse("all", now=traffic), metric="tokens")
    assert [(r.slug, r.value, r.previous, r.change) for r in all_time] == [
        ("lab/alpha", 2500, None, None), ("lab/beta", 900, None, None)]


def test_window_boundaries_are_whole_hours_ending_with_the_current_one(traffic):
    window = rankings.window_parse("day", now=traffic)
    assert window.end - window.start == timedelta(days=1)
    assert window.end == traffic.replace(minute=0) + timedelta(hours=1)
    assert window.previous.end == window.start


def test_providers_and_public_apps(traffic):
    window = rankings.window_parse("day", now=traffic)
    providers = rankings.ranking_providers(window=window, metric="tokens")
    assert [(r.name, r.value) for r in providers] == [("DeepInfra", 1500), ("Other", 300)]
    window = rankings.window_parse("week", now=traffic)  # apps roll up by day
    apps = rankings.ranking_apps(window=window, metric="tokens")
    assert [(r.name, r.value) for r in apps] == [("App One", 1000)]
    App.objects.update(public=False)
    cache.clear()
    assert rankings.ranking_apps(window=window, metric="tokens") == []


def test_the_rankings_page_reads_as_a_leaderboard(client, traffic, django_assert_max_num_queries):
    with django_assert_max_num_queries(30):  # cold cache: every ranking and chart reads its rollup once
        response = client.get("/rankings/", {"window": "day", "metric": "tokens"})
    with django_assert_max_num_queries(0):  # warm: everything comes from the rankings cache
        client.get("/rankings/", {"window": "day", "metric": "tokens"})
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))
    assert "1 alpha Lab 1.5K +50.0% 83%" in text
    assert "2 beta Lab 300 -50.0% 17%" in text
    assert "hidden" not in text
    assert "Top apps Apps are counted by UTC day: today so far, against yesterday." in text
    assert client.get("/").status_code == 200


def test_an_empty_site_says_so(client):
    assert "No traffic in this window yet" in client.get("/rankings/").content.decode()


def test_the_page_carries_its_charts_as_escaped_json_with_tables(client, traffic):
    from marketplace.models import App

    App.objects.update(name="<img src=x onerror=alert(1)>")
    body = client.get("/rankings/", {"window": "day"}).content.decode()
    for chart in ("chart-weekly-models", "chart-author-share", "chart-volume-money"):
        assert f'<div id="{chart}"' in body
        assert f'<script id="{chart}-data" type="application/json">' in body
    assert "<img src=x onerror=alert(1)>" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    # the no-JS table of the weekly chart: alpha's 2,500 tokens of all time fall in this week or the last
    assert "Week of" in body
    assert "/assets/plotly-" in body


def test_volume_against_money_by_author(traffic):
    window = rankings.window_parse("day", now=traffic)
    [lab] = rankings.authors_volume_vs_money(window=window)
    assert (lab.author, lab.token_share, lab.spend_share) == ("Lab", 1.0, 1.0)


def test_trending_apps_are_tokens_above_the_mean_of_three_preceding_windows(tmp_path):
    now = timezone.now().replace(hour=12, minute=30, second=0, microsecond=0)  # noon: day windows are dates
    rows = []
    # steady: 300 tokens on each of the last 4 days; rising: 0, 0, 300 then 900 today.
    for day, (steady, rising) in enumerate([(300, 900), (300, 300), (300, 0), (300, 0)]):
        at = hours_before(now, 24 * day + 1)
        rows.append(record(id=f"s{day}", created_at=at, tokens_prompt=steady, tokens_completion=0,
                           origin="https://steady.example", app_name="Steady"))
        if rising:
            rows.append(record(id=f"r{day}", created_at=at, tokens_prompt=rising, tokens_completion=0,
                               origin="https://rising.example", app_name="Rising"))
    run_batch(write_jsonl(tmp_path / "t.jsonl", rows))
    Model.objects.update(listed=True)
    window = rankings.window_parse("day", now=now)

    trending = rankings.ranking_apps(window=window, metric="tokens", trending=True)
    assert [(r.name, r.value, r.trend) for r in trending] == [("Rising", 900, 800.0), ("Steady", 300, 0.0)]


@pytest.mark.parametrize("minute_of_day", [12 * 60 + 30, 23 * 60 + 40, 0 * 60 + 40])
def test_day_and_week_windows_of_daily_rollups_are_today_and_the_six_days_before(tmp_path, minute_of_day):
    """Apps roll up by day: `day` is today so far, `week` seven dates, `previous` the ones before, at any hour.

    In the day's last hour the window starts at midnight: today's rows were dropped there once.
    """
    now = (timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
           + timedelta(minutes=minute_of_day))
    midnight = now.replace(hour=0, minute=0)
    # 100 tokens today, 10 yesterday, 1 on each of the 5 days before, 1000 a week ago and 10000 8 days ago
    days_tokens = [(0, 100), (1, 10), *((d, 1) for d in range(2, 7)), (7, 1000), (8, 10000)]
    run_batch(write_jsonl(tmp_path / "w.jsonl", [
        record(id=f"d{d}", created_at=(midnight - timedelta(days=d, minutes=-10)).strftime("%Y-%m-%dT%H:%M:%SZ"),
               tokens_prompt=tokens, tokens_completion=0, origin="https://daily.example", app_name="Daily")
        for d, tokens in days_tokens]))
    Model.objects.update(listed=True)

    [day] = rankings.ranking_apps(window=rankings.window_parse("day", now=now), metric="tokens")
    assert (day.value, day.previous) == (100, 10)
    [week] = rankings.ranking_apps(window=rankings.window_parse("week", now=now), metric="tokens")
    assert (week.value, week.previous) == (115, 11000)


def test_a_category_re_ranks_models_by_the_apps_that_use_them(tmp_path):
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    rows = [
        record(id="c1", model="lab/coder", created_at=hours_before(now, 1), tokens_prompt=100, tokens_completion=0,
               origin="https://ide.example", app_categories="programming-app"),
        record(id="c2", model="lab/chatty", created_at=hours_before(now, 1), tokens_prompt=1000, tokens_completion=0,
               origin="https://chat.example", app_categories="chat"),
        record(id="c3", model="lab/chatty", created_at=hours_before(now, 2), tokens_prompt=10, tokens_completion=0,
               origin="https://ide.example"),
    ]
    run_batch(write_jsonl(tmp_path / "c.jsonl", rows))
    Model.objects.update(listed=True)
    window = rankings.window_parse("week", now=now)

    everyone = rankings.ranking_models(window=window, metric="tokens")
    coding = rankings.ranking_models(window=window, metric="tokens", category="programming-app")
    assert [(r.slug, r.value) for r in everyone] == [("lab/chatty", 1010), ("lab/coder", 100)]
    assert [(r.slug, r.value) for r in coding] == [("lab/coder", 100), ("lab/chatty", 10)]
    assert ("programming-app", "Programming App") in rankings.categories_in_use()


def test_hiding_an_app_takes_it_off_cached_pages_at_once(client, traffic):
    first = client.get("/rankings/", {"window": "week"}).content.decode()
    assert "App One" in first
    assert "Apps are counted by UTC day: the last 7 days, today so far included." in first
    app = App.objects.get(name="App One")
    app.public = False
    app.save(update_fields=["public"])  # what the admin does
    assert "App One" not in client.get("/rankings/", {"window": "week"}).content.decode()
    assert client.get(f"/apps/{app.slug}/").status_code == 404


def test_the_prewarm_leaves_the_rankings_page_without_rollup_queries(client, traffic, django_assert_max_num_queries):
    prewarm.rankings_prewarm()
    with django_assert_max_num_queries(1):  # at most the session-less auth check; no rollup reads
        response = client.get("/rankings/", {"window": "month", "metric": "spend"})
    assert "alpha" in response.content.decode()


def test_a_page_reads_the_rankings_version_once_and_keeps_it(client, traffic, monkeypatch):
    from analytics.rankings import cache as rankings_cache

    prewarm.rankings_prewarm()
    reads = []
    current = rankings_cache.VersionCounter.current
    monkeypatch.setattr(rankings_cache.VersionCounter, "current", lambda self: reads.append(1) or current(self))
    assert client.get("/rankings/", {"window": "month", "nocache": "1"}).status_code == 200
    assert len(reads) == 1  # a dozen rankings and the page itself, one version read
    before = rankings_cache.version()
    with rankings_cache.version_pinned():
        rankings_cache.rankings_invalidate()  # ingestion moves it mid-request
        assert rankings_cache.version() == before
        with rankings_cache.version_pinned():
            assert rankings_cache.version() == before
        assert rankings_cache.version() == before
    assert rankings_cache.version() == before + 1


def test_changes_against_a_partial_previous_window_say_so(client, tmp_path):
    """Traffic began 9 days ago: the week before this one holds 2 of its 7 days, so a change is `partial`."""
    from datetime import timedelta

    from marketplace.models import Model
    from tests.analytics.conftest import at, record, run_batch, write_jsonl
    from tests.conftest import TODAY

    first = TODAY - timedelta(days=9)
    run_batch(write_jsonl(tmp_path / "t.jsonl", [
        record(id="p1", model="lab/alpha", created_at=at(first, 10), tokens_prompt=100, tokens_completion=0),
        record(id="p2", model="lab/alpha", created_at=at(TODAY - timedelta(days=1), 10), tokens_prompt=600,
               tokens_completion=0)]))
    Model.objects.update(listed=True)

    page = client.get("/rankings/", {"window": "week"}).content.decode()
    assert ('<span class="muted" title="+500.0% against a previous window with traffic on 2 of its 7 days">'
            'partial</span>') in page
    assert "which hold traffic on only 2 of them" in page
    month = client.get("/rankings/", {"window": "month"}).content.decode()
    assert '<span class="muted">new</span>' in month  # the 30 days before this month's hold no traffic
    assert "none of them: every row is <em>new</em>" in month
