"""Who may see which account: the current account of a signed-in user, and account API tokens.

Every account page and account API reads `request.account`, set here from the user's own
memberships only, so another account's data is never in reach: its ids simply do not resolve
(404). Roles are ordered viewer < member < owner.

An account API token lives as long as its creator's membership: removing the member revokes it
(`accounts.membership_remove`), and every request checks, in the token's one look-up, that the
creator still is an active member of the token's account, and reads their current role: reads need
viewer, writes member (`api_account`).
"""
import functools
from dataclasses import dataclass

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.shortcuts import render
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.permissions import SAFE_METHODS

from .accounts import ROLE_RANK, TOKEN_PREFIX, token_hash
from .models import Account, AccountToken, Membership

SESSION_KEY = "tokengrid_account_id"


@dataclass(frozen=True)
class AccountContext:
    account: Account
    membership: Membership
    memberships: list[Membership]

    def can(self, role: str) -> bool:
        return ROLE_RANK[self.membership.role] >= ROLE_RANK[role]


def account_context(request: HttpRequest) -> AccountContext | None:
    """The signed-in user's current account (the one chosen last, else the first), or None."""
    memberships = list(Membership.objects.filter(user=request.user).select_related("account")
                       .order_by("account__name", "account__external_id"))
    if not memberships:
        return None
    chosen = request.session.get(SESSION_KEY)
    current = next((m for m in memberships if m.account_id == chosen), memberships[0])
    return AccountContext(account=current.account, membership=current, memberships=memberships)


def account_switch(request: HttpRequest, *, account_id: int) -> bool:
    """Make `account_id` the current account if the user is a member of it."""
    if not Membership.objects.filter(user=request.user, account_id=account_id).exists():
        return False
    request.session[SESSION_KEY] = account_id
    return True


def account_required(view=None, *, role: str = Membership.Role.VIEWER):
    """Sign-in plus a membership: sets `request.account`, `request.membership`, `request.account_ctx`.

    Anonymous users go to the sign-in page; a user without any account sees how to get one;
    a role below `role` answers 403. The view runs with the account's time zone active.
    """
    def decorate(func):
        @functools.wraps(func)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            ctx = account_context(request)
            if ctx is None:
                return render(request, "account/no_account.html", status=403)
            if not ctx.can(role):
                raise PermissionDenied(f"needs the {role} role on this account")
            request.account, request.membership, request.account_ctx = ctx.account, ctx.membership, ctx
            # Times on the account's pages are in its zone (templates render datetimes in the active one).
            with timezone.override(ctx.account.zone):
                return func(request, *args, **kwargs)
        return wrapper
    return decorate(view) if view is not None else decorate


def account_tokens(*, account: Account) -> QuerySet[AccountToken]:
    """The account's tokens with `creator_role`: their creator's current role here, None once they left."""
    role = Membership.objects.filter(user=OuterRef("created_by"), account=OuterRef("account")).values("role")
    return account.tokens.select_related("created_by").annotate(creator_role=Subquery(role[:1]))


class AccountTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer tg_…`: authenticates as the token's creator and account (request.auth).

    One query: the token joined to its creator's membership of the token's account, so a revoked
    token, a deleted or deactivated creator and a creator who left the account are all refused
    alike (401); `request.auth.creator_role` is the creator's role now, not at creation.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, secret = header.partition(" ")
        if scheme != self.keyword or not secret.startswith(TOKEN_PREFIX):
            return None
        token = (AccountToken.objects.select_related("account", "created_by")
                 .filter(key_hash=token_hash(secret.strip()), revoked_at__isnull=True,
                         created_by__is_active=True, created_by__memberships__account=F("account"))
                 .annotate(creator_role=F("created_by__memberships__role")).first())
        if token is None:
            raise exceptions.AuthenticationFailed("invalid or revoked account token")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            AccountToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return (token.created_by, token)

    def authenticate_header(self, request) -> str:
        return self.keyword


def api_account(request) -> Account:
    """The account an account-API request speaks for (the token's), if its creator's role allows it.

    Reads need the viewer role, writes the member role (403), as on the account pages.
    """
    token = request.auth
    if not isinstance(token, AccountToken):
        raise exceptions.NotAuthenticated("send an account API token: Authorization: Bearer tg_…")
    needed = Membership.Role.VIEWER if request.method in SAFE_METHODS else Membership.Role.MEMBER
    if ROLE_RANK[token.creator_role] < ROLE_RANK[needed]:
        raise exceptions.PermissionDenied(f"this token's creator needs the {needed} role on the account")
    return token.account


class AccountTokenScheme(OpenApiAuthenticationExtension):
    """The account token in the OpenAPI schema."""

    target_class = "billing.access.AccountTokenAuthentication"
    name = "accountToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "an account API token (tg_…), created on /account/tokens/"}
