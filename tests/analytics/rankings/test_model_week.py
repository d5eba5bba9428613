"""The catalog's week table (ModelWeek): its refresh equals the week's figures merged from the rollups."""
from collections import defaultdict
from datetime import timedelta

import pytest
from django.db.models import F, Sum
from django.utils import timezone

from analytics import histograms
from analytics.models import EndpointDay, EndpointHistogram, ModelWeek
from analytics.rankings.catalog import catalog_models, catalog_query_parse, model_weeks_refresh
from marketplace.models import Model
from tests.analytics.conftest import record, run_batch, write_jsonl

pytestmark = pytest.mark.django_db


def _at(now, days: float) -> str:
    return (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def week(tmp_path, clock):
    """lab/a at two providers over two days of this week, lab/b this week once, lab/old 10 days ago only.

    lab/a: latencies 100, 200, 300, 400, 2000 ms (p50, the 3rd of 5: 300 ms); throughput 50, 100, 150, 200,
    300 tokens/s (p50: 150); tokens 5 x (100 + completion) = 500 + 800 = 1,300.
    """
    clock.move_to(timezone.now().replace(hour=12, minute=30, second=0, microsecond=0))
    now = timezone.now()
    samples = [("P1", 1, 100, 50), ("P1", 1, 200, 100), ("P2", 2, 300, 150), ("P2", 2, 400, 200), ("P1", 3, 2000, 300)]
    rows = [record(id=f"a{i}", model="lab/a", provider_name=p, created_at=_at(now, days), latency=latency,
                   generation_time=1000, tokens_prompt=100, tokens_completion=completion)
            for i, (p, days, latency, completion) in enumerate(samples)]
    rows += [record(id="b1", model="lab/b", provider_name="P1", created_at=_at(now, 0.1), latency=50,
                    generation_time=500, tokens_prompt=10, tokens_completion=20),
             record(id="o1", model="lab/old", provider_name="P1", created_at=_at(now, 10), latency=9,
                    generation_time=1000, tokens_prompt=1, tokens_completion=1)]
    run_batch(write_jsonl(tmp_path / "w.jsonl", rows))
    Model.objects.filter(slug__in=["lab/a", "lab/b", "lab/old"]).update(listed=True)
    return now


def _merged_per_request(now) -> dict[int, tuple[int, int | None, int | None]]:
    """The figures as the page computed them per request before the table: Python over the week's rollup rows."""
    first = (now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1) - timedelta(days=7)).date()
    tokens = dict(EndpointDay.objects.filter(day__gte=first).values("model_id")
                  .annotate(t=Sum(F("tokens_prompt") + F("tokens_completion"))).values_list("model_id", "t"))
    counts = defaultdict(lambda: defaultdict(int))
    for model_id, metric, bucket, n in EndpointHistogram.objects.filter(day__gte=first).values_list(
            "model_id", "metric", "bucket", "count"):
        counts[(model_id, metric)][bucket] += n

    def p50(model_id, metric):
        value = histograms.percentile(counts.get((model_id, metric), {}), 0.5)
        return None if value is None else next(b for b in counts[(model_id, metric)] if histograms.value_of(b) == value)

    return {m: (tokens.get(m) or 0, p50(m, EndpointHistogram.Metric.THROUGHPUT), p50(m, EndpointHistogram.Metric.LATENCY))
            for m in set(tokens) | {m for m, _ in counts}}


def test_the_refresh_holds_each_models_week_as_merged_from_the_rollups(week):
    assert model_weeks_refresh() == 2
    a, b = Model.objects.get(slug="lab/a"), Model.objects.get(slug="lab/b")
    table = {w.model_id: (w.tokens, w.throughput_p50_bucket, w.latency_p50_bucket) for w in ModelWeek.objects.all()}
    assert table == {a.pk: (1_300, histograms.bucket_of(150), histograms.bucket_of(300)),
                     b.pk: (30, histograms.bucket_of(40), histograms.bucket_of(50))}
    assert table == _merged_per_request(week)
    assert set(ModelWeek.objects.values_list("as_of", flat=True)) == {
        week.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)}
    rows = {r.model.slug: r for r in catalog_models(catalog_query_parse({"has_traffic": "1"}))}
    assert list(rows) == ["lab/a", "lab/b"]
    assert rows["lab/a"].throughput_p50 == histograms.value_of(histograms.bucket_of(150))
    assert abs(rows["lab/a"].latency_p50 - 300) / 300 < 0.05


def test_an_even_count_takes_the_lower_middle_as_the_nearest_rank(week, tmp_path):
    run_batch(write_jsonl(tmp_path / "more.jsonl", [
        record(id="a9", model="lab/a", provider_name="P2", created_at=_at(week, 1), latency=5000,
               generation_time=1000, tokens_prompt=0, tokens_completion=400)]))
    model_weeks_refresh()
    # six samples: the 3rd (ceil(0.5 x 6)) of 100, 200, 300, 400, 2000, 5000 ms and of 50 ... 400 tokens/s
    row = ModelWeek.objects.get(model__slug="lab/a")
    assert (row.tokens, row.latency_p50_bucket, row.throughput_p50_bucket) == (
        1_700, histograms.bucket_of(300), histograms.bucket_of(150))
    assert {row.model_id: (row.tokens, row.throughput_p50_bucket, row.latency_p50_bucket)
            for row in ModelWeek.objects.all()} == _merged_per_request(week)


def test_a_later_week_replaces_the_rows_and_drops_models_that_left_it(week, clock):
    model_weeks_refresh()
    clock.shift(timedelta(days=5).total_seconds())  # the week now starts 2 days before the fixture's day
    assert model_weeks_refresh() == 2
    a = ModelWeek.objects.get(model__slug="lab/a")
    # the sample of 3 days before left (2000 ms, 300 tokens/s): four remain, p50 the 2nd of them
    assert (a.tokens, a.latency_p50_bucket, a.throughput_p50_bucket) == (
        900, histograms.bucket_of(200), histograms.bucket_of(100))
    assert ModelWeek.objects.count() == 2  # the rows of the earlier hour were replaced, not kept beside
    clock.shift(timedelta(days=3).total_seconds())
    model_weeks_refresh()
    assert ModelWeek.objects.count() == 0  # nothing in the last week now: no rows, none stale
    assert list(catalog_models(catalog_query_parse({"has_traffic": "1"}))) == []


def test_an_older_refresh_never_overwrites_a_newer_one(week):
    later = week + timedelta(hours=3)
    model_weeks_refresh(now=later)
    assert model_weeks_refresh(now=week) == 0  # a slow run of an earlier hour finishing last
    assert set(ModelWeek.objects.values_list("as_of", flat=True)) == {
        later.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)}


def test_the_rankings_task_refreshes_the_table_and_the_catalog_page_shows_it(week, client):
    from django.core.cache import cache

    from analytics.rankings.tasks import rollup_rankings_refresh

    cache.clear()
    assert not ModelWeek.objects.exists()  # ingestion itself writes no row (off the ingest path)
    rollup_rankings_refresh.run()
    assert ModelWeek.objects.get(model__slug="lab/a").tokens == 1_300
    text = client.get("/models/", {"has_traffic": "1"}).content.decode()
    assert "2 models." in text
    assert "1.3K" in text  # lab/a's tokens this week
