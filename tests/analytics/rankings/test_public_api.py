"""The public API as a data product: ETag and 304, Cache-Control, a throttle per client, the dataset's meta."""
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone

from analytics.models import IngestBatch
from marketplace.models import Model
from tests.analytics.conftest import record, run_batch, write_jsonl

pytestmark = pytest.mark.django_db
PUBLIC = ("/api/v1/rankings/models", "/api/v1/rankings/authors", "/api/v1/rankings/providers",
          "/api/v1/rankings/apps", "/api/v1/rankings/daily")


@pytest.fixture
def traffic(tmp_path, clock):
    cache.clear()
    at = (timezone.now() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    run_batch(write_jsonl(tmp_path / "t.jsonl", [record(id=f"p{i}", model=f"lab/p{i}", created_at=at)
                                                 for i in range(3)]))
    Model.objects.update(listed=True)


def test_a_matching_etag_answers_304_without_a_body_and_new_figures_change_it(client, traffic, tmp_path):
    first = client.get("/api/v1/rankings/models")
    assert first.status_code == 200
    etag = first["ETag"]
    assert etag.startswith('"')
    assert first["Cache-Control"] == "public, max-age=60"
    again = client.get("/api/v1/rankings/models", HTTP_IF_NONE_MATCH=etag)
    assert (again.status_code, again.content, again["ETag"]) == (304, b"", etag)
    assert client.get("/api/v1/rankings/models", HTTP_IF_NONE_MATCH='"other"').status_code == 200
    assert client.get("/api/v1/rankings/models", {"metric": "spend"}, HTTP_IF_NONE_MATCH=etag).status_code == 200
    cache.clear()
    at = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    run_batch(write_jsonl(tmp_path / "more.jsonl", [record(id="p9", model="lab/p0", created_at=at)]))
    changed = client.get("/api/v1/rankings/models", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    for url in PUBLIC:
        response = client.get(url)
        assert (response.status_code, response.has_header("ETag")) == (200, True), url
    csv = client.get("/api/v1/rankings/daily.csv")
    assert csv["Cache-Control"] == "public, max-age=60"
    assert not csv.has_header("ETag")


@override_settings(PUBLIC_API_RATE="3/min")
def test_past_the_rate_a_client_gets_429_with_retry_after_and_others_do_not(client, traffic):
    cache.clear()
    statuses = [client.get(PUBLIC[i % len(PUBLIC)]).status_code for i in range(4)]  # all views count together
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/api/v1/rankings/models")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert refused.json()["detail"].startswith("Request was throttled.")
    assert client.get("/api/v1/rankings/models", REMOTE_ADDR="203.0.113.9").status_code == 200
    # a forged X-Forwarded-For does not make another client (no proxy is trusted by default)
    assert client.get("/api/v1/rankings/models", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429


def test_the_daily_dataset_says_when_its_figures_last_changed_and_how_they_are_made(client, traffic):
    IngestBatch.objects.update(ranked_at=None)
    body = client.get("/api/v1/rankings/daily").json()
    assert body["meta"]["as_of"] is None
    ranked = timezone.now().replace(microsecond=0) - timedelta(minutes=5)
    IngestBatch.objects.update(ranked_at=ranked)
    cache.clear()
    body = client.get("/api/v1/rankings/daily").json()
    assert body["meta"] == {
        "as_of": ranked.isoformat().replace("+00:00", "Z"), "licence": "CC-BY-4.0, cite Tokengrid",
        "source": "Tokengrid, from routed-traffic logs",
        "method": "Per UTC day, the 50 listed models with the most tokens (prompt + completion, BYOK included) "
                  "over every ingested request, ties by slug; the other listed models summed in one `other` row."}
    assert body["licence"] == body["meta"]["licence"]
