"""Accounts' members and tokens: registration from traffic, key limits, invitations, memberships, and
account API tokens, which live as long as their creator's membership and do what its current role may do."""
import re

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from billing.access import AccountTokenAuthentication, api_account
from billing.accounts import (
    LastOwnerError,
    account_token_create,
    accounts_register,
    api_key_limit_set,
    api_keys_register,
    invitation_accept,
    membership_remove,
)
from billing.models import AccountToken, ApiKey, Budget, Invitation, Membership
from tests.billing.factories import ApiKeyFactory, MembershipFactory

from .conftest import make_user, text_of

pytestmark = pytest.mark.django_db

REFUSED = {"detail": "invalid or revoked account token"}
READS = ("/api/v1/credits", "/api/v1/account/generations", "/api/v1/keys", "/api/v1/account/usage")


def _bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def _token_made_on_the_page(user) -> tuple[AccountToken, str]:
    """Create a token as `user` does: through the tokens page, which shows the secret once."""
    client = Client()
    client.force_login(user)
    page = client.post("/account/tokens/", {"name": "ci"}).content.decode()
    secret = re.search(r'id="new-token">(tg_[^<]+)<', page).group(1)
    return AccountToken.objects.get(prefix=secret[:10]), secret


def _refused(response) -> bool:
    return (response.status_code, response.json(), response.headers.get("WWW-Authenticate")) == (
        401, REFUSED, "Bearer")


class _WriteApi(APIView):
    """A write of the account API (the shape of one; the API has only reads today)."""

    authentication_classes = [AccountTokenAuthentication]

    def post(self, request):
        return Response({"account": api_account(request).external_id})


def _write(secret: str):
    response = _WriteApi.as_view()(APIRequestFactory().post("/api/v1/write", **_bearer(secret)))
    response.render()
    return response


def test_removing_a_member_on_the_members_page_revokes_their_tokens(client, acct_a, acct_b, owner, member):
    token, secret = _token_made_on_the_page(member)
    _, owners_secret = account_token_create(account=acct_a, name="owner's", created_by=owner)
    MembershipFactory(user=member, account=acct_b, role=Membership.Role.MEMBER)
    _, elsewhere = account_token_create(account=acct_b, name="b", created_by=member)
    for url in READS:
        assert client.get(url, **_bearer(secret)).status_code == 200
    client.force_login(owner)
    response = client.post("/account/members/remove/", {"remove": Membership.objects.get(user=member, account=acct_a).pk})
    assert response.status_code == 302
    for url in READS:
        assert _refused(client.get(url, **_bearer(secret))), url
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert client.get("/api/v1/credits", **_bearer(owners_secret)).status_code == 200
    assert client.get("/api/v1/credits", **_bearer(elsewhere)).status_code == 200  # their other account's
    assert AccountToken.objects.filter(revoked_at__isnull=False).count() == 1


def test_only_an_owner_removes_and_only_members_of_the_current_account(client, acct_a, acct_b, owner, member):
    mine = Membership.objects.get(user=member, account=acct_a)
    theirs = MembershipFactory(account=acct_b, role=Membership.Role.MEMBER)
    client.force_login(member)  # a member of A, not its owner
    response = client.post("/account/members/remove/", {"remove": mine.pk})
    assert (response.status_code, response.content) == (403, b"Only owners manage members.")
    client.force_login(owner)  # A's owner, A current
    assert client.get("/account/members/remove/").status_code == 405
    assert client.post("/account/members/remove/", {"remove": theirs.pk}).status_code == 404  # B's membership
    assert client.post("/account/members/remove/", {"remove": "x"}).status_code == 404
    assert client.post("/account/members/remove/", {}).status_code == 404
    assert set(Membership.objects.values_list("pk", flat=True)) >= {mine.pk, theirs.pk}
    response = client.post("/account/members/remove/", {"remove": mine.pk}, follow=True)
    assert response.redirect_chain == [("/account/members/", 302)]
    assert "Member removed." in response.content.decode()
    assert not Membership.objects.filter(pk=mine.pk).exists()
    assert Membership.objects.filter(pk=theirs.pk).exists()


def test_a_member_demoted_to_viewer_keeps_only_reads(client, acct_a, member):
    _, secret = _token_made_on_the_page(member)
    assert _write(secret).status_code == 200
    Membership.objects.filter(user=member, account=acct_a).update(role=Membership.Role.VIEWER)  # as the admin does
    for url in READS:
        assert client.get(url, **_bearer(secret)).status_code == 200
    response = _write(secret)
    assert (response.status_code, response.data) == (
        403, {"detail": "this token's creator needs the member role on the account"})
    Membership.objects.filter(user=member, account=acct_a).update(role=Membership.Role.MEMBER)
    assert _write(secret).status_code == 200


def test_a_token_whose_creator_was_deleted_is_refused(client, member):
    token, secret = _token_made_on_the_page(member)
    member.delete()
    token.refresh_from_db()
    assert token.created_by is None
    assert _refused(client.get("/api/v1/credits", **_bearer(secret)))


def test_a_token_is_refused_once_its_creator_is_no_member_however_they_left(client, acct_a, owner, member):
    token, secret = _token_made_on_the_page(member)
    Membership.objects.filter(user=member, account=acct_a).delete()  # not through membership_remove (the admin)
    assert _refused(client.get("/api/v1/credits", **_bearer(secret)))
    token.refresh_from_db()
    assert token.revoked_at is not None  # the membership's end revoked it, whatever path it took
    member.memberships.create(account=acct_a, role=Membership.Role.MEMBER)
    assert _refused(client.get("/api/v1/credits", **_bearer(secret)))  # joining again brings it not back

    token, secret = _token_made_on_the_page(member)
    member.is_active = False
    member.save(update_fields=["is_active"])
    assert _refused(client.get("/api/v1/credits", **_bearer(secret)))
    client.force_login(owner)
    assert "refused: its creator is no longer a member" in text_of(client.get("/account/tokens/"))
    token.refresh_from_db()
    assert token.revoked_at is None  # refused by the check on every request, not by a revocation


def test_authentication_reads_the_creators_current_role_in_one_query(acct_a, member, django_assert_num_queries):
    token, secret = account_token_create(account=acct_a, name="ci", created_by=member)
    AccountToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    Membership.objects.filter(user=member).update(role=Membership.Role.VIEWER)
    request = APIRequestFactory().get("/api/v1/credits", **_bearer(secret))
    with django_assert_num_queries(1):
        user, auth = AccountTokenAuthentication().authenticate(request)
    assert (user, auth.pk, auth.account.pk, auth.creator_role) == (member, token.pk, acct_a.pk, "viewer")


def test_another_accounts_owner_can_neither_revoke_nor_see_the_tokens(client, acct_a, acct_b, member, owner_b):
    from billing.accounts import account_token_revoke

    token, secret = _token_made_on_the_page(member)
    client.force_login(owner_b)
    assert client.post("/account/tokens/revoke/", {"revoke": token.pk}).status_code == 404
    page = client.get("/account/tokens/").content.decode()
    assert token.prefix not in page
    assert "No tokens yet." in page
    with pytest.raises(AccountToken.DoesNotExist):
        account_token_revoke(account=acct_b, token_id=token.pk)
    token.refresh_from_db()
    assert token.revoked_at is None
    assert client.get("/api/v1/credits", **_bearer(secret)).status_code == 200
    revoked = account_token_revoke(account=acct_a, token_id=token.pk)
    assert revoked.pk == token.pk
    assert revoked.revoked_at is not None
    assert _refused(client.get("/api/v1/credits", **_bearer(secret)))


def test_a_viewer_cannot_revoke_a_token(client, acct_a, member):
    token, _ = _token_made_on_the_page(member)
    client.force_login(make_user("val", acct_a, Membership.Role.VIEWER))
    assert client.post("/account/tokens/revoke/", {"revoke": token.pk}).status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_member_revokes_a_token_on_the_tokens_page(client, acct_a, member):
    token, secret = _token_made_on_the_page(member)
    client.force_login(member)
    assert client.get("/account/tokens/revoke/").status_code == 405  # an action, not a page
    response = client.post("/account/tokens/revoke/", {"revoke": token.pk}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Token ci revoked."]
    assert f"revoked {timezone.now():%Y-%m-%d}" in text_of(response)
    assert _refused(client.get("/api/v1/credits", **_bearer(secret)))


def test_registration_returns_the_same_ids_again_and_keys_are_per_account(acct_a):
    first = accounts_register(external_ids=["acct_a", "acct_new"])
    assert first == accounts_register(external_ids={"acct_new", "acct_a"})
    assert first["acct_a"] == acct_a.pk
    keys = api_keys_register(keys={(first["acct_a"], "k1"), (first["acct_new"], "k1")})
    assert len(set(keys.values())) == 2
    assert keys == api_keys_register(keys=set(keys))
    assert api_keys_register(keys=[]) == {}


def test_a_key_limit_alerts_at_80_and_is_never_negative_nor_another_accounts(acct_a, acct_b):
    key = ApiKeyFactory(account=acct_a, external_id="k1")
    api_key_limit_set(account=acct_a, key_id=key.pk, limit_units=5, interval="weekly")
    assert Budget.objects.get(api_key=key).alert_percentages == [80]
    assert list(Budget.objects.filter(api_key=key).values_list("scope", "target", "amount_units", "period", "mode")) == [
        ("key", "k1", 5, "week", "hard")]
    api_key_limit_set(account=acct_a, key_id=key.pk, limit_units=7, interval="monthly")  # one limit: the new one
    assert list(Budget.objects.filter(api_key=key).values_list("amount_units", "period")) == [(7, "month")]
    api_key_limit_set(account=acct_a, key_id=key.pk, limit_units=None, interval="monthly")
    assert not Budget.objects.filter(api_key=key).exists()
    with pytest.raises(ValueError, match="negative"):
        api_key_limit_set(account=acct_a, key_id=key.pk, limit_units=-1, interval="daily")
    with pytest.raises(ApiKey.DoesNotExist):
        api_key_limit_set(account=acct_b, key_id=key.pk, limit_units=1, interval="daily")


def test_an_invitation_keeps_the_higher_role_and_records_one_acceptance(acct_a, owner, member):
    invitation = Invitation.objects.create(account=acct_a, email="mike@example.com", role=Membership.Role.VIEWER,
                                           token="t1", invited_by=owner)
    for _ in range(2):
        assert invitation_accept(invitation=invitation, user=member).role == Membership.Role.MEMBER
    invitation.refresh_from_db()
    assert invitation.accepted_by == member


def test_the_last_owner_cannot_be_removed(acct_a, acct_b, owner, member):
    with pytest.raises(LastOwnerError):
        membership_remove(account=acct_a, membership_id=owner.memberships.get(account=acct_a).pk)
    with pytest.raises(Membership.DoesNotExist):
        membership_remove(account=acct_b, membership_id=member.memberships.get(account=acct_a).pk)
    membership_remove(account=acct_a, membership_id=member.memberships.get(account=acct_a).pk)
    assert list(acct_a.memberships.values_list("user__username", flat=True)) == ["olivia"]
