"""Account membership pages: switching accounts, members and invitations, account API tokens."""
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.params import int64_or_404

from . import accounts
from .access import account_required, account_switch, account_tokens
from .forms import AccountSettingsForm, InviteForm, SignUpForm, TokenForm
from .models import AccountToken, Invitation, Membership

OWNER, MEMBER = Membership.Role.OWNER, Membership.Role.MEMBER
MEMBERS_REFUSAL, TOKENS_REFUSAL = "Only owners manage members.", "Viewers cannot manage tokens."


@login_required
@require_POST
def switch(request: HttpRequest) -> HttpResponse:
    """Make another of the user's accounts the current one."""
    if not account_switch(request, account_id=int64_or_404(request.POST.get("account_id"))):
        raise Http404
    target = request.POST.get("next", "")
    return redirect(target if target.startswith("/account/") else "account:overview")


@account_required(write_role=OWNER, refusal=MEMBERS_REFUSAL)
def members(request: HttpRequest) -> HttpResponse:
    """Members of the account and open invitations; owners invite here (and remove at member_remove)."""
    account = request.account
    form = InviteForm()
    if request.method == "POST":
        form = InviteForm(request.POST)
        if form.is_valid():
            accounts.invitation_create(
                account=account, email=form.cleaned_data["email"], role=form.cleaned_data["role"],
                invited_by=request.user,
                accept_url=lambda token: request.build_absolute_uri(reverse("billing:invitation", args=[token])))
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return redirect("billing:members")
    return render(request, "account/members.html", {
        "members": account.memberships.select_related("user").order_by("user__username"),
        "invitations": account.invitations.filter(accepted_at__isnull=True).select_related("invited_by"),
        "form": form, "is_owner": request.account_ctx.can(OWNER),
    })


@account_required(write_role=OWNER, refusal="Only owners change the account's settings.")
def account_settings(request: HttpRequest) -> HttpResponse:
    """The account's settings (its time zone); owners change them."""
    account = request.account
    is_owner = request.account_ctx.can(OWNER)
    form = AccountSettingsForm(initial={"time_zone": account.time_zone})
    if request.method == "POST":
        form = AccountSettingsForm(request.POST)
        if form.is_valid():
            accounts.account_time_zone_set(account=account, time_zone=form.cleaned_data["time_zone"])
            messages.success(request, f"Time zone set to {account.time_zone}.")
            return redirect("billing:account-settings")
    return render(request, "account/settings.html", {"form": form, "is_owner": is_owner})


@account_required(role=OWNER, refusal=MEMBERS_REFUSAL, methods=("POST",))
def member_remove(request: HttpRequest) -> HttpResponse:
    """Remove a member (owners; 404 for another account's membership; never the last owner)."""
    try:
        accounts.membership_remove(account=request.account, membership_id=int64_or_404(request.POST.get("remove")))
    except Membership.DoesNotExist:
        raise Http404 from None
    except accounts.LastOwnerError as error:
        messages.error(request, f"Not removed: {error}.")
    else:
        messages.success(request, "Member removed.")
    return redirect("billing:members")


def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Accept an invitation: signed-in users join at once, others sign in or create a user first."""
    invite = get_object_or_404(Invitation.objects.select_related("account"), token=token)
    if invite.accepted_at is not None and invite.accepted_by_id != getattr(request.user, "pk", None):
        return render(request, "account/invitation.html", {"invite": invite, "used": True}, status=410)
    form = SignUpForm()
    if request.method == "POST":
        if not request.user.is_authenticated:
            form = SignUpForm(request.POST)
            if not form.is_valid():
                return render(request, "account/invitation.html", {"invite": invite, "form": form})
            user = form.save()
            user.email = invite.email
            user.save(update_fields=["email"])
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        membership = accounts.invitation_accept(invitation=invite, user=request.user)
        account_switch(request, account_id=membership.account_id)
        messages.success(request, f"You joined {membership.account} as {membership.role}.")
        return redirect("account:overview")
    return render(request, "account/invitation.html", {"invite": invite, "form": form})


@account_required(write_role=MEMBER, refusal=TOKENS_REFUSAL)
def tokens(request: HttpRequest) -> HttpResponse:
    """List the account's API tokens; members create one here (the secret is shown once)."""
    form, secret = TokenForm(), None
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            _, secret = accounts.account_token_create(account=request.account, name=form.cleaned_data["name"],
                                             created_by=request.user)
            form = TokenForm()
    return render(request, "account/tokens.html", {
        "tokens": account_tokens(account=request.account), "form": form, "secret": secret})


@account_required(role=MEMBER, refusal=TOKENS_REFUSAL, methods=("POST",))
def token_revoke(request: HttpRequest) -> HttpResponse:
    """Revoke one of the account's tokens (members; 404 for another account's token)."""
    try:
        token = accounts.account_token_revoke(account=request.account, token_id=int64_or_404(request.POST.get("revoke")))
    except AccountToken.DoesNotExist:
        raise Http404 from None
    messages.success(request, f"Token {token.name} revoked.")
    return redirect("billing:tokens")
