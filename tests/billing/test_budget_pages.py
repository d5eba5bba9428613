"""The budgets page and the account API for budgets: owners edit, viewers read, bad input is a 400 with the
field and the reason, and another account's budgets are out of reach."""
from datetime import timedelta

import pytest

from billing import budgets
from billing.accounts import account_token_create
from billing.models import ApiKey, Budget, Reservation
from core.money import usd_to_units
from tests.conftest import NOW

from .conftest import buy, text_of

pytestmark = pytest.mark.django_db
GATEWAY_TOKEN = "gw-pages-token"  # noqa: S105  (test only)


@pytest.fixture(autouse=True)
def _gateway_token(settings):
    settings.GATEWAY_TOKEN = GATEWAY_TOKEN


def api(client, secret, method, path, body=None):
    return getattr(client, method)(f"/api/v1/account/{path}", body, content_type="application/json",
                                   HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_the_page_shows_use_holds_and_the_reset(client, acct_a, viewer, clock):
    buy(acct_a, "10")
    key = ApiKey.objects.create(account=acct_a, external_id="key_1")
    budget = budgets.budget_create(account=acct_a, scope="key", target="key_1", amount_units=usd_to_units("2"),
                                   period="day")
    budgets.spend_reserve(reservation_id="r1", key=key, amount_units=usd_to_units("0.5"))
    client.force_login(viewer)
    response = client.get("/account/credits/budgets/")
    assert response.status_code == 200
    text = text_of(response)
    assert "Key key_1 : $2.00 per day hard" in text
    assert "$0.50 of $2.00 used (25%)" in text
    assert "Held by open reservations $0.50" in text
    assert f"Resets {NOW.date() + timedelta(days=1):%a %Y-%m-%d} 00:00" in text  # UTC account: next midnight
    assert 'name="budget"' not in response.content.decode()  # a viewer gets no edit form
    assert client.post("/account/credits/budgets/delete/", {"budget": budget.pk}).status_code == 403
    assert Budget.objects.filter(pk=budget.pk).exists()


def test_an_owner_creates_edits_and_deletes_and_another_accounts_budget_is_404(client, acct_a, acct_b, owner):
    client.force_login(owner)
    response = client.post("/account/credits/budgets/save/", {"scope": "tag", "target": "prod", "amount": "12.5",
                                                              "period": "month", "mode": "soft", "alerts": "80, 50"})
    assert response.status_code == 302
    budget = Budget.objects.get(account=acct_a)
    assert (budget.scope, budget.target, budget.amount_units, budget.mode, budget.alert_percentages) == (
        "tag", "prod", usd_to_units("12.5"), "soft", [50, 80])
    client.post("/account/credits/budgets/save/", {"budget": budget.pk, "scope": "tag", "target": "prod",
                                                   "amount": "20", "period": "week", "mode": "hard"})
    budget.refresh_from_db()
    assert (budget.amount_units, budget.period, budget.mode) == (usd_to_units("20"), "week", "hard")
    theirs = budgets.budget_create(account=acct_b, scope="account", amount_units=1, period="day")
    assert client.post("/account/credits/budgets/delete/", {"budget": theirs.pk}).status_code == 404
    assert client.post("/account/credits/budgets/save/", {"budget": theirs.pk, "scope": "account", "amount": "1",
                                                          "period": "day", "mode": "hard"}).status_code == 404
    assert client.post("/account/credits/budgets/delete/", {"budget": str(2**64)}).status_code == 404
    client.post("/account/credits/budgets/delete/", {"budget": budget.pk})
    assert not Budget.objects.filter(account=acct_a).exists()
    assert Budget.objects.filter(pk=theirs.pk).exists()


def test_the_budgets_api_crud(client, acct_a, acct_b, owner, viewer):
    _, secret = account_token_create(account=acct_a, name="ci", created_by=owner)
    created = api(client, secret, "post", "budgets", {"scope": "each_user", "amount_usd": "3", "period": "week",
                                                      "alert_percentages": [80, 100]})
    assert created.status_code == 201, created.content
    body = created.json()
    assert {k: body[k] for k in ("scope", "target", "amount_usd", "period", "mode", "alert_percentages",
                                 "used_usd", "reserved_usd", "remaining_usd")} == {
        "scope": "each_user", "target": "", "amount_usd": "3.0000000000", "period": "week", "mode": "hard",
        "alert_percentages": [80, 100], "used_usd": "0.0000000000", "reserved_usd": "0.0000000000",
        "remaining_usd": "3.0000000000"}
    assert body["period_start"]
    assert body["resets_at"]
    url = f"budgets/{body['id']}"
    assert api(client, secret, "get", url).json()["id"] == body["id"]
    assert api(client, secret, "patch", url, {"amount_usd": "4.5", "mode": "soft"}).json()["amount_usd"] == \
        "4.5000000000"
    assert [b["id"] for b in api(client, secret, "get", "budgets").json()] == [body["id"]]
    theirs = budgets.budget_create(account=acct_b, scope="account", amount_units=1, period="day")
    for method in ("get", "patch", "delete"):
        assert api(client, secret, method, f"budgets/{theirs.pk}", {}).status_code == 404
    _, read_only = account_token_create(account=acct_a, name="v", created_by=viewer)
    assert api(client, read_only, "get", "budgets").status_code == 200
    assert api(client, read_only, "delete", url).status_code == 403
    assert api(client, secret, "delete", url).status_code == 204
    assert api(client, secret, "get", url).status_code == 404


@pytest.mark.parametrize(("path", "method", "body", "field"), [
    ("budgets", "post", {"scope": "account", "amount_usd": "-1", "period": "day"}, "amount_usd"),
    ("budgets", "post", {"scope": "account", "amount_usd": "1e12", "period": "day"}, "amount_usd"),
    ("budgets", "post", {"scope": "account", "amount_usd": "NaN", "period": "day"}, "amount_usd"),
    ("budgets", "post", {"scope": "account", "amount_usd": "1", "period": "fortnight"}, "period"),
    ("budgets", "post", {"scope": "planet", "amount_usd": "1", "period": "day"}, "scope"),
    ("budgets", "post", {"scope": "tag", "target": "t" * 65, "amount_usd": "1", "period": "day"}, "target"),
    ("budgets", "post", {"scope": "tag", "amount_usd": "1", "period": "day"}, "target"),
    ("budgets", "post", {"scope": "account", "target": "x", "amount_usd": "1", "period": "day"}, "target"),
    ("budgets", "post", {"scope": "account", "amount_usd": "1", "period": "day", "alert_percentages": [0]},
     "alert_percentages"),
    (f"budgets/{2**64}", "get", None, "id"),
    (f"budgets/{2**64}", "patch", {}, "id"),
    ("budget-settings", "patch", {"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
    ("budget-settings", "patch", {"week_start": 7}, "week_start"),
])
def test_bad_budget_input_is_a_400_with_the_field(client, acct_a, owner, path, method, body, field):
    _, secret = account_token_create(account=acct_a, name="ci", created_by=owner)
    response = api(client, secret, method, path, body)
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert response.json()[field]  # the reason


@pytest.mark.parametrize(("body", "field"), [
    ({"id": "g", "api_key": "key_1", "amount_usd": "-0.01"}, "amount_usd"),
    ({"id": "g", "api_key": "key_1", "amount_usd": "0"}, "amount_usd"),
    ({"id": "g", "api_key": "key_1", "amount_usd": "100000001"}, "amount_usd"),
    ({"id": "g", "api_key": "key_1", "amount_usd": "1", "tags": ["t" * 65]}, "tags"),
    ({"id": "g", "api_key": "key_1", "amount_usd": "1", "tags": "prod"}, "tags"),
    ({"id": "g" * 129, "api_key": "key_1", "amount_usd": "1"}, "id"),
    ({"api_key": "key_1", "amount_usd": "1"}, "id"),
    ({"id": "g", "amount_usd": "1"}, "api_key"),
])
def test_bad_reserve_input_is_a_400_with_the_field(client, acct_a, body, field):
    ApiKey.objects.create(account=acct_a, external_id="key_1")
    response = client.post("/api/v1/spend/reserve", body, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {GATEWAY_TOKEN}")
    assert response.status_code == 400, response.content
    assert response.json()[field]
    assert not Reservation.objects.exists()


def test_the_week_start_and_zone_move_the_periods(client, acct_a, owner, clock):
    _, secret = account_token_create(account=acct_a, name="ci", created_by=owner)
    answer = api(client, secret, "patch", "budget-settings", {"time_zone": "America/New_York", "week_start": 6})
    assert answer.json() == {"time_zone": "America/New_York", "week_start": 6, "week_start_name": "Sunday"}
