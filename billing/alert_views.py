"""The alerts page (/account/alerts/): the account's channels, their delivery logs, and owners' actions.

Everyone on the account reads the channels and their logs; owners add, choose events, rotate a
webhook's secret (shown once, on the answer to the POST, never again), pause, resume, delete, test
and resend. A webhook's secret is never on a page otherwise. Every id in a form or URL is looked up
within the current account (404 otherwise).
"""
from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from core.params import int64_or_404

from . import alert_channels
from .access import account_required
from .alert_delivery import ATTEMPTS, BACKOFF
from .alert_events import EVENTS
from .alert_selectors import alert_channel_rows, alert_deliveries
from .credit_views import OWNER
from .models import AlertChannel, AlertDelivery
from .selectors import owner_emails

_EVENT_CHOICES = [(name, f"{label} ({name})") for name, label in EVENTS.items()]


class ChannelForm(forms.Form):
    kind = forms.ChoiceField(choices=AlertChannel.Kind.choices)
    url = forms.CharField(label="URL", max_length=500, required=False,
                          help_text="https:// address of the webhook or the Slack incoming webhook; empty for e-mail")
    recipients = forms.CharField(max_length=2000, required=False,
                                 help_text="e-mail only: members' addresses, separated by commas; empty: the owners")
    events = forms.MultipleChoiceField(choices=_EVENT_CHOICES, required=False, widget=forms.CheckboxSelectMultiple,
                                       help_text="none chosen: every event")


class EventsForm(forms.Form):
    events = forms.MultipleChoiceField(choices=_EVENT_CHOICES, required=False, widget=forms.CheckboxSelectMultiple,
                                       help_text="none chosen: every event")
    recipients = forms.CharField(max_length=2000, required=False,
                                 help_text="members' addresses, separated by commas; empty: the owners")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


def _page(request: HttpRequest, *, form: ChannelForm | None = None, secret: str = "",
          secret_channel: AlertChannel | None = None, status: int = 200) -> HttpResponse:
    account = request.account
    rows = alert_channel_rows(account=account)
    is_owner = request.account_ctx.can(OWNER)
    for row in rows:
        channel = row.channel
        row.form = EventsForm(initial={"events": channel.events, "recipients": ", ".join(channel.recipients)},
                              auto_id=f"id_c{channel.pk}_%s") if is_owner else None
    return render(request, "account/alerts.html", {
        "rows": rows, "is_owner": is_owner, "form": form or ChannelForm(auto_id="id_new_%s"),
        "secret": secret, "secret_channel": secret_channel, "events": EVENTS,
        "owners": owner_emails(account_ids=[account.pk]).get(account.pk, []),
        "backoff": BACKOFF, "attempts": ATTEMPTS}, status=status)


@account_required
@require_safe
def alerts_page(request: HttpRequest) -> HttpResponse:
    """The account's channels with their last delivery; owners' forms."""
    return _page(request)


@account_required
@require_safe
def alert_channel_log(request: HttpRequest, channel_id: int) -> HttpResponse:
    """One channel's delivery log: each attempt's event, status code, time taken and the body sent."""
    try:
        channel, deliveries = alert_deliveries(account=request.account, channel_id=int64_or_404(channel_id))
    except AlertChannel.DoesNotExist:
        raise Http404 from None
    return render(request, "account/alert_log.html", {"channel": channel, "deliveries": deliveries,
                                                      "is_owner": request.account_ctx.can(OWNER)})


def _channel_id(request: HttpRequest) -> int:
    return int64_or_404(request.POST.get("channel"))


@account_required(role=OWNER, methods=("POST",))
def alert_channel_add(request: HttpRequest) -> HttpResponse:
    """Add a channel; a webhook's secret is shown on this answer only."""
    form = ChannelForm(request.POST, auto_id="id_new_%s")
    if not form.is_valid():
        messages.error(request, "Check the channel: " + "; ".join(e for errs in form.errors.values() for e in errs))
        return _page(request, form=form, status=400)
    data = form.cleaned_data
    try:
        channel = alert_channels.alert_channel_create(account=request.account, kind=data["kind"], url=data["url"],
                                                      events=data["events"], recipients=_split(data["recipients"]))
    except alert_channels.ChannelInvalid as error:
        messages.error(request, f"Check the channel: {error.field} — {error.reason}.")
        return _page(request, form=form, status=400)
    if channel.kind == AlertChannel.Kind.WEBHOOK:
        messages.success(request, f"Channel added: {channel}.")
        return _page(request, secret=channel.secret, secret_channel=channel)
    messages.success(request, f"Channel added: {channel}.")
    return redirect("billing:alerts")


@account_required(role=OWNER, methods=("POST",))
def alert_channel_events(request: HttpRequest) -> HttpResponse:
    """Choose which events go to a channel (and an e-mail channel's recipients)."""
    form = EventsForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose events from the list.")
        return redirect("billing:alerts")
    try:
        channel = alert_channels.alert_channel_update(
            account=request.account, channel_id=_channel_id(request), events=form.cleaned_data["events"],
            recipients=_split(form.cleaned_data["recipients"]))
    except AlertChannel.DoesNotExist:
        raise Http404 from None
    except alert_channels.ChannelInvalid as error:
        messages.error(request, f"Check the channel: {error.field} — {error.reason}.")
        return redirect("billing:alerts")
    messages.success(request, f"Saved: {channel} gets {', '.join(channel.events) or 'every event'}.")
    return redirect("billing:alerts")


@account_required(role=OWNER, methods=("POST",))
def alert_channel_rotate(request: HttpRequest) -> HttpResponse:
    """Give a webhook a new signing secret, shown on this answer only."""
    try:
        channel_id = _channel_id(request)
        secret = alert_channels.alert_channel_secret_rotate(account=request.account, channel_id=channel_id)
    except AlertChannel.DoesNotExist:
        raise Http404 from None
    except alert_channels.ChannelInvalid as error:
        messages.error(request, f"{error.reason}.")
        return redirect("billing:alerts")
    channel = alert_channels.alert_channel_get(account=request.account, channel_id=channel_id)
    messages.success(request, "New secret made: the old one no longer signs.")
    return _page(request, secret=secret, secret_channel=channel)


@account_required(role=OWNER, methods=("POST",))
def alert_channel_pause(request: HttpRequest) -> HttpResponse:
    """Pause a channel (`paused=1`) or resume it (`paused=0`)."""
    paused = request.POST.get("paused") == "1"
    try:
        channel = alert_channels.alert_channel_pause(account=request.account, channel_id=_channel_id(request),
                                                     paused=paused)
    except AlertChannel.DoesNotExist:
        raise Http404 from None
    messages.success(request, f"{channel}: {'paused' if paused else 'resumed'}.")
    return redirect("billing:alerts")


@account_required(role=OWNER, methods=("POST",))
def alert_channel_delete(request: HttpRequest) -> HttpResponse:
    """Delete a channel and its log."""
    try:
        alert_channels.alert_channel_delete(account=request.account, channel_id=_channel_id(request))
    except AlertChannel.DoesNotExist:
        raise Http404 from None
    messages.success(request, "Channel deleted.")
    return redirect("billing:alerts")


@account_required(role=OWNER, methods=("POST",))
def alert_channel_test(request: HttpRequest) -> HttpResponse:
    """Send a test event to one channel."""
    try:
        delivery = alert_channels.alert_channel_test(account=request.account, channel_id=_channel_id(request))
    except AlertChannel.DoesNotExist:
        raise Http404 from None
    messages.success(request, f"Test sent to {delivery.channel}: its log shows the answer.")
    return redirect("billing:alert-log", channel_id=delivery.channel_id)


@account_required(role=OWNER, methods=("POST",))
def alert_delivery_resend(request: HttpRequest) -> HttpResponse:
    """Send a delivery's event to its channel again (a new delivery)."""
    try:
        delivery = alert_channels.alert_delivery_resend(account=request.account,
                                                        delivery_id=int64_or_404(request.POST.get("delivery")))
    except AlertDelivery.DoesNotExist:
        raise Http404 from None
    messages.success(request, f"“{delivery.event.subject}” sent again.")
    return redirect("billing:alert-log", channel_id=delivery.channel_id)
