"""The public API: rankings, model endpoints, the daily dataset, and the schema."""
import csv
import io
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from core.params import DATE_ERROR
from marketplace.models import Endpoint, Model, Provider
from tests.analytics.conftest import record, run_batch, write_jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture
def day_of_traffic(tmp_path):
    cache.clear()
    now = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)
    at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [record(id=f"m{i}", model=f"lab/m{i:02d}", created_at=at, tokens_prompt=1000 - i, tokens_completion=i,
                   total_cost=0.001) for i in range(55)]
    run_batch(write_jsonl(tmp_path / "d.jsonl", rows))
    Model.objects.update(listed=True)
    return now.date()


def test_model_rankings_api(client, day_of_traffic):
    body = client.get("/api/v1/rankings/models", {"window": "week", "metric": "spend", "limit": 2}).json()
    assert (body["window"], body["metric"]) == ("week", "spend")
    assert [r["rank"] for r in body["results"]] == [1, 2]
    assert body["results"][0]["value"] == "0.0010000000"  # exact USD, never a float
    tokens = client.get("/api/v1/rankings/models", {"window": "week"}).json()["results"]
    assert tokens[0]["value"] == "1000"
    assert client.get("/api/v1/rankings/models", {"limit": "many"}).status_code == 400
    for kind in ("authors", "providers", "apps"):
        assert client.get(f"/api/v1/rankings/{kind}").status_code == 200


def test_ranking_parameters_read_as_the_pages_read_them_and_refuse_what_is_not_a_number(client, day_of_traffic):
    def get(**params):
        return client.get("/api/v1/rankings/models", params)

    body = get(window="fortnight", metric="volume").json()  # unknown names: the defaults, as on the pages
    assert (body["window"], body["metric"]) == ("week", "tokens")
    assert len(get(limit=0).json()["results"]) == 1  # brought within 1..100
    assert len(get(limit=1000).json()["results"]) == 55  # all there are, at most 100
    refused = get(limit="many")
    assert (refused.status_code, refused.json()) == (400, {"limit": ["a whole number from 1 to 100"]})
    assert get(category="").status_code == 200
    assert [r["slug"] for r in get(category="nothing-such").json()["results"]] == []
    refused = client.get("/api/v1/rankings/apps", {"trending": "perhaps"})
    assert (refused.status_code, list(refused.json())) == (400, ["trending"])


def test_the_daily_dataset_refuses_a_range_it_cannot_answer(client):
    def refusal(**params):
        response = client.get("/api/v1/rankings/daily", params)
        assert response.status_code == 400, params
        return response.json()

    assert refusal(end="2026-02-30") == {"end": [DATE_ERROR]}
    assert refusal(start="2026-11-02", end="2026-11-01") == {
        "start": ["start must be on or before end, at most 366 days apart"]}
    assert refusal(start="2025-01-01", end="2026-01-02") == refusal(start="2026-11-02", end="2026-11-01")
    body = client.get("/api/v1/rankings/daily", {"start": "2025-01-01", "end": "2026-01-01"}).json()  # 366 days
    assert (body["start"], body["end"], body["rows"]) == ("2025-01-01", "2026-01-01", [])


def test_the_daily_dataset_has_top_50_and_an_other_row(client, day_of_traffic):
    day = day_of_traffic.isoformat()
    body = client.get("/api/v1/rankings/daily", {"start": day, "end": day}).json()
    rows = body["rows"]
    assert len(rows) == 51
    # $0.001 for 1,000 tokens: $1 per 1M
    assert rows[0] == {"date": day, "rank": 1, "model": "lab/m00", "tokens_prompt": 1000, "tokens_completion": 0,
                       "tokens": 1000, "spend_usd": "0.0010000000", "price_per_million_usd": "1.000000"}
    # models 50..54 have 1000 tokens each too but lose the tie on the slug: they make `other`
    assert rows[-1] == {"date": day, "rank": None, "model": "other", "tokens_prompt": sum(1000 - i for i in range(50, 55)),
                        "tokens_completion": sum(range(50, 55)), "tokens": 5000, "spend_usd": "0.0050000000",
                        "price_per_million_usd": "1.000000"}

    response = client.get("/api/v1/rankings/daily.csv", {"start": day, "end": day})
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert lines[0] == ["date", "rank", "model", "tokens_prompt", "tokens_completion", "tokens", "spend_usd",
                        "price_per_million_usd"]
    assert lines[1] == [day, "1", "lab/m00", "1000", "0", "1000", "0.0010000000", "1.000000"]
    assert lines[-1][:3] == [day, "", "other"]
    assert client.get("/api/v1/rankings/daily", {"start": "2026-13-01"}).status_code == 400


def test_model_endpoints_api(client, day_of_traffic):
    model = Model.objects.get(slug="lab/m01")
    Endpoint.objects.create(model=model, provider=Provider.objects.get(name="DeepInfra"),
                            prompt_price="0.000001", completion_price="0.000002")
    body = client.get("/api/v1/models/lab/m01/endpoints").json()
    [endpoint] = body["endpoints"]
    assert (endpoint["provider"], endpoint["prompt_price_per_million"], endpoint["uptime_7d"]) == (
        "DeepInfra", "1.000000000", 1.0)
    assert endpoint["cheapest"] is True
    assert client.get("/api/v1/models/lab/nothing/endpoints").status_code == 404


def test_the_schema_documents_every_route(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for route in ("/api/v1/rankings/models", "/api/v1/rankings/daily", "/api/v1/rankings/daily.csv",
                  "/api/v1/models/{author}/{name}/endpoints", "/api/v1/ingest"):
        assert route in schema["paths"], route
    assert "ingestToken" in schema["components"]["securitySchemes"]
