"""Who may see which account: the current account of a signed-in user, and account API tokens.

Every account page and account API reads `request.account`, set here from the user's own
memberships only, so another account's data is never in reach: its ids simply do not resolve
(404). Roles are ordered viewer < member < owner.

An account API token lives as long as its creator's membership: removing the member revokes it
(`accounts.membership_remove`), and every request checks, in the token's one look-up, that the
creator still is an active member of the token's account, and reads their current role: reads need
viewer, writes member (`api_account`), unless a view asks for more.

One role check for pages and API alike: `account_required(role=…, write_role=…)` on a page,
`api_account(request, role=…)` in an API view (every account API view derives from `AccountApi`).
"""
import functools
from dataclasses import dataclass

from django.contrib.auth.views import redirect_to_login
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import render
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated
from rest_framework.views import APIView

from core.api import BearerTokenScheme

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


def _refused(role: str) -> str:
    return f"Only {'owners' if role == Membership.Role.OWNER else 'owners and members'} can do this."


def account_required(view=None, *, role: str = Membership.Role.VIEWER, write_role: str | None = None,
                     refusal: str = "", methods: tuple[str, ...] | None = None):
    """Sign-in plus a membership: sets `request.account`, `request.membership`, `request.account_ctx`.

    Anonymous users go to the sign-in page; a user without any account sees how to get one; a method
    outside `methods` (an action: `("POST",)`) answers 405; a role below `role`, or below `write_role`
    for a POST (a page that viewers read and members or owners change), answers 403 with `refusal`
    ("Only owners can do this." unless given). The view runs with the account's time zone active.
    """
    def decorate(func):
        @functools.wraps(func)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            ctx = account_context(request)
            if ctx is None:
                return render(request, "account/no_account.html", status=403)
            if methods is not None and request.method not in methods:
                return HttpResponseNotAllowed(methods)
            needed = write_role if write_role and request.method not in SAFE_METHODS else role
            if not ctx.can(needed):
                return HttpResponse(refusal or _refused(needed), status=403)
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


def api_account(request, *, role: str | None = None) -> Account:
    """The account an account-API request speaks for (the token's), if its creator's role allows it.

    Reads need the viewer role, writes the member role (403), as on the account pages; `role` asks
    for another.
    """
    token = request.auth
    if not isinstance(token, AccountToken):
        raise exceptions.NotAuthenticated("send an account API token: Authorization: Bearer tg_…")
    needed = role or (Membership.Role.VIEWER if request.method in SAFE_METHODS else Membership.Role.MEMBER)
    if ROLE_RANK[token.creator_role] < ROLE_RANK[needed]:
        raise exceptions.PermissionDenied(f"this token's creator needs the {needed} role on the account")
    return token.account


class AccountApi(APIView):
    """An account API view: an account API token, and only its account in reach (`api_account`)."""

    authentication_classes = [AccountTokenAuthentication]
    permission_classes = [IsAuthenticated]


class AccountTokenScheme(BearerTokenScheme):
    """The account token in the OpenAPI schema."""

    target_class = "billing.access.AccountTokenAuthentication"
    name = "accountToken"
    token = "an account API token (tg_…), created on /account/tokens/"
