"""Alert channels: signed webhooks checked by the reference library, Slack's Block Kit message,
e-mail to chosen members, retries with backoff against a real local receiver, pausing, the
request-forgery guard, and the fan-out of `alert_events_deliver`."""
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from billing import alert_channels, alert_delivery
from billing.alert_channels import ChannelInvalid, alert_channel_create
from billing.alert_delivery import ATTEMPTS, BACKOFF, alert_deliveries_queue_due, alert_delivery_attempt
from billing.alert_events import alert_emit
from billing.alert_urls import AlertUrlRefused, alert_url_check
from billing.models import AlertChannel, AlertDelivery, AlertEvent
from config.celery import app as celery_app

from .conftest import make_user


class Receiver:
    """A real HTTP server in a thread: answers POSTs with the scripted status codes (then 200) and
    records each request's path, headers and body."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802  (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                          "body": body.decode()})
                code = receiver.statuses.pop(0) if receiver.statuses else 200
                answer = b"ok" if code == 200 else b'{"error": "busy"}'
                self.send_response(code)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.ALERT_ALLOW_PRIVATE_URLS = True  # the receiver listens on 127.0.0.1 over http
    settings.SITE_URL = "https://tokengrid.example"
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def eager():
    """Queued send tasks run at once, in the test (the retry chain is driven by the sweep)."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def _emit(account, capture, *, key="balance.low:1", data=None):
    with capture(execute=True):
        return alert_emit(account=account, event="balance.low", dedupe_key=key,
                          subject="Low credit balance on Alpha Labs", text="The balance is $3.00, under $5.00.",
                          data={"balance_usd": "3.00", "threshold_usd": "5.00"} if data is None else data)


def _log(channel):
    return [(d.attempt, d.status, d.status_code) for d in channel.deliveries.order_by("round", "attempt")]


def test_the_backoff_retries_within_a_minute_and_for_a_day():
    assert BACKOFF[0] <= 60
    assert all(later > earlier for earlier, later in zip(BACKOFF, BACKOFF[1:], strict=False))
    assert sum(BACKOFF) == 24 * 3600  # the last attempt is a day after the first
    assert ATTEMPTS == 8


def test_a_webhook_is_signed_and_the_reference_library_verifies_it(acct_a, receiver,
                                                                  django_capture_on_commit_callbacks):
    make_user("olga", acct_a, "owner")
    channel = alert_channel_create(account=acct_a, kind="webhook", url=f"{receiver.url}/hooks/tg?x=1")
    assert channel.secret.startswith("whsec_")
    event = _emit(acct_a, django_capture_on_commit_callbacks)

    [request] = receiver.requests
    assert request["path"] == "/hooks/tg?x=1"
    headers = request["headers"]
    assert headers["webhook-id"] == f"msg_alert_{event.pk}"
    payload = Webhook(channel.secret).verify(request["body"], headers)
    assert payload == {"type": "balance.low", "timestamp": event.created.isoformat().replace("+00:00", "Z"),
                       "data": {"id": f"alert_{event.pk}", "account": "acct_a",
                                "subject": "Low credit balance on Alpha Labs",
                                "text": "The balance is $3.00, under $5.00.",
                                "details": {"balance_usd": "3.00", "threshold_usd": "5.00"},
                                "url": "https://tokengrid.example/account/alerts/"}}
    with pytest.raises(WebhookVerificationError):
        Webhook(alert_channels.secret_new()).verify(request["body"], headers)  # another secret fails
    with pytest.raises(WebhookVerificationError):
        Webhook(channel.secret).verify(request["body"].replace("3.00", "0.03"), headers)  # a changed body fails
    [delivery] = AlertDelivery.objects.filter(channel=channel)
    assert (delivery.attempt, delivery.status, delivery.status_code, delivery.body) == (
        1, "delivered", 200, request["body"])
    assert delivery.duration_ms is not None
    # The first non-e-mail channel brought an e-mail channel to the owners: they still hear.
    assert [m.to for m in mail.outbox] == [["olga@example.com"]]
    assert AlertChannel.objects.get(account=acct_a, kind="email").recipients == []


def test_a_rotated_secret_signs_and_the_old_one_no_longer_verifies(acct_a, receiver,
                                                                   django_capture_on_commit_callbacks):
    channel = alert_channel_create(account=acct_a, kind="webhook", url=receiver.url)
    old = channel.secret
    new = alert_channels.alert_channel_secret_rotate(account=acct_a, channel_id=channel.pk)
    assert new.startswith("whsec_")
    assert new != old
    _emit(acct_a, django_capture_on_commit_callbacks)
    [request] = receiver.requests
    assert Webhook(new).verify(request["body"], request["headers"])["type"] == "balance.low"
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(request["body"], request["headers"])


def test_fails_twice_then_succeeds_three_attempts_with_backoff(acct_a, receiver, clock,
                                                              django_capture_on_commit_callbacks):
    receiver.statuses = [503, 503]
    channel = alert_channel_create(account=acct_a, kind="webhook", url=receiver.url, events=["balance.low"])
    start = alert_delivery.timezone.now()
    _emit(acct_a, django_capture_on_commit_callbacks)
    assert _log(channel) == [(1, "failed", 503), (2, "queued", None)]
    second = channel.deliveries.get(attempt=2)
    assert second.due_at - start == timedelta(seconds=30)  # the first retry within a minute
    clock.shift(29)
    assert alert_deliveries_queue_due() == []  # not due yet
    clock.shift(1)
    with django_capture_on_commit_callbacks(execute=True):
        assert alert_deliveries_queue_due() == [second.pk]
    assert _log(channel) == [(1, "failed", 503), (2, "failed", 503), (3, "queued", None)]
    assert channel.deliveries.get(attempt=3).due_at - start == timedelta(seconds=30 + 120)
    clock.shift(120)
    with django_capture_on_commit_callbacks(execute=True):
        alert_deliveries_queue_due()
    assert _log(channel) == [(1, "failed", 503), (2, "failed", 503), (3, "delivered", 200)]
    assert [d.error for d in channel.deliveries.order_by("attempt")] == [
        'HTTP 503: {"error": "busy"}', 'HTTP 503: {"error": "busy"}', ""]
    # One message id on every attempt (receivers de-duplicate by it), a new timestamp each time.
    ids = {r["headers"]["webhook-id"] for r in receiver.requests}
    assert len(receiver.requests) == 3
    assert len(ids) == 1
    assert [int(r["headers"]["webhook-timestamp"]) for r in receiver.requests] == [
        int(start.timestamp()), int(start.timestamp()) + 30, int(start.timestamp()) + 150]
    for request in receiver.requests:
        Webhook(channel.secret).verify(request["body"], request["headers"])
    channel.refresh_from_db()
    assert (channel.consecutive_failures, channel.paused_at) == (0, None)
    assert alert_deliveries_queue_due() == []  # nothing left to send


@pytest.mark.parametrize(("code", "retried"), [(400, False), (401, False), (404, False), (410, False),
                                               (408, True), (429, True), (500, True), (502, True)])
def test_only_transient_answers_are_retried(acct_a, receiver, code, retried):
    channel = alert_channel_create(account=acct_a, kind="email")
    channel = alert_channel_create(account=acct_a, kind="webhook", url=receiver.url)
    receiver.statuses = [code]
    event = AlertEvent.objects.create(account=acct_a, event="balance.low", dedupe_key="k", subject="s", text="t",
                                      created=alert_delivery.timezone.now())
    delivery = AlertDelivery.objects.create(channel=channel, event=event, created=event.created, due_at=event.created)
    outcome = alert_delivery_attempt(delivery_id=delivery.pk)
    assert (outcome.status, outcome.status_code, outcome.retry_in) == ("failed", code, 30 if retried else None)
    assert channel.deliveries.count() == (2 if retried else 1)
    assert alert_delivery_attempt(delivery_id=delivery.pk) is None  # sent once, also when the task runs twice
    assert len(receiver.requests) == 1


def test_an_attempt_whose_worker_died_is_sent_again(acct_a, receiver, clock, django_capture_on_commit_callbacks):
    channel = alert_channel_create(account=acct_a, kind="webhook", url=receiver.url)
    event = AlertEvent.objects.create(account=acct_a, event="balance.low", dedupe_key="k", subject="s", text="t",
                                      created=alert_delivery.timezone.now())
    now = alert_delivery.timezone.now()
    stuck = AlertDelivery.objects.create(channel=channel, event=event, created=now, due_at=now, queued_at=now,
                                         status="sending", sent_at=now)
    clock.shift(599)
    assert alert_deliveries_queue_due() == []  # it may still be sending
    clock.shift(1)
    with django_capture_on_commit_callbacks(execute=True):
        assert alert_deliveries_queue_due() == [stuck.pk]
    assert _log(channel) == [(1, "delivered", 200)]
    assert len(receiver.requests) == 1


def test_a_connection_refused_is_retried(acct_a, receiver):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = alert_channel_create(account=acct_a, kind="slack", url=f"http://127.0.0.1:{port}/x")
    event = AlertEvent.objects.create(account=acct_a, event="balance.low", dedupe_key="k", subject="s", text="t",
                                      created=alert_delivery.timezone.now())
    delivery = AlertDelivery.objects.create(channel=channel, event=event, created=event.created, due_at=event.created)
    outcome = alert_delivery_attempt(delivery_id=delivery.pk)
    assert outcome.retry_in == 30
    assert outcome.error.startswith("NewConnectionError")


def test_retries_exhausted_pause_the_channel_and_tell_the_owners(acct_a, receiver,
                                                                 django_capture_on_commit_callbacks):
    make_user("olga", acct_a, "owner")
    make_user("vic", acct_a, "viewer")
    alert_channel_create(account=acct_a, kind="email", recipients=["vic@example.com"])
    channel = alert_channel_create(account=acct_a, kind="webhook", url=receiver.url)
    event = AlertEvent.objects.create(account=acct_a, event="balance.low", dedupe_key="k",
                                      subject="Low credit balance on Alpha Labs", text="t",
                                      created=alert_delivery.timezone.now())
    last = AlertDelivery.objects.create(channel=channel, event=event, attempt=ATTEMPTS, created=event.created,
                                        due_at=event.created)
    receiver.statuses = [503]
    with django_capture_on_commit_callbacks(execute=True):
        outcome = alert_delivery_attempt(delivery_id=last.pk)
    assert (outcome.retry_in, outcome.paused) == (None, True)
    channel.refresh_from_db()
    assert channel.paused_reason == ('“Low credit balance on Alpha Labs” could not be delivered in 8 attempts over '
                                     'a day; the last answer: HTTP 503: {"error": "busy"}')
    [told] = mail.outbox
    assert (told.subject, told.to) == ("Alert channel paused on Alpha Labs", ["olga@example.com"])
    assert channel.paused_reason in told.body
    # A paused channel gets no new events; the other channel still does.
    mail.outbox.clear()
    _emit(acct_a, django_capture_on_commit_callbacks, key="balance.low:2")
    assert len(receiver.requests) == 1
    assert [m.to for m in mail.outbox] == [["vic@example.com"]]
    # Resumed, it gets the next one and its failures are forgotten.
    alert_channels.alert_channel_pause(account=acct_a, channel_id=channel.pk, paused=False)
    _emit(acct_a, django_capture_on_commit_callbacks, key="balance.low:3")
    assert len(receiver.requests) == 2
    channel.refresh_from_db()
    assert (channel.paused_at, channel.consecutive_failures) == (None, 0)


def test_failures_in_a_row_pause_the_channel(acct_a, receiver, settings, django_capture_on_commit_callbacks):
    settings.ALERT_CHANNEL_PAUSE_AFTER = 2
    make_user("olga", acct_a, "owner")
    channel = alert_channel_create(account=acct_a, kind="webhook", url=receiver.url, events=["balance.low"])
    receiver.statuses = [404, 404]
    _emit(acct_a, django_capture_on_commit_callbacks, key="a")
    assert AlertChannel.objects.get(pk=channel.pk).paused_at is None
    mail.outbox.clear()
    _emit(acct_a, django_capture_on_commit_callbacks, key="b")
    channel.refresh_from_db()
    assert channel.paused_reason == "2 attempts in a row failed; the last answer: HTTP 404: {\"error\": \"busy\"}"
    assert [m.subject for m in mail.outbox if m.subject.startswith("Alert channel paused")] == [
        "Alert channel paused on Alpha Labs"]


def test_slack_gets_a_readable_block_kit_message(acct_a, receiver, django_capture_on_commit_callbacks):
    channel = alert_channel_create(account=acct_a, kind="slack", url=f"{receiver.url}/services/T0/B0/x")
    _emit(acct_a, django_capture_on_commit_callbacks, data={"balance_usd": "3.00", "threshold_usd": "5.00",
                                                             "key_name": "<prod & staging>"})
    [request] = receiver.requests
    assert "webhook-signature" not in request["headers"]
    assert json.loads(request["body"]) == {"text": "Low credit balance on Alpha Labs", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Low credit balance on Alpha Labs", "emoji": False}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "The balance is $3.00, under $5.00."}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Balance (USD)*\n$3.00"},
                                       {"type": "mrkdwn", "text": "*Key name*\n&lt;prod &amp; staging&gt;"},
                                       {"type": "mrkdwn", "text": "*Threshold (USD)*\n$5.00"}]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "<https://tokengrid.example/account/alerts/|"
                                                                    "Alerts of the account on Tokengrid> · balance.low"}]},
    ]}
    assert _log(channel) == [(1, "delivered", 200)]


def test_an_email_channel_reaches_its_chosen_members_only(acct_a, acct_b, django_capture_on_commit_callbacks):
    make_user("olga", acct_a, "owner")
    vic = make_user("vic", acct_a, "viewer")
    make_user("bob", acct_b, "owner")
    with pytest.raises(ChannelInvalid, match="bob@example.com is not a member of this account with an e-mail address"):
        alert_channel_create(account=acct_a, kind="email", recipients=["bob@example.com"])
    channel = alert_channel_create(account=acct_a, kind="email", recipients=[str(vic.pk)], events=["balance.low"])
    assert channel.recipients == ["vic@example.com"]
    _emit(acct_a, django_capture_on_commit_callbacks)
    assert [(m.subject, m.to) for m in mail.outbox] == [("Low credit balance on Alpha Labs", ["vic@example.com"])]
    assert _log(channel) == [(1, "delivered", None)]
    # An event the channel did not choose goes nowhere (the account has a channel: no owners' fallback).
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        alert_emit(account=acct_a, event="spend.unusual", dedupe_key="u1", subject="Unusual spend", text="t")
    assert mail.outbox == []
    # A recipient who left the account gets nothing.
    vic.memberships.all().delete()
    _emit(acct_a, django_capture_on_commit_callbacks, key="balance.low:2")
    assert mail.outbox == []
    assert channel.deliveries.order_by("-id").first().error == ("no recipient is a member of the account with an "
                                                               "e-mail address")


def test_one_query_finds_the_channels_of_all_the_events_accounts(acct_a, acct_b, receiver,
                                                                 django_assert_num_queries):
    alert_channel_create(account=acct_a, kind="webhook", url=receiver.url)
    alert_channel_create(account=acct_b, kind="email")
    events = [AlertEvent.objects.create(account=account, event="balance.low", dedupe_key=f"k{account.pk}",
                                        subject="s", text="t", created=alert_delivery.timezone.now())
              for account in (acct_a, acct_b)]
    with django_assert_num_queries(2):  # the channels, one INSERT of the deliveries
        assert alert_delivery.events_fan_out(events=events) == set()
    assert AlertDelivery.objects.count() == 3  # A's webhook and owners' e-mail, B's e-mail


# --- The request-forgery guard ---


@pytest.mark.parametrize(("url", "message"), [
    ("http://hooks.example.com/x", "the URL must start with https://"),
    ("https://127.0.0.1/x", "127.0.0.1 resolves to 127.0.0.1, a loopback address: alerts are not sent into "
                            "private networks"),
    ("https://localhost:8443/x", "localhost resolves to 127.0.0.1, a loopback address: alerts are not sent into "
                                 "private networks"),
    ("https://10.1.2.3/x", "10.1.2.3 resolves to 10.1.2.3, a private address: alerts are not sent into private "
                           "networks"),
    ("https://169.254.169.254/latest/meta-data", "169.254.169.254 resolves to 169.254.169.254, a link-local "
                                                 "address: alerts are not sent into private networks"),
    ("https://[::1]/x", "::1 resolves to ::1, a loopback address: alerts are not sent into private networks"),
    ("https://[::ffff:192.168.0.1]/x", "::ffff:192.168.0.1 resolves to ::ffff:192.168.0.1, a private address: "
                                       "alerts are not sent into private networks"),
    ("https://224.0.0.1/x", "224.0.0.1 resolves to 224.0.0.1, a multicast address: alerts are not sent into "
                            "private networks"),
    ("https://0.0.0.0/x", "0.0.0.0 resolves to 0.0.0.0, a unspecified address: alerts are not sent into "
                          "private networks"),
    ("https://user:pw@hooks.example.com/x", "the URL may not carry a user name or password"),
])
def test_private_addresses_are_refused(acct_a, settings, url, message):
    settings.ALERT_ALLOW_PRIVATE_URLS = False
    with pytest.raises(ChannelInvalid) as refused:
        alert_channel_create(account=acct_a, kind="webhook", url=url)
    assert (refused.value.field, refused.value.reason) == ("url", message)
    assert not AlertChannel.objects.exists()


def _resolving_to(monkeypatch, *addresses):
    def fake(host, port, *args, **kwargs):
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]
    monkeypatch.setattr(socket, "getaddrinfo", fake)


def test_every_resolved_address_is_checked(settings, monkeypatch):
    settings.ALERT_ALLOW_PRIVATE_URLS = False
    _resolving_to(monkeypatch, "93.184.215.14", "192.168.1.20")
    with pytest.raises(AlertUrlRefused, match=r"^hooks\.example\.com resolves to 192\.168\.1\.20, a private address"):
        alert_url_check("https://hooks.example.com/x")
    _resolving_to(monkeypatch, "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    alert_url_check("https://hooks.example.com/x")  # all public: accepted


def test_a_name_that_resolves_privately_at_send_time_is_refused_then(acct_a, settings, monkeypatch):
    """DNS rebinding: public when saved, private when sent — nothing is posted, nothing retried."""
    settings.ALERT_ALLOW_PRIVATE_URLS = False
    _resolving_to(monkeypatch, "93.184.215.14")
    channel = alert_channel_create(account=acct_a, kind="webhook", url="https://hooks.example.com/x")
    _resolving_to(monkeypatch, "10.0.0.7")
    event = AlertEvent.objects.create(account=acct_a, event="balance.low", dedupe_key="k", subject="s", text="t",
                                      created=alert_delivery.timezone.now())
    delivery = AlertDelivery.objects.create(channel=channel, event=event, created=event.created, due_at=event.created)
    outcome = alert_delivery_attempt(delivery_id=delivery.pk)
    assert (outcome.status, outcome.retry_in) == ("failed", None)
    assert outcome.error == ("refused: hooks.example.com resolves to 10.0.0.7, a private address: alerts are not "
                             "sent into private networks")


def test_the_setting_allows_http_and_local_addresses(acct_a, settings):
    settings.ALERT_ALLOW_PRIVATE_URLS = True
    channel = alert_channel_create(account=acct_a, kind="webhook", url="http://127.0.0.1:9/x")
    assert channel.url == "http://127.0.0.1:9/x"


@pytest.mark.parametrize(("fields", "field", "reason"), [
    ({"kind": "sms"}, "kind", "one of email, webhook, slack"),
    ({"kind": "webhook"}, "url", "a webhook channel needs a URL"),
    ({"kind": "email", "url": "https://x.example"}, "url", "an e-mail channel has no URL (choose its recipients)"),
    ({"kind": "email", "events": ["balance.lo"]}, "events", "unknown event 'balance.lo'; the events are "
     "budget.threshold, budget.exhausted, "),
])
def test_bad_channels_are_refused_with_the_reason(acct_a, fields, field, reason):
    with pytest.raises(ChannelInvalid) as refused:
        alert_channel_create(account=acct_a, **fields)
    # (The list of events is cut: other work adds events to it.)
    assert (refused.value.field, refused.value.reason[:len(reason)]) == (field, reason)
