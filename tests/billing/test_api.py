"""The credits API (account token) and the OpenAPI schema of the billing views."""
import pytest
from django.core.management import call_command

from billing.accounts import account_token_create
from billing.ledger import ledger_debit_usage
from core.money import usd_to_units

from .conftest import buy

pytestmark = pytest.mark.django_db


def test_credits_api_answers_the_tokens_account_only(client, acct_a, acct_b, owner):
    buy(acct_a, "10")
    buy(acct_b, "99")
    ledger_debit_usage(spend_by_account={acct_a.pk: usd_to_units("12.5")}, idempotency_prefix="t")
    _, secret = account_token_create(account=acct_a, name="ci", created_by=owner)
    body = client.get("/api/v1/credits?limit=1", HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    assert body["balance_usd"] == "-2.5000000000"
    assert body["overdrawn"] is True
    assert [(e["kind"], e["amount_usd"], e["balance_after_usd"]) for e in body["recent"]] == [
        ("usage", "-12.5000000000", "-2.5000000000")]
    assert len(client.get("/api/v1/credits", HTTP_AUTHORIZATION=f"Bearer {secret}").json()["recent"]) == 2
    assert client.get("/api/v1/credits").status_code in (401, 403)
    assert client.get("/api/v1/credits", HTTP_AUTHORIZATION="Bearer tg_wrong").status_code == 401


def test_schema_lists_the_billing_api_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = out.read_text()
    for path in ("/api/v1/credits:", "/api/v1/keys:", "/api/v1/keys/{key_id}:"):
        assert path in schema
    assert "accountToken" in schema


@pytest.mark.parametrize(("limit", "entries"), [("", 20), ("x", 20), ("1.5", 20), ("-3", 0), ("0", 0), ("7", 7),
                                                ("500", 200)])
def test_the_credits_apis_limit_is_clamped_and_an_unreadable_one_is_the_default(client, acct_a, owner, limit,
                                                                                 entries):
    for i in range(1, 206):
        ledger_debit_usage(spend_by_account={acct_a.pk: i}, idempotency_prefix=f"t{i}")
    _, secret = account_token_create(account=acct_a, name="ci", created_by=owner)
    response = client.get("/api/v1/credits", {"limit": limit}, HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200
    assert len(response.json()["recent"]) == entries
