"""Who may reach what: every route that takes an id or a slug, every account page, every form.

The route tables below must name every parametrized route of the site (the first test fails when a
new one appears), so that each new id-taking URL gets an access check here.
"""
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import get_resolver

from analytics.models import Generation, IngestBatch, Reprice
from billing.accounts import account_token_create
from billing.models import ApiKey, Membership
from marketplace.models import PendingPriceChange
from tests.analytics.conftest import D1, D40, account_traffic
from tests.billing.factories import member_of

pytestmark = pytest.mark.django_db

# Routes that show no account's data: public pages and files, or a secret in the URL itself.
PUBLIC = {"plotly-js", "password_reset_confirm", "api-model-endpoints", "model", "author", "provider", "app",
          "invitation"}
# Routes of an account's own objects: another account's object answers 404 (or 403).
OWN_OBJECTS = {"generation", "api-key", "api-ingest-batch", "api-budget", "api-spend-release", "alert-log",
               "api-alert-deliveries"}
# Routes of the current account by period: another account's figures never appear on them.
BY_PERIOD = {"monthly-report", "statement", "statement-csv"}
STAFF_ONLY = {"ops-batch", "ops-batch-rejects", "ops-batch-retry", "ops-reprice", "ops-reprice-apply",
              "ops-change-plan", "ops-change-dismiss"}


def _routes(patterns=None, prefix=""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if hasattr(pattern, "url_patterns"):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern.name


def test_every_parametrized_route_has_an_access_rule():
    parametrized = {name for route, name in _routes() if "<" in route and not route.startswith("admin/")}
    assert parametrized == PUBLIC | OWN_OBJECTS | BY_PERIOD | STAFF_ONLY


@pytest.fixture
def site(tmp_path):
    accounts = account_traffic(tmp_path)
    alice = member_of(accounts["a"], Membership.Role.OWNER, "alice")
    client = Client()
    client.force_login(alice)
    _, secret = account_token_create(account=accounts["a"], name="a", created_by=alice)
    return {**accounts, "client": client, "token": secret}


def test_account_a_cannot_reach_account_b_objects(site):
    client, auth = site["client"], {"HTTP_AUTHORIZATION": f"Bearer {site['token']}"}
    b_generation = Generation.objects.get(account_id=site["b"].pk)
    b_key = ApiKey.objects.get(account=site["b"])
    batch = IngestBatch.objects.get()
    assert client.get(f"/account/generations/{b_generation.pk}/").status_code == 404
    # The log's id search, its CSV and the API's: B's id finds nothing, as a missing id does.
    assert list(client.get("/account/generations/", {"id": b_generation.pk}).context["page"].rows) == []
    searched = client.get("/account/reports/generations.csv", {"id": b_generation.pk, "start": D40.isoformat()})
    assert b"".join(searched.streaming_content).decode().count("\n") == 1  # the header only
    assert client.get("/api/v1/account/generations", {"id": b_generation.pk}, **auth).json()["results"] == []
    assert client.get(f"/api/v1/keys/{b_key.pk}", **auth).status_code == 404
    own_key = ApiKey.objects.filter(account=site["a"]).first()
    assert client.get(f"/api/v1/keys/{own_key.pk}", **auth).status_code == 200  # the check can pass
    assert client.get(f"/api/v1/ingest/{batch.pk}", **auth).status_code in (401, 403)  # gateway token only
    month = f"{D1:%Y-%m}"
    for url in (f"/account/reports/monthly/{month}/", f"/account/statements/{month}/",
                f"/account/statements/{month}/csv"):
        response = client.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert not re.search(rb"9[.,]99", body), url  # account B's only request cost $9.99


def test_explorer_slices_by_user_and_tag_stay_in_the_account(site):
    """Account B's request carries the same (empty) user and no tag as A's: filtered or grouped by them,
    A's explorer, its CSV and the overview's top users and tags still show A's rows only."""
    client = site["client"]
    for url in ("/account/activity/?group_by=user&group_by=tag&user=&period=30d",
                "/account/activity/?group_by=tag&tag=prod&period=30d",
                "/account/activity.csv?group_by=user&group_by=model&user=&period=30d", "/account/?period=30d"):
        response = client.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert not re.search(rb"9[.,]99", body), url  # account B's only request cost $9.99


def test_staff_pages_refuse_account_holders(site):
    batch = IngestBatch.objects.get()
    reprice = _reprice()
    for url in (f"/ops/ingest/{batch.pk}/", f"/ops/ingest/{batch.pk}/rejects.csv", "/ops/ingest/", "/ops/unpriced/",
                "/admin/", "/ops/reprice/", f"/ops/reprice/{reprice.pk}/"):
        response = site["client"].get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/"), url
    assert site["client"].post(f"/ops/ingest/{batch.pk}/retry").status_code == 302
    change = _pending_change()
    for url in ("/ops/reprice/", f"/ops/reprice/{reprice.pk}/apply", f"/ops/reprice/change/{change.pk}/plan",
                f"/ops/reprice/change/{change.pk}/dismiss"):
        response = site["client"].post(url, {"model": "lab/alpha", "start": "2026-01-01", "prompt": "1",
                                             "completion": "1"})
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/"), url
    assert Reprice.objects.get().status == Reprice.Status.PLANNED
    assert Reprice.objects.count() == 1
    change.refresh_from_db()
    assert change.status == PendingPriceChange.Status.PENDING


def _pending_change() -> PendingPriceChange:
    """A price change catalog_sync held back, on the fixture traffic's endpoint."""
    endpoint = Reprice.objects.get().price.endpoint
    return PendingPriceChange.objects.create(
        endpoint=endpoint, valid_from=datetime(2026, 1, 1, tzinfo=UTC), old_prompt_price=Decimal("0.000001"),
        old_completion_price=Decimal("0.000001"), new_prompt_price=Decimal("0.000002"),
        new_completion_price=Decimal("0.000002"), detected_at=datetime(2026, 1, 2, tzinfo=UTC))


def _reprice() -> Reprice:
    """A planned reprice of lab/alpha at ProvOne (the fixture traffic's endpoint)."""
    from datetime import UTC, datetime

    from analytics.repricing.services import reprice_plan
    from marketplace.models import Model, Provider
    from marketplace.price_history import endpoint_price_set
    from tests.marketplace.factories import EndpointFactory

    endpoint = EndpointFactory(model=Model.objects.get(slug="lab/alpha"), provider=Provider.objects.get(name="ProvOne"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    price = endpoint_price_set(model_id=endpoint.model_id, provider_id=endpoint.provider_id, valid_from=start,
                               prompt=1, completion=1)
    plan = reprice_plan(model_id=endpoint.model_id, provider_id=endpoint.provider_id, price_id=price.pk, start=start,
                        created_by="staff")
    return Reprice.objects.get(pk=plan.reprice_id)


def test_anonymous_users_are_sent_to_sign_in_from_every_account_page(site):
    anonymous = Client()
    b_generation = Generation.objects.get(account_id=site["b"].pk)
    concrete = {"generation": f"/account/generations/{b_generation.pk}/", "alert-log": "/account/alerts/1/",
                "monthly-report": f"/account/reports/monthly/{D1:%Y-%m}/",
                "statement": f"/account/statements/{D1:%Y-%m}/", "statement-csv": f"/account/statements/{D1:%Y-%m}/csv"}
    urls = [concrete.get(name, "/" + route) for route, name in _routes() if route.startswith("account/")]
    assert len(urls) >= 15
    for url in urls:
        response = anonymous.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


FORMS = ("/account/switch/", "/account/settings/", "/account/members/", "/account/members/remove/", "/account/tokens/", "/account/tokens/revoke/", "/account/credits/", "/account/credits/buy/",
         "/account/credits/refund/", "/account/credits/auto-topup/", "/account/credits/alert/",
         "/account/credits/promo/", "/account/credits/demo-card/", "/account/keys/",
         "/account/credits/budgets/save/", "/account/credits/budgets/delete/", "/account/credits/budgets/week/",
         "/account/alerts/add/", "/account/alerts/events/", "/account/alerts/rotate/", "/account/alerts/pause/",
         "/account/alerts/delete/", "/account/alerts/test/", "/account/alerts/resend/", "/account/credits/unusual/",
         "/accounts/logout/", "/accounts/password_change/", "/accounts/login/", "/accounts/password_reset/")


def test_every_form_needs_its_csrf_token(site):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(get_user_model().objects.get(username="alice"))
    for url in FORMS:
        assert strict.post(url, {"name": "x", "email": "x@example.com"}).status_code == 403, url


def test_budgets_and_reservations_stay_in_their_account(site, settings):
    """An account token checks, reserves and releases for its own keys only; another account's budget
    ids answer 404 on the API and the page's forms; the gateway token reads no account page or API."""
    from billing import budgets
    from billing.models import Budget, Reservation

    settings.GATEWAY_TOKEN = "gw-access"  # noqa: S105  (test only)
    client, auth = site["client"], {"HTTP_AUTHORIZATION": f"Bearer {site['token']}"}
    b_key = ApiKey.objects.get(account=site["b"])
    a_key = ApiKey.objects.filter(account=site["a"]).first()
    theirs = budgets.budget_create(account=site["b"], scope="account", amount_units=10**10, period="day")
    body = {"api_key": b_key.external_id, "account": site["b"].external_id}
    assert client.post("/api/v1/spend/check", body, content_type="application/json", **auth).status_code == 404
    assert client.post("/api/v1/spend/reserve", {**body, "id": "x1", "amount_usd": "0.01"},
                       content_type="application/json", **auth).status_code == 404
    assert client.post("/api/v1/spend/check", {"api_key": a_key.external_id}, content_type="application/json",
                       **auth).status_code == 200  # the check can pass
    from billing.ledger import ledger_post
    ledger_post(account_id=site["b"].pk, kind="purchase", amount_units=10**12, idempotency_key="access:b")
    assert budgets.spend_reserve(reservation_id="b-held", key=b_key, amount_units=10**8)[0] == 201
    assert client.delete("/api/v1/spend/reserve/b-held", **auth).status_code == 404
    assert Reservation.objects.get(pk="b-held").status == "open"
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(f"/api/v1/account/budgets/{theirs.pk}", {},
                                           content_type="application/json", **auth)
        assert response.status_code == 404, method
    assert client.get("/api/v1/account/budgets", **auth).json() == []
    assert client.post("/account/credits/budgets/delete/", {"budget": theirs.pk}).status_code == 404
    assert client.post("/account/credits/budgets/save/", {"budget": theirs.pk, "scope": "account", "amount": "1",
                                                          "period": "day", "mode": "hard"}).status_code == 404
    assert Budget.objects.get(pk=theirs.pk).amount_units == 10**10
    assert "data-budget=" not in client.get("/account/credits/budgets/").content.decode()  # A has none

    gateway = Client(HTTP_AUTHORIZATION="Bearer gw-access")
    for url in ("/api/v1/account/budgets", f"/api/v1/account/budgets/{theirs.pk}", "/api/v1/credits",
                "/api/v1/keys", "/api/v1/account/budget-settings"):
        assert gateway.get(url).status_code == 401, url
    for url in ("/account/", "/account/credits/", "/account/credits/budgets/", "/account/keys/"):
        assert gateway.get(url).status_code == 302, url  # to sign-in: the token is no session
    assert gateway.post("/api/v1/spend/check", {"api_key": b_key.external_id}, content_type="application/json"
                        ).status_code == 200


def test_alert_channels_and_deliveries_stay_in_their_account(site, settings):
    """Another account's channel and delivery ids answer 404 on every page, form and API; its
    channel's secret, URL and log never appear; nothing of it changes."""
    from billing.alert_channels import alert_channel_create
    from billing.models import AlertChannel, AlertDelivery, AlertEvent

    settings.ALERT_ALLOW_PRIVATE_URLS = True
    client, auth = site["client"], {"HTTP_AUTHORIZATION": f"Bearer {site['token']}"}
    theirs = alert_channel_create(account=site["b"], kind="webhook", url="http://127.0.0.1:9/b-secret-hook")
    event = AlertEvent.objects.create(account=site["b"], event="balance.low", dedupe_key="b", subject="B's alert",
                                      text="t", created=theirs.created)
    delivery = AlertDelivery.objects.create(channel=theirs, event=event, created=event.created, due_at=event.created,
                                            status="failed", body="b-body")
    assert client.get(f"/account/alerts/{theirs.pk}/").status_code == 404
    for url, body in (("/account/alerts/events/", {"channel": theirs.pk, "events": ["balance.low"]}),
                      ("/account/alerts/rotate/", {"channel": theirs.pk}),
                      ("/account/alerts/pause/", {"channel": theirs.pk, "paused": "1"}),
                      ("/account/alerts/delete/", {"channel": theirs.pk}),
                      ("/account/alerts/test/", {"channel": theirs.pk}),
                      ("/account/alerts/resend/", {"delivery": delivery.pk})):
        assert client.post(url, body).status_code == 404, url
    page = client.get("/account/alerts/").content.decode()
    assert "b-secret-hook" not in page
    assert theirs.secret not in page
    assert client.get(f"/api/v1/account/alert-channels/{theirs.pk}/deliveries", **auth).status_code == 404
    assert client.get("/api/v1/account/alert-channels", **auth).json() == []
    after = AlertChannel.objects.get(pk=theirs.pk)
    assert (after.secret, after.events, after.paused_at) == (theirs.secret, [], None)
    assert AlertDelivery.objects.count() == 1
    assert AlertEvent.objects.filter(account=site["a"]).count() == 0


def test_thresholds_stay_in_their_account(site, settings):
    """Another account's key and budget ids answer 404 when their thresholds are posted; the alert
    settings API reads and changes the token's account only; another account's fired forecast never
    shows; a viewer changes no threshold; the gateway token reads no alert settings."""
    from billing import budgets
    from billing.accounts import api_key_limit_set
    from billing.models import AlertEvent, Budget

    settings.GATEWAY_TOKEN = "gw-access"  # noqa: S105  (test only)
    client, auth = site["client"], {"HTTP_AUTHORIZATION": f"Bearer {site['token']}"}
    a, b = site["a"], site["b"]
    b_key = ApiKey.objects.get(account=b)
    api_key_limit_set(account=b, key_id=b_key.pk, limit_units=10**10, interval="daily")
    theirs = budgets.budget_create(account=b, scope="account", amount_units=10**10, period="month",
                                   alert_percentages=[50])
    assert client.post("/account/keys/", {"key": b_key.pk, "limit": "1", "interval": "daily",
                                          "alerts": "10"}).status_code == 404
    assert client.post("/account/credits/budgets/save/", {"budget": theirs.pk, "scope": "account", "amount": "1",
                                                          "period": "month", "mode": "hard",
                                                          "alerts": "10"}).status_code == 404
    assert client.patch(f"/api/v1/account/budgets/{theirs.pk}", {"alert_percentages": [10]},
                        content_type="application/json", **auth).status_code == 404
    assert Budget.objects.get(api_key=b_key).alert_percentages == [80]
    assert Budget.objects.get(pk=theirs.pk).alert_percentages == [50]

    response = client.patch("/api/v1/account/alert-settings", {"low_balance_usd": "3", "unusual_spend_k": "2"},
                            content_type="application/json", **auth)
    assert response.status_code == 200
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.low_balance_threshold_units, a.unusual_spend_k) == (3 * 10**10, Decimal("2.0"))
    assert (b.low_balance_threshold_units, b.unusual_spend_k) == (None, Decimal("5.0"))
    client.post("/account/credits/unusual/", {"k": "9", "minimum": "1"})  # the current account's: A
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.unusual_spend_k, b.unusual_spend_k) == (Decimal("9.0"), Decimal("5.0"))

    now = datetime.now(tz=UTC)
    AlertEvent.objects.create(account=b, event="forecast.runs_out", dedupe_key="forecast:balance:x",
                              subject="B runs out", text="B-ONLY forecast", created=now,
                              data={"what": "balance", "period": now.date().replace(day=1).isoformat()})
    AlertEvent.objects.create(account=b, event="forecast.runs_out", dedupe_key="forecast:budget:x",
                              subject="B runs out", text="B-ONLY budget forecast", created=now,
                              data={"what": "budget", "budget_id": theirs.pk,
                                    "period": now.date().replace(day=1).isoformat()})
    for url in ("/account/credits/", "/account/credits/budgets/", "/account/"):
        assert "B-ONLY" not in client.get(url).content.decode(), url

    viewer = member_of(a, Membership.Role.VIEWER, "val")
    watcher = Client()
    watcher.force_login(viewer)
    a_key = ApiKey.objects.filter(account=a).first()
    assert watcher.post("/account/keys/", {"key": a_key.pk, "limit": "1", "interval": "daily",
                                           "alerts": "10"}).status_code == 403
    assert watcher.post("/account/credits/unusual/", {"k": "4", "minimum": "1"}).status_code == 403
    _, read_only = account_token_create(account=a, name="v", created_by=viewer)
    assert client.patch("/api/v1/account/alert-settings", {"unusual_spend_k": "4"}, content_type="application/json",
                        HTTP_AUTHORIZATION=f"Bearer {read_only}").status_code == 403
    a.refresh_from_db()
    assert a.unusual_spend_k == Decimal("9.0")
    assert Client(HTTP_AUTHORIZATION="Bearer gw-access").get("/api/v1/account/alert-settings").status_code == 401
