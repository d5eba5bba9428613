"""The OpenAPI schema at /api/schema/ describes what the API really answers (issue 17, item 4).

Real requests to the analytics and public rankings API (the ingest API, the rankings, a model's
endpoints, the daily dataset, the account's usage and generation log) on ingested traffic; each
JSON answer is validated against the schema the server publishes for its path, method and status.
"""
import re
from decimal import Decimal

import orjson
import pytest
from jsonschema import Draft202012Validator

from billing.accounts import account_token_create
from billing.models import Membership
from marketplace.models import Endpoint, Model, Provider
from tests.analytics.conftest import (  # noqa: F401  (fixtures)
    _fresh_prices,
    _no_task_queueing,
    account_traffic,
)
from tests.analytics.rankings.conftest import leaderboard_traffic
from tests.billing.factories import member_of

pytestmark = pytest.mark.django_db
INGEST_TOKEN = "schema-test-ingest-token"


def _json_schema(node):
    """OpenAPI 3.0's `nullable` as JSON Schema's null type (the rest of its schemas are JSON Schema)."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        if "type" in out and "enum" not in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.fixture
def api_schema(client) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return orjson.loads(response.content)


def _operation(schema: dict, path: str, method: str) -> dict:
    """The schema's operation whose path template matches a concrete path."""
    for template, operations in schema["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path) and method in operations:
            return operations[method]
    raise AssertionError(f"{method.upper()} {path} is not in the schema")


def assert_matches_schema(schema: dict, method: str, path: str, response) -> None:
    """The answer's status is declared for the operation and its JSON body validates against it."""
    declared = _operation(schema, path.split("?")[0], method)["responses"]
    assert str(response.status_code) in declared, (path, response.status_code, list(declared))
    content = declared[str(response.status_code)].get("content", {})
    body = response.json() if response.content else None
    if "application/json" not in content:
        assert body is None or not content, (path, response.status_code, "answers JSON the schema does not declare")
        return
    document = {**_json_schema(content["application/json"]["schema"]),
                "components": _json_schema(schema["components"])}
    errors = sorted(Draft202012Validator(document).iter_errors(body), key=str)
    assert not errors, (path, response.status_code, [e.message for e in errors[:5]])


@pytest.fixture
def account_token(tmp_path) -> str:
    accounts = account_traffic(tmp_path)
    mia = member_of(accounts["a"], Membership.Role.MEMBER, "mia")
    _, secret = account_token_create(account=accounts["a"], name="schema", created_by=mia)
    return secret


def test_rankings_and_model_endpoints_answer_as_the_schema_says(client, api_schema, tmp_path):
    leaderboard_traffic(tmp_path)
    alpha = Model.objects.get(slug="lab/alpha")
    Endpoint.objects.create(model=alpha, provider=Provider.objects.get(name="DeepInfra"),
                            prompt_price=Decimal("0.000001"), completion_price=Decimal("0.000002"))
    paths = ["/api/v1/rankings/models?window=day&metric=spend", "/api/v1/rankings/models?window=all",
             "/api/v1/rankings/authors?window=week", "/api/v1/rankings/providers?metric=spend",
             "/api/v1/rankings/apps?window=day", "/api/v1/rankings/apps?window=week&trending=true",
             "/api/v1/rankings/models?limit=many", "/api/v1/rankings/daily",
             "/api/v1/rankings/daily?start=2026-13-01", f"/api/v1/models/{alpha.slug}/endpoints",
             "/api/v1/models/lab/nothing-here/endpoints"]
    statuses = []
    for path in paths:
        response = client.get(path)
        statuses.append(response.status_code)
        assert_matches_schema(api_schema, "get", path, response)
    assert statuses == [200, 200, 200, 200, 200, 200, 400, 200, 400, 200, 404]
    endpoints = client.get(f"/api/v1/models/{alpha.slug}/endpoints").json()["endpoints"]
    assert [e["provider"] for e in endpoints] == ["DeepInfra"]  # a real row was validated


def test_the_account_api_answers_as_the_schema_says(client, api_schema, account_token):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {account_token}"}
    cases = [("/api/v1/account/usage", auth, 200), ("/api/v1/account/usage?group_by=model,week", auth, 200),
             ("/api/v1/account/usage?start=2026-02-30", auth, 400), ("/api/v1/account/generations?limit=2", auth, 200),
             ("/api/v1/account/generations?model=x", auth, 400), ("/api/v1/account/usage", {}, 401),
             ("/api/v1/account/savings", auth, 200), ("/api/v1/account/savings", {}, 401),
             ("/api/v1/credits", auth, 200)]
    for path, headers, expected in cases:
        response = client.get(path, **headers)
        assert response.status_code == expected, (path, response.content[:200])
        assert_matches_schema(api_schema, "get", path, response)
    rows = client.get("/api/v1/account/usage", **auth).json()["rows"]
    assert rows, "the usage rows validated are real ones"
    assert client.get("/api/v1/account/savings", **auth).json()["models"], "a real savings answer was validated"


def test_the_ingest_api_answers_as_the_schema_says(client, api_schema, settings):
    settings.INGEST_TOKEN = INGEST_TOKEN
    auth = {"HTTP_AUTHORIZATION": f"Bearer {INGEST_TOKEN}"}
    body = b'{"id": "s1", "created_at": "2026-02-24T21:19:33Z", "model": "lab/m", "account": "acct"}\n'
    queued = client.post("/api/v1/ingest?wait=0", data=body, content_type="application/x-ndjson", **auth)
    assert queued.status_code == 202
    assert_matches_schema(api_schema, "post", "/api/v1/ingest", queued)
    for query, headers, expected in (("?format=json&wait=0", auth, 400), ("?wait=0", {}, 401)):
        response = client.post(f"/api/v1/ingest{query}", data=body, content_type="application/x-ndjson", **headers)
        assert response.status_code == expected
        assert_matches_schema(api_schema, "post", "/api/v1/ingest", response)
    empty = client.post("/api/v1/ingest?wait=0", data=b"", content_type="application/x-ndjson", **auth)
    assert empty.status_code == 400
    assert_matches_schema(api_schema, "post", "/api/v1/ingest", empty)
    for batch_id, expected in ((queued.json()["batch_id"], 200), (999_999, 404)):
        path = f"/api/v1/ingest/{batch_id}"
        response = client.get(path, **auth)
        assert response.status_code == expected
        assert_matches_schema(api_schema, "get", path, response)
