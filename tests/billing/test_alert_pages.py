"""The alerts page and the alert-channels API: owners manage, viewers read (never a secret), a
webhook's secret is shown once, the test button and resend, and another account's ids answer 404."""
import pytest
from standardwebhooks import Webhook

from billing.accounts import account_token_create
from billing.alert_channels import alert_channel_create
from billing.models import AlertChannel, AlertDelivery, AlertEvent

from . import test_alert_channels
from .conftest import text_of

pytestmark = pytest.mark.django_db
# The fixtures of the channel tests: a local HTTP receiver, send tasks run at once.
receiver, eager = test_alert_channels.receiver, test_alert_channels.eager


def api(client, secret, method, path, body=None):
    return getattr(client, method)(f"/api/v1/account/{path}", body, content_type="application/json",
                                   HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_an_account_without_channels_is_told_where_alerts_go(client, acct_a, owner):
    client.force_login(owner)
    response = client.get("/account/alerts/")
    assert response.status_code == 200
    assert "No channel yet: alerts go by e-mail to the owners (olivia@example.com)." in text_of(response)
    assert 'aria-current="page">Alerts</a>' in response.content.decode()


def test_an_owner_adds_a_webhook_and_sees_its_secret_once(client, acct_a, owner, receiver,
                                                          django_capture_on_commit_callbacks):
    client.force_login(owner)
    response = client.post("/account/alerts/add/", {"kind": "webhook", "url": f"{receiver.url}/in",
                                                    "events": ["balance.low", "channel.test"]})
    assert response.status_code == 200
    channel = AlertChannel.objects.get(account=acct_a, kind="webhook")
    assert channel.events == ["balance.low", "channel.test"]
    assert channel.secret in response.content.decode()
    assert "Copy the signing secret of Webhook" in text_of(response)
    page = client.get("/account/alerts/").content.decode()
    assert channel.secret not in page
    assert "whsec_… (shown once; rotate to get a new one)" in page
    # The test button sends a signed channel.test to this channel, the log shows it, resend sends it again.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/account/alerts/test/", {"channel": channel.pk})
    assert response["Location"] == f"/account/alerts/{channel.pk}/"
    [request] = receiver.requests
    assert Webhook(channel.secret).verify(request["body"], request["headers"])["type"] == "channel.test"
    delivery = AlertDelivery.objects.get(channel=channel)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/account/alerts/resend/", {"delivery": delivery.pk})
    assert [(d.round, d.attempt, d.status, d.status_code) for d in channel.deliveries.order_by("id")] == [
        (0, 1, "delivered", 200), (1, 1, "delivered", 200)]
    assert receiver.requests[1]["headers"]["webhook-id"] == request["headers"]["webhook-id"]
    log = text_of(client.get(f"/account/alerts/{channel.pk}/"))
    assert "channel.test Test alert from Tokengrid for Alpha Labs 1 (resend 1) Delivered 200" in log
    # Rotation shows the new secret once.
    response = client.post("/account/alerts/rotate/", {"channel": channel.pk})
    channel.refresh_from_db()
    assert channel.secret in response.content.decode()
    assert channel.secret not in client.get("/account/alerts/").content.decode()


def test_an_owner_chooses_events_pauses_resumes_and_deletes(client, acct_a, owner, receiver):
    client.force_login(owner)
    channel = alert_channel_create(account=acct_a, kind="slack", url=receiver.url)
    client.post("/account/alerts/events/", {"channel": channel.pk, "events": ["spend.unusual"]})
    channel.refresh_from_db()
    assert channel.events == ["spend.unusual"]
    client.post("/account/alerts/pause/", {"channel": channel.pk, "paused": "1"})
    channel.refresh_from_db()
    assert channel.paused_reason == "paused by hand"
    assert "Slack paused" in text_of(client.get("/account/alerts/"))
    client.post("/account/alerts/pause/", {"channel": channel.pk, "paused": "0"})
    assert AlertChannel.objects.get(pk=channel.pk).paused_at is None
    client.post("/account/alerts/delete/", {"channel": channel.pk})
    assert not AlertChannel.objects.filter(pk=channel.pk).exists()


def test_the_page_refuses_a_private_url_with_the_reason(client, acct_a, owner, settings):
    settings.ALERT_ALLOW_PRIVATE_URLS = False
    client.force_login(owner)
    response = client.post("/account/alerts/add/", {"kind": "webhook", "url": "https://10.0.0.1/hook"})
    assert response.status_code == 400
    assert ("Check the channel: url — 10.0.0.1 resolves to 10.0.0.1, a private address: alerts are not sent into "
            "private networks.") in text_of(response)
    assert not AlertChannel.objects.exists()


def test_a_viewer_reads_channels_but_never_a_secret_and_changes_nothing(client, acct_a, viewer, receiver):
    channel = alert_channel_create(account=acct_a, kind="webhook", url=receiver.url)
    event = AlertEvent.objects.create(account=acct_a, event="balance.low", dedupe_key="k", subject="s", text="t",
                                      created=channel.created)
    delivery = AlertDelivery.objects.create(channel=channel, event=event, created=event.created, due_at=event.created,
                                            status="delivered", status_code=200, body="{}")
    client.force_login(viewer)
    page = client.get("/account/alerts/").content.decode()
    assert receiver.url in page
    assert channel.secret not in page
    assert "/account/alerts/add/" not in page
    log = client.get(f"/account/alerts/{channel.pk}/").content.decode()
    assert "Delivered" in log
    assert "Resend" not in log
    for url, body in (("/account/alerts/add/", {"kind": "email"}), ("/account/alerts/rotate/", {"channel": channel.pk}),
                      ("/account/alerts/pause/", {"channel": channel.pk, "paused": "1"}),
                      ("/account/alerts/delete/", {"channel": channel.pk}),
                      ("/account/alerts/events/", {"channel": channel.pk}),
                      ("/account/alerts/test/", {"channel": channel.pk}),
                      ("/account/alerts/resend/", {"delivery": delivery.pk})):
        assert client.post(url, body).status_code == 403, url
    after = AlertChannel.objects.get(pk=channel.pk)
    assert (after.secret, after.paused_at, AlertChannel.objects.count(), AlertDelivery.objects.count()) == (
        channel.secret, None, 2, 1)


def test_the_api_adds_a_channel_shows_its_secret_once_and_lists_deliveries(client, acct_a, owner, viewer, receiver):
    _, token = account_token_create(account=acct_a, name="ci", created_by=owner)
    response = api(client, token, "post", "alert-channels", {"kind": "webhook", "url": f"{receiver.url}/x",
                                                             "events": ["budget.threshold"]})
    assert response.status_code == 201
    created = response.json()
    channel = AlertChannel.objects.get(pk=created["id"])
    assert created["secret"] == channel.secret
    assert created["secret"].startswith("whsec_")
    assert (created["kind"], created["url"], created["events"], created["paused"]) == (
        "webhook", f"{receiver.url}/x", ["budget.threshold"], False)
    listed = api(client, token, "get", "alert-channels").json()
    assert [c["kind"] for c in listed] == ["email", "webhook"]  # the owners' e-mail channel came first
    assert all("secret" not in c for c in listed)
    assert api(client, token, "get", f"alert-channels/{channel.pk}/deliveries").json() == []
    event = AlertEvent.objects.create(account=acct_a, event="budget.threshold", dedupe_key="k", subject="s",
                                      text="t", created=channel.created)
    AlertDelivery.objects.create(channel=channel, event=event, created=event.created, due_at=event.created,
                                 status="failed", status_code=503, duration_ms=12, body="{}", error="HTTP 503")
    [row] = api(client, token, "get", f"alert-channels/{channel.pk}/deliveries").json()
    assert (row["event"], row["attempt"], row["status"], row["status_code"], row["duration_ms"], row["body"]) == (
        "budget.threshold", 1, "failed", 503, 12, "{}")
    # Refusals: bad input with the field and the reason; a viewer's token reads but adds nothing.
    bad = api(client, token, "post", "alert-channels", {"kind": "webhook", "url": "ftp://x.example/"})
    assert (bad.status_code, bad.json()) == (400, {"url": ["the URL must start with https://"]})
    _, viewer_token = account_token_create(account=acct_a, name="v", created_by=viewer)
    assert api(client, viewer_token, "get", "alert-channels").status_code == 200
    refused = api(client, viewer_token, "post", "alert-channels", {"kind": "email"})
    assert refused.status_code == 403
    assert AlertChannel.objects.count() == 2
