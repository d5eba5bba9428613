"""One role check: `account_required(role=…, write_role=…)` on every page, `api_account(request, role=…)`
in every API view; the refusals read the same wherever they come from."""
import pytest

from billing.accounts import account_token_create
from billing.models import Account, Budget

pytestmark = pytest.mark.django_db


def _token(user, account: Account) -> str:
    return account_token_create(account=account, name="script", created_by=user)[1]


@pytest.mark.parametrize("action", ["buy", "alert", "auto-topup"])
def test_an_owners_action_refuses_a_member_and_a_viewer_with_one_sentence(client, member, viewer, action):
    for user in (member, viewer):
        client.force_login(user)
        response = client.post(f"/account/credits/{action}/", {"amount": "20"})
        assert (response.status_code, response.content) == (403, b"Only owners can do this.")


def test_an_action_answers_405_to_a_get_before_any_role_is_checked(client, owner, viewer):
    for user in (owner, viewer):
        client.force_login(user)
        assert client.get("/account/credits/buy/").status_code == 405


def test_a_page_that_viewers_read_and_members_change(client, viewer, member):
    client.force_login(viewer)
    assert client.get("/account/keys/").status_code == 200
    refused = client.post("/account/keys/", {"key": "1", "limit": "5", "interval": "monthly"})
    assert (refused.status_code, refused.content) == (403, b"Only owners and members can do this.")
    assert client.get("/account/settings/").status_code == 200
    refused = client.post("/account/settings/", {"time_zone": "Europe/Paris"})
    assert (refused.status_code, refused.content) == (403, b"Only owners change the account's settings.")
    client.force_login(member)
    assert client.post("/account/keys/", {"key": "1", "limit": "5", "interval": "monthly"}).status_code == 404


def test_the_budget_api_asks_the_token_for_the_owner_role(client, acct_a, owner, member):
    body = {"scope": "account", "amount_usd": "5", "period": "month"}
    refused = client.post("/api/v1/account/budgets", body, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {_token(member, acct_a)}")
    assert (refused.status_code, refused.json()) == (
        403, {"detail": "this token's creator needs the owner role on the account"})
    assert not Budget.objects.exists()
    made = client.post("/api/v1/account/budgets", body, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {_token(owner, acct_a)}")
    assert made.status_code == 201
    assert client.get("/api/v1/account/budgets",
                      HTTP_AUTHORIZATION=f"Bearer {_token(member, acct_a)}").status_code == 200  # reads: viewer


def test_the_gateway_api_asks_an_account_token_for_the_member_role_to_reserve(client, acct_a, viewer):
    body = {"api_key": "key_1", "id": "gen-1", "amount_usd": "0.01"}
    refused = client.post("/api/v1/spend/reserve", body, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {_token(viewer, acct_a)}")
    assert (refused.status_code, refused.json()) == (
        403, {"detail": "this token's creator needs the member role on the account"})
