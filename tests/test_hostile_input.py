"""Hostile parameters never make a 500 (issue 16, items 3 and 6).

Dates at the calendar's edges, integers past 64 bits, amounts past the ledger's bigint, generation
ids with `/` and `?format=` on the ingest API: pages show their default and say why, forms refuse
with their message, APIs and CSV routes answer a clear 400, an id that names nothing a 404.
"""
import base64
import re
from datetime import UTC, date
from urllib.parse import quote, urljoin

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from analytics.usage.generation_log import cursor_encode
from billing.accounts import account_token_create
from billing.credit_forms import AdjustForm, AutoTopupForm, KeyLimitForm, LowBalanceForm
from billing.models import Account, ApiKey, Membership
from core.params import DATE_ERROR
from tests.analytics.conftest import (  # noqa: F401  (fixtures)
    _fresh_prices,
    _no_task_queueing,
    account_traffic,
    record,
    run_batch,
    write_jsonl,
)
from tests.billing.factories import member_of

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999"  # past 64 bits
EDGES = [("0001-01-01", "9999-12-31"), ("9999-12-31", "9999-12-31"), ("0001-01-01", "0001-01-02")]


def text_of(response) -> str:
    """What a person reads: the page without tags, whitespace collapsed, entities of quotes undone."""
    body = b"".join(response.streaming_content) if response.streaming else response.content
    text = re.sub(r"<[^>]+>", " ", body.decode()).replace("&#x27;", "'").replace("&quot;", '"')
    return re.sub(r"\s+", " ", text)


@pytest.fixture
def site(tmp_path, settings):
    settings.DEBUG = False
    accounts = account_traffic(tmp_path)
    alice = member_of(accounts["a"], Membership.Role.OWNER, "alice")
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    _, secret = account_token_create(account=accounts["a"], name="a", created_by=alice)
    return {**accounts, "client": client, "auth": {"HTTP_AUTHORIZATION": f"Bearer {secret}"}}


# --- dates at the calendar's edges ---------------------------------------------------------------


@pytest.mark.parametrize(("start", "end"), EDGES)
@pytest.mark.parametrize("url", ["/account/", "/account/activity/"])
def test_a_custom_period_at_the_calendars_edge_shows_the_last_30_days_and_why(site, url, start, end):
    response = site["client"].get(url, {"period": "custom", "start": start, "end": end})
    assert response.status_code == 200
    assert response.context["period"].name == "30d"
    text = text_of(response)
    assert f"{DATE_ERROR} Showing last 30 days." in text


def test_a_reversed_or_too_long_custom_period_says_so(site):
    reversed_ = site["client"].get("/account/", {"period": "custom", "start": "2026-02-01", "end": "2026-01-01"})
    assert "The start of a custom range must be on or before its end. Showing last 30 days." in text_of(reversed_)
    long = site["client"].get("/account/", {"period": "custom", "start": "2020-01-01", "end": "2026-01-01"})
    assert "A custom range covers at most 400 days." in text_of(long)


@pytest.mark.parametrize(("start", "end"), [*EDGES, ("", "0001-01-01"), ("yesterday", "")])
def test_the_reports_page_shows_the_last_30_days_and_why(site, start, end):
    response = site["client"].get("/account/reports/", {"start": start, "end": end})
    assert response.status_code == 200
    assert (response.context["end"] - response.context["start"]).days == 29
    assert f"{DATE_ERROR} Showing the last 30 days." in text_of(response)


@pytest.mark.parametrize(("start", "end"), [*EDGES, ("", "0001-01-01"), ("2026-13-01", "")])
@pytest.mark.parametrize("url", ["/account/reports/usage.csv", "/account/reports/generations.csv"])
def test_the_csv_reports_answer_400_for_a_date_out_of_range(site, url, start, end):
    response = site["client"].get(url, {"start": start, "end": end})
    assert response.status_code == 400
    assert response.content.decode() == DATE_ERROR


@pytest.mark.parametrize(("start", "end"), [*EDGES, ("", "0001-01-01")])
def test_the_usage_api_answers_400_for_a_date_out_of_range(site, start, end):
    response = site["client"].get("/api/v1/account/usage", {"start": start, "end": end}, **site["auth"])
    assert response.status_code == 400
    assert response.json() == {"detail": DATE_ERROR}


@pytest.mark.parametrize(("start", "end"), [("", "0001-01-01"), ("9999-12-31", "9999-12-31"),
                                            ("0001-01-01", "9999-12-31")])
@pytest.mark.parametrize("url", ["/api/v1/rankings/daily", "/api/v1/rankings/daily.csv"])
def test_the_public_daily_dataset_answers_400_for_a_date_out_of_range(client, settings, url, start, end):
    settings.DEBUG = False
    client.raise_request_exception = False
    response = client.get(url, {"start": start, "end": end})
    assert response.status_code == 400
    # DRF's field errors: each date out of range named, with its reason
    assert response.json() == {name: [DATE_ERROR] for name, value in (("start", start), ("end", end)) if value}


def test_the_dataset_still_serves_the_supported_range(client):
    response = client.get("/api/v1/rankings/daily", {"start": "2100-12-01", "end": "2100-12-31"})
    assert response.status_code == 200
    assert response.json()["rows"] == []


# --- the generation log's filters ----------------------------------------------------------------


@pytest.mark.parametrize("params", [{"start": "0001-01-01", "end": "9999-12-31"}, {"end": "9999-12-31"},
                                    {"model": HUGE}, {"api_key": HUGE}, {"app": f"-{HUGE}"}, {"provider": "1e3"}])
def test_the_generation_log_drops_unusable_filters_and_says_why(site, params):
    response = site["client"].get("/account/generations/", params)
    assert response.status_code == 200
    text = text_of(response)
    assert "Showing every generation." in text
    name = next(iter(params))
    assert (DATE_ERROR if name in ("start", "end") else f"{name} must be a whole number up to 9223372036854775807.") \
        in text
    assert {g.id for g in response.context["page"].rows} == {"r1", "r2", "r3", "r4", "r5"}


@pytest.mark.parametrize(("params", "detail"), [
    ({"end": "9999-12-31"}, f"end: {DATE_ERROR}"),
    ({"model": HUGE}, "model must be a whole number up to 9223372036854775807."),
    ({"api_key": f"-{HUGE}", "start": "0001-01-01"},
     f"api_key must be a whole number up to 9223372036854775807. start: {DATE_ERROR}"),
])
def test_the_generations_api_answers_400_for_unusable_filters(site, params, detail):
    response = site["client"].get("/api/v1/account/generations", params, **site["auth"])
    assert response.status_code == 400
    assert response.json() == {"detail": detail}


def test_a_cursor_at_the_calendars_edge_is_the_first_page(site):
    raw = orjson.dumps(["0001-01-01T00:00:00+05:00", "x"])  # made by hand: no UTC time exists for it
    response = site["client"].get("/account/generations/", {"after": base64.urlsafe_b64encode(raw).decode()})
    assert response.status_code == 200
    assert len(response.context["page"].rows) == 5


# --- ids past 64 bits ------------------------------------------------------------------------------


def test_a_key_id_past_64_bits_is_not_found(site):
    response = site["client"].get(f"/api/v1/keys/{HUGE}", **site["auth"])
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_a_key_limit_for_a_key_id_past_64_bits_is_not_found(site):
    response = site["client"].post("/account/keys/", {"key": HUGE, "limit": "1", "interval": "daily"})
    assert response.status_code == 404


def test_a_refund_of_a_payment_id_past_64_bits_is_not_found(site):
    response = site["client"].post("/account/credits/refund/", {"payment": HUGE})
    assert response.status_code == 404


def test_an_ingest_batch_id_past_64_bits_is_not_found(client, settings):
    settings.DEBUG = False
    settings.INGEST_TOKEN = "tok"  # noqa: S105  (test only)
    client.raise_request_exception = False
    response = client.get(f"/api/v1/ingest/{HUGE}", HTTP_AUTHORIZATION="Bearer tok")
    assert response.status_code == 404
    assert response.json() == {"detail": "no such batch"}


# --- amounts past the ledger's range ---------------------------------------------------------------

UP_TO = "Enter an amount up to $100,000,000."


def test_the_money_forms_refuse_amounts_past_the_ledgers_range():
    assert AutoTopupForm({"threshold": "999999999", "amount": "25", "monthly_cap": "100"}).errors == {
        "threshold": [UP_TO]}
    assert LowBalanceForm({"threshold": "9999999999.99"}).errors == {"threshold": [UP_TO]}
    assert KeyLimitForm({"limit": "9999999999", "interval": "daily"}).errors == {"limit": [UP_TO]}
    adjust = AdjustForm({"amount": "-1000000000", "reason": "x", "token": "t"})
    assert adjust.errors == {"amount": ["Enter a debit up to $100,000,000."]}
    assert AutoTopupForm({"threshold": "100000000", "amount": "25", "monthly_cap": "100000000"}).is_valid()  # the bound itself is fine


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_an_auto_top_up_past_the_ledgers_range_is_refused(site):
    response = site["client"].post("/account/credits/auto-topup/", {"threshold": "999999999", "amount": "25",
                                                                     "monthly_cap": "100"}, follow=True)
    assert response.status_code == 200
    assert _messages(response) == ["Auto top-up not saved: enter the amounts in dollars and cents: "
                                   "Enter an amount up to $100,000,000."]
    assert Account.objects.get(pk=site["a"].pk).auto_topup_threshold_units == 0  # as it was


def test_a_low_balance_alert_past_the_ledgers_range_is_refused(site):
    response = site["client"].post("/account/credits/alert/", {"threshold": "9999999999.99"},
                                   follow=True)
    assert response.status_code == 200
    assert _messages(response) == ["Enter the threshold in dollars and cents: Enter an amount up to $100,000,000."]
    assert Account.objects.get(pk=site["a"].pk).low_balance_threshold_units is None


def test_a_key_limit_past_the_ledgers_range_is_refused(site):
    key = ApiKey.objects.filter(account=site["a"]).first()
    response = site["client"].post("/account/keys/", {"key": key.pk, "limit": "9999999999", "interval": "daily"},
                                   follow=True)
    assert response.status_code == 200
    assert _messages(response) == ["Enter the limit in dollars (up to 4 decimals) and an interval: "
                                   "Enter an amount up to $100,000,000."]
    assert not key.budgets.exists()


_amounts = st.one_of(st.decimals(allow_nan=True, allow_infinity=True).map(str), st.integers().map(str),
                     st.text(max_size=12))


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(form=st.sampled_from(["topup", "alert", "key"]), amount=_amounts, other=_amounts, enabled=st.booleans())
def test_no_amount_makes_a_server_error(site, form, amount, other, enabled):
    if form == "key":
        key = ApiKey.objects.filter(account=site["a"]).first()
        response = site["client"].post("/account/keys/", {"key": key.pk, "limit": amount, "interval": "daily"})
    else:
        data = {"threshold": amount, "amount": other, "monthly_cap": other, **({"enabled": "on"} if enabled else {})}
        response = site["client"].post(f"/account/credits/{'auto-topup' if form == 'topup' else form}/", data)
    assert response.status_code == 302, (form, amount, other)


# --- generation ids of any characters ---------------------------------------------------------------

ODD_IDS = ["gen/1", "a/../b", "..", ".", "100%?#&x=1", "line\nbreak", "sp ace/", "€/✓"]


def test_generation_ids_of_any_characters_link_to_their_page(tmp_path, settings):
    settings.DEBUG = False
    records = [record(id=gid, created_at=f"2026-02-24T21:19:{i:02d}Z") for i, gid in enumerate(ODD_IDS)]
    assert run_batch(write_jsonl(tmp_path / "odd.jsonl", records)).accepted == len(ODD_IDS)
    user = member_of(Account.objects.get(external_id="acct_a"), Membership.Role.OWNER, "olga")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    base = "http://testserver/account/generations/"
    listing = client.get(base, {"start": "2026-02-24", "end": "2026-02-24"})
    assert listing.status_code == 200
    hrefs = re.findall(r'href="(/account/generations/[^"]+)"', listing.content.decode())
    assert len(hrefs) == len(ODD_IDS)
    shown = set()
    for href in hrefs:
        resolved = urljoin(base, href.replace("&amp;", "&"))  # as a browser resolves it (dot segments folded)
        page = client.get(resolved.removeprefix("http://testserver"))
        assert page.status_code == 200, href
        shown.add(page.context["g"].id)
    assert shown == set(ODD_IDS)


# --- ?format= on the ingest API -------------------------------------------------------------------


def test_the_ingest_api_takes_its_documented_format_parameter(client, settings):
    settings.INGEST_TOKEN = "tok"  # noqa: S105  (test only)
    body = b'{"id": "f1", "model": "lab/m", "created_at": "2026-02-24T21:19:33Z", "account": "acct_f"}\n'
    response = client.post("/api/v1/ingest?format=openrouter&wait=0", data=body,
                           content_type="application/x-ndjson", HTTP_AUTHORIZATION="Bearer tok")
    assert response.status_code in (200, 202)
    assert response.json()["format"] == "openrouter"
    unknown = client.post("/api/v1/ingest?format=json&wait=0", data=body, content_type="application/x-ndjson",
                          HTTP_AUTHORIZATION="Bearer tok")
    assert unknown.status_code == 400
    assert unknown.json() == {"detail": "unknown format 'json'"}


@pytest.mark.parametrize("wait", ["nan", "-inf", "soon"])
def test_the_ingest_api_refuses_a_wait_that_is_not_a_number_of_seconds(client, settings, wait):
    settings.INGEST_TOKEN = "tok"  # noqa: S105  (test only)
    response = client.post(f"/api/v1/ingest?wait={wait}", data=b"{}\n", content_type="application/x-ndjson",
                           HTTP_AUTHORIZATION="Bearer tok")
    assert response.status_code == 400
    assert response.json() == {"detail": "wait must be a number of seconds"}


def test_the_ingest_api_reads_a_malformed_content_length_as_empty(client, settings):
    settings.INGEST_TOKEN = "tok"  # noqa: S105  (test only)
    settings.DEBUG = False
    client.raise_request_exception = False
    response = client.post("/api/v1/ingest?wait=0", data=b"{}\n", content_type="application/x-ndjson",
                           HTTP_AUTHORIZATION="Bearer tok", CONTENT_LENGTH="lots")
    assert response.status_code == 400
    assert response.json() == {"detail": "empty body"}


# --- whatever a person types ----------------------------------------------------------------------

_dates = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat)
_ints = st.one_of(st.integers(), st.integers(min_value=2**62, max_value=2**80)).map(str)
_cursors = st.builds(cursor_encode, st.datetimes(timezones=st.just(UTC)), st.text(max_size=5))
_values = st.one_of(st.text(max_size=24), _ints, _dates, _cursors, st.sampled_from(["custom", "24h", "", "day"]))
_PARAMS = ("period", "start", "end", "metric", "group_by", "granularity", "model", "api_key", "provider", "app",
           "status", "after", "limit")
_ROUTES = ("/account/", "/account/activity/", "/account/generations/", "/account/reports/",
           "/account/reports/usage.csv", "/account/reports/generations.csv", "/api/v1/account/usage",
           "/api/v1/account/generations", "/api/v1/rankings/daily", "/api/v1/rankings/daily.csv")


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(_ROUTES), params=st.dictionaries(st.sampled_from(_PARAMS), _values, max_size=5))
def test_no_query_string_makes_a_server_error(site, route, params):
    response = site["client"].get(route, params, **site["auth"])
    text_of(response)  # a streamed body is produced whole
    assert response.status_code < 500, (route, params)


# --- every route, as anybody ---------------------------------------------------------------------

def _served_routes() -> list[str]:
    """Every `path()` the site serves (the admin's included)."""
    from django.urls import URLResolver, get_resolver
    from django.urls.resolvers import RoutePattern

    def walk(patterns, prefix):
        for entry in patterns:
            if not isinstance(entry.pattern, RoutePattern):
                continue  # the admin's regex catch-alls answer 404 / redirect, tried through their paths
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, route)
            else:
                yield route

    return sorted(set(walk(get_resolver().url_patterns, "")))


_SEGMENT = re.compile(r"<(?:(?P<converter>[^>:]+):)?[^>]+>")
_segment_values = {
    "int": st.one_of(st.integers(min_value=0, max_value=10), st.integers(min_value=2**62, max_value=2**80)).map(str),
    "slug": st.one_of(st.sampled_from(["lab", "alpha", "provone", "a-example"]), st.from_regex(r"\A[-a-zA-Z0-9_]{1,30}\Z")),
}
_any_segment = st.one_of(st.sampled_from(["1", "2026-11", "9999-12", "0001-01", "lab", "alpha", "r1", "%", "..", "-1"]),
                         st.text(min_size=1, max_size=30))
_FORM_FIELDS = _PARAMS + ("amount", "threshold", "enabled", "email", "role", "name", "code", "key", "limit_usd",
                          "action", "payment", "q", "o", "p", "e", "all", "username", "password", "account",
                          "new_password1", "new_password2", "created__gte", "day__year", "window", "id")


@st.composite
def _requests(draw, routes):
    route = draw(st.sampled_from(routes))

    def fill(match: re.Match) -> str:
        return quote(draw(_segment_values.get(match["converter"] or "str", _any_segment)), safe="")

    path = "/" + _SEGMENT.sub(fill, route)
    data = draw(st.dictionaries(st.sampled_from(_FORM_FIELDS), _values, max_size=6))
    return path, draw(st.sampled_from(["get", "post"])), data


@pytest.fixture
def people(site):
    """A stranger, the account's owner and a staff member, each with a client of their own."""
    staff = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    clients = {"stranger": Client(raise_request_exception=False), "staff": Client(raise_request_exception=False),
               "owner": site["client"]}
    clients["staff"].force_login(staff)
    return clients


_ROUTES_SERVED = _served_routes()
_SITE_ROUTES = [route for route in _ROUTES_SERVED if not route.startswith("admin/")]
_ADMIN_ROUTES = [route for route in _ROUTES_SERVED if route.startswith("admin/")]


def _no_server_error(site, client, request) -> int:
    path, method, params = request
    response = getattr(client, method)(path, params, **site["auth"])
    text_of(response)  # a streamed body is produced whole
    assert response.status_code < 500, (method, path, params)
    return response.status_code


@hypothesis_settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_page_or_api_answers_a_server_error_to_anybody(site, people, data):
    """Generated paths, query strings and form bodies on every route, as a stranger, the owner and staff."""
    client = people[data.draw(st.sampled_from(sorted(people)))]
    _no_server_error(site, client, data.draw(_requests(_SITE_ROUTES)))


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_admin_page_answers_a_server_error_to_staff(site, people, data):
    """The admin's changelists, filters, searches, forms and object pages, with generated values."""
    _no_server_error(site, people["staff"], data.draw(_requests(_ADMIN_ROUTES)))


def test_the_route_walk_covers_the_site():
    """The two tests above see every page a person uses, so a new route is fuzzed without being listed."""
    assert {"account/credits/", "account/generations/<generation_id:generation_id>/", "models/<slug:author>/<str:name>/",
            "ops/ingest/<int:batch_id>/", "api/v1/keys/<int:key_id>", "invitations/<str:token>/"} <= set(_SITE_ROUTES)
    assert "admin/billing/ledgerentry/" in _ADMIN_ROUTES
    assert len(_ADMIN_ROUTES) > 40


@pytest.mark.parametrize("url", ["/account/generations/%00/", "/api/v1/models/lab/a%00b/endpoints",
                                 "/models/?q=%00", "/account/generations/?session=a%00", "/rankings/?window=%00",
                                 "/api/v1/rankings/models?category=%00"])
def test_a_nul_in_a_url_is_refused_with_400_not_a_server_error(site, url):
    client = site["client"]
    client.raise_request_exception = False
    response = client.get(url, **site["auth"]) if url.startswith("/api/") else client.get(url)
    assert (response.status_code, response.content) == (400, b"A NUL character names nothing here.")
