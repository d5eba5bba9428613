"""Schemathesis over the API schema: no generated request makes a 5xx (issue 16, item 3).

The schema comes from drf-spectacular in-process (`/api/schema/` through the WSGI app) and every
operation of `/api/v1/` gets requests generated from it, valid and invalid, sent through the same app
on the test database: once anonymous, once with an account token of a member of an account with
ingested traffic. `DEBUG` is off, so an exception is a plain 500 as in production. Each response must
not be a server error and, where the schema describes it truthfully, must match the schema.
Deterministic: a fixed seed, derandomized, no example database; 25 examples an operation.

`POST /api/v1/ingest` is fuzzed without the ingest token only (it answers 401): with the token it
stores the body and waits up to `wait` seconds for the batch.
"""
import orjson
import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client, override_settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import response_schema_conformance

from billing.accounts import account_token_create
from billing.models import Membership
from tests.analytics.conftest import (  # noqa: F401  (fixtures)
    _fresh_prices,
    _no_task_queueing,
    account_traffic,
)
from tests.billing.factories import member_of

HOST = "localhost"  # the Host header schemathesis's WSGI client sends

# Operations held to "no server error" only, while the schema does not describe their answers (the
# rankings and a model's endpoints were declared as lists until their envelopes were declared).
SCHEMA_MISMATCH: set[str] = set()  # operations whose answers do not match the schema yet (none)

_django = WSGIHandler()


def _app(environ, start_response):
    """Django's WSGI app without closing the connection around each request, as Django's test client
    does: the test's transaction lives on that connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = _django(environ, start_response)
        try:
            body = b"".join(response)
        finally:
            response.close()
        return [body]
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value) -> bytes:
    """The ingest body: lines of text (a negative case may be any JSON value)."""
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else orjson.dumps(value)


CONFIG = SchemathesisConfig.from_dict({
    "seed": 16,
    "generation": {"max-examples": 25, "deterministic": True, "database": "none"},
})

with override_settings(ALLOWED_HOSTS=[HOST]):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", _app, config=CONFIG).include(path_regex="^/api/v1/")

# The fixtures (test database, traffic, token) are set up once per operation and shared by its
# examples: the requests fuzzed only read.
FIXTURES_ONCE = hypothesis_settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def checks_for(case) -> list:
    if case.operation.label in SCHEMA_MISMATCH:
        return [not_a_server_error]
    return [not_a_server_error, response_schema_conformance]


@pytest.fixture
def production(db, settings):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = [HOST]


@pytest.fixture
def token(production, tmp_path) -> str:
    """An account token of a member of account A, which has traffic."""
    accounts = account_traffic(tmp_path)
    mia = member_of(accounts["a"], Membership.Role.MEMBER, "mia")
    _, secret = account_token_create(account=accounts["a"], name="fuzz", created_by=mia)
    return secret


@schema.parametrize()
@FIXTURES_ONCE
def test_anonymous_requests_make_no_server_error(case, production):
    response = case.call()
    case.validate_response(response, checks=checks_for(case))


@schema.parametrize()
@FIXTURES_ONCE
def test_requests_with_an_account_token_make_no_server_error(case, token):
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    case.validate_response(response, checks=checks_for(case))


def test_the_fuzzing_token_reaches_the_accounts_data(token):
    """The signed-in run is signed in: the token reads account A's usage."""
    client = Client(HTTP_HOST=HOST)
    response = client.get("/api/v1/credits", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    usage = client.get("/api/v1/account/usage", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert usage.status_code == 200
    assert usage.json() != {}
