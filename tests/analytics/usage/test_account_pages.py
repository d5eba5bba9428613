"""Account pages, CSVs and API against hand-computed totals on fixture traffic."""
import csv
import io
import re
from datetime import UTC, datetime, time, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from analytics.models import Generation
from analytics.usage import generation_log, log_export
from billing.accounts import account_token_create
from billing.models import Membership
from tests.analytics.conftest import D1, D2, D40, TODAY, account_traffic, record, run_batch, write_jsonl
from tests.analytics.conftest import at as _at
from tests.billing.factories import MembershipFactory, member_of

pytestmark = pytest.mark.django_db

def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _change_on_hover(response, stat: str) -> str:
    """The title of an overview card's change (a partial change shows its percentage on hover)."""
    card = re.search(rf'data-stat="{stat}">\s*<div class="label">[^<]*</div>\s*<div class="value">.*?</div>\s*'
                     rf'<div class="delta"><span class="\w+" title="([^"]*)">', response.content.decode())
    return card.group(1) if card else ""


@pytest.fixture
def traffic(tmp_path):
    return account_traffic(tmp_path)


@pytest.fixture
def alice(traffic):
    return member_of(traffic["a"], Membership.Role.OWNER, "alice")


def test_anonymous_users_are_sent_to_sign_in(client):
    for url in ("/account/", "/account/activity/", "/account/generations/", "/account/reports/",
                "/account/reports/usage.csv", "/account/members/", "/account/tokens/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"/accounts/login/?next={url}"


def test_sign_in_page_and_sign_in(client, alice):
    assert "Sign in" in _text(client.get("/accounts/login/"))
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice-123"})
    assert response.status_code == 302
    assert response["Location"] == "/account/"
    assert client.get("/account/").status_code == 200


def test_password_reset_by_email(client, alice):
    client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/reset/\S+)", mail.outbox[0].body).group(1)
    form_url = client.get(link)["Location"]
    response = client.post(form_url, {"new_password1": "Another-pass-987", "new_password2": "Another-pass-987"})
    assert response.status_code == 302
    assert client.login(username="alice", password="Another-pass-987")


def test_overview_totals_against_the_previous_period(client, alice, django_assert_max_num_queries):
    client.force_login(alice)
    with django_assert_max_num_queries(22):
        response = client.get("/account/", {"period": "30d"})
    text = _text(response)
    # Spend $0.045 (BYOK r5 excluded) against $0.01: +350%; tokens 7,700 against 1,000: +670%.
    # The account's traffic began on D40, inside the previous 30 days (on 11 of them, D40 to D30): each change
    # says partial, its percentage on hover.
    partial = "against a previous window with traffic on 11 of its 30 days"
    assert re.search(r"Spend \$0\.045 partial: 11 of 30 days vs previous", text)
    assert _change_on_hover(response, "spend") == f"+350.0% {partial}"
    assert re.search(r"Tokens 7\.7K partial: 11 of 30 days vs previous", text)
    assert _change_on_hover(response, "tokens") == f"+670.0% {partial}"
    assert re.search(r"Requests 4 partial: 11 of 30 days vs previous", text)
    assert _change_on_hover(response, "requests") == f"+300.0% {partial}"
    # $0.045 over the 7,500 paid tokens = $6 per 1M, against $10 before; cache hits 200 of 6,100 prompt tokens.
    assert re.search(r"Cost per 1M tokens \$6\.00 partial: 11 of 30 days vs previous", text)
    assert _change_on_hover(response, "cost_per_million") == f"-40.0% {partial}"
    assert re.search(r"Cache hits 3\.3% new vs previous", text)  # no cache hits before
    assert "4 requests, 1 failed; 200 BYOK tokens (not in spend)" in text
    assert re.search(r"Top models Model Spend Tokens Requests Share lab/beta \$0\.03 3\.2K 2 66\.7% "
                     r"lab/alpha \$0\.015 4\.5K 2 33\.3%", text)
    assert "9.99" not in text  # account B's request


def test_overview_custom_period_and_empty_state(client, alice):
    client.force_login(alice)
    text = _text(client.get("/account/", {"period": "custom", "start": D2.isoformat(), "end": D2.isoformat()}))
    assert re.search(r"Spend \$0\.015 ", text)
    assert re.search(r"Requests 1 ", text)
    empty = _text(client.get("/account/", {"period": "custom", "start": "2020-01-01", "end": "2020-01-31"}))
    assert "No requests in this period." in empty


def test_activity_groups_and_keeps_state_in_the_url(client, alice, django_assert_max_num_queries):
    client.force_login(alice)
    # 6 for the view, 5 for the filter choices (ids seen, then names; cached until the next chunk).
    with django_assert_max_num_queries(11):
            response = client.get("/account/activity/", {"metric": "tokens", "group_by": ["model", "api_key"],
                                                      "granularity": "day", "period": "custom",
                                                      "start": D2.isoformat(), "end": D1.isoformat()})
    text = _text(response)
    rows = re.findall(r"(lab/\w+) \+ (k\d) \+ (\d+) ([\d.]+%)", text)  # "+": narrow the view to it
    assert rows == [("lab/alpha", "k1", "4500", "58.4%"), ("lab/beta", "k2", "3200", "41.6%")]
    chart = response.context["activity"].series
    assert chart.periods == [D2.isoformat(), D1.isoformat()]
    assert chart.series == {"lab/alpha · k1": [1500, 3000], "lab/beta · k2": [0, 3200]}
    body = response.content.decode()
    assert 'value="tokens" selected' in body
    assert 'value="day" selected' in body


def test_activity_latency_is_a_mean_not_a_sum(client, alice):
    client.force_login(alice)
    response = client.get("/account/activity/", {"metric": "latency", "group_by": "model", "period": "30d"})
    groups = {row.labels[0]: row.value for row in response.context["activity"].groups}
    # alpha: r1 400 ms (r3 failed: no latency); beta: r2 600 ms and r5 400 ms.
    assert groups == {"lab/alpha": 400.0, "lab/beta": 500.0}


def test_generation_log_filters_and_detail(client, alice, traffic, django_assert_max_num_queries):
    client.force_login(alice)
    # session, user, memberships, page, histogram, 4 names, the filter lists (the explorer's: one read of the
    # rollups and 4 names, then cached until the account's next chunk), the reservations the page's rows settled
    with django_assert_max_num_queries(15):
        body = client.get("/account/generations/").content.decode()
    # newest first; a row shows month, day and time, the full timestamp on hover
    assert (body.index(f'title="{D1.isoformat()} 13:00:00">{D1:%m-%d} 13:00:00<')
            < body.index(f'title="{D2.isoformat()} 10:00:00">{D2:%m-%d} 10:00:00<'))
    failed = client.get("/account/generations/", {"status": "error"})
    assert [g.id for g in failed.context["page"].rows] == ["r3"]
    beta = Generation.objects.get(id="r2").model_id
    assert [g.id for g in client.get("/account/generations/", {"model": beta}).context["page"].rows] == ["r5", "r2"]
    detail = _text(client.get("/account/generations/r1/"))
    assert "=HYPERLINK" in detail
    assert "1000" in detail
    assert "Total cost $0.015 Cost source" in detail  # the exact amount
    assert client.get("/account/generations/b1/").status_code == 404  # account B's
    assert client.get("/account/generations/nope/").status_code == 404


def test_keyset_pages_have_no_gaps_or_repeats_while_rows_arrive(tmp_path, traffic):
    account = traffic["a"]
    base = datetime.combine(D2, time(0), tzinfo=UTC)
    run_batch(write_jsonl(tmp_path / "many.jsonl", [
        record(id=f"m{i:02}", created_at=(base + timedelta(minutes=i // 2)).isoformat(), account="acct_a")
        for i in range(30)]))  # pairs share a timestamp: the id breaks the tie
    before = list(Generation.objects.filter(account_id=account.pk).order_by("-created_at", "-id")
                  .values_list("id", flat=True))
    seen, cursor, page_no = [], None, 0
    while True:
        page = generation_log.generations_page(account_id=account.pk, log_filter=generation_log.LogFilter(),
                                               after=cursor, size=7)
        seen += [g.id for g in page.rows]
        page_no += 1
        run_batch(write_jsonl(tmp_path / f"new{page_no}.jsonl", [
            record(id=f"new{page_no}", created_at=datetime.now(tz=UTC).isoformat(), account="acct_a")]))
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen))
    assert seen == before  # rows newer than the first page never shift what comes next


def test_usage_csv_rows_equal_hand_computed_truth(client, alice):
    client.force_login(alice)
    response = client.get("/account/reports/usage.csv", {"start": D2.isoformat(), "end": D1.isoformat()})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["date", "model", "api_key", "api_key_name", "requests", "failures", "tokens_prompt", "tokens_completion",
         "tokens_reasoning", "tokens_cached", "tokens_total", "byok_tokens", "spend_usd", "unpriced_requests"],
        [D2.isoformat(), "lab/alpha", "k1", "", "1", "0", "1000", "500", "100", "200", "1500", "0", "0.0150000000",
         "0"],
        [D1.isoformat(), "lab/alpha", "k1", "", "1", "1", "3000", "0", "0", "0", "3000", "0", "0.0000000000", "0"],
        [D1.isoformat(), "lab/beta", "k2", "", "2", "0", "2100", "1100", "0", "0", "3200", "200", "0.0300000000",
         "0"],
    ]
    by_app = list(csv.reader(io.StringIO(b"".join(client.get("/account/reports/usage.csv", {
        "start": D2.isoformat(), "end": D1.isoformat(), "group_by": "app"}).streaming_content).decode())))
    assert by_app[0][:2] == ["app", "app_origin"]
    assert [r[:3] for r in by_app[1:]] == [["", "", "2"], ["'@evil app", "https://a.example/", "2"]]


def test_usage_csv_folds_days_into_weeks_and_months(client, alice):
    client.force_login(alice)
    per_day = {D2: (1, 1500), D1: (3, 6200)}  # requests, tokens
    for group, label in (("week", lambda d: (d - timedelta(days=d.weekday())).isoformat()),
                         ("month", lambda d: f"{d:%Y-%m}")):
        expected: dict[str, list[int]] = {}
        for day, (requests, tokens) in per_day.items():
            totals = expected.setdefault(label(day), [0, 0])
            totals[0] += requests
            totals[1] += tokens
        body = b"".join(client.get("/account/reports/usage.csv", {
            "start": D2.isoformat(), "end": D1.isoformat(), "group_by": group}).streaming_content).decode()
        rows = list(csv.DictReader(io.StringIO(body)))
        assert {r[group]: [int(r["requests"]), int(r["tokens_total"])] for r in rows} == expected


def test_generations_csv_has_every_field_oldest_first_and_neutralized(client, alice):
    client.force_login(alice)
    response = client.get("/account/reports/generations.csv", {"start": D40.isoformat(), "end": TODAY.isoformat()})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["id"] for r in rows] == ["r4", "r1", "r2", "r3", "r5"]
    r1, r2 = rows[1], rows[2]
    assert r1["finish_reason"] == "'=HYPERLINK(\"http://x\")"
    assert r1["app"] == "'@evil app"
    assert r1["app_origin"] == "https://a.example/"
    assert (r1["tokens_prompt"], r1["tokens_reasoning"], r1["tokens_cached"]) == ("1000", "100", "200")
    assert r2["created_at"] == f"{D1.isoformat()}T04:30:00.000000Z"
    assert (r2["model"], r2["provider"], r2["api_key"], r2["total_cost_usd"]) == ("lab/beta", "provtwo", "k2",
                                                                                   "0.0300000000")
    assert rows[4]["is_byok"] == "true"
    assert rows[3]["status"] == "500"
    assert rows[3]["latency_ms"] == ""
    assert set(rows[0]) == set(log_export.CSV_HEADER)


def test_monthly_report_totals(client, alice):
    client.force_login(alice)
    reports_page = _text(client.get("/account/reports/"))
    assert D1.strftime("%B %Y") in reports_page
    response = client.get(f"/account/reports/monthly/{D1.year}-{D1.month:02d}/")
    report = response.context["report"]
    in_month = [d for d in (D1, D2) if (d.year, d.month) == (D1.year, D1.month)]
    expected_spend = {D1: 300_000_000, D2: 150_000_000}
    assert report.totals["spend_units"] == sum(expected_spend[d] for d in in_month)
    assert "Usage report" in _text(response)


def test_other_accounts_are_out_of_reach(client, alice, traffic):
    client.force_login(alice)
    assert client.post("/account/switch/", {"account_id": traffic["b"].pk}).status_code == 404
    assert client.post("/account/switch/", {"account_id": "x"}).status_code == 404
    assert "9.99" not in b"".join(client.get("/account/reports/usage.csv").streaming_content).decode()
    stranger = get_user_model().objects.create_user("stranger", password="pw-stranger-1")
    client.force_login(stranger)
    response = client.get("/account/")
    assert response.status_code == 403
    assert "No account yet" in _text(response)


def test_switching_between_own_accounts(client, alice, traffic):
    MembershipFactory(user=alice, account=traffic["b"], role=Membership.Role.VIEWER)
    client.force_login(alice)
    assert client.post("/account/switch/", {"account_id": traffic["b"].pk}).status_code == 302
    assert re.search(r"Spend \$9\.99 ", _text(client.get("/account/")))
    assert client.post("/account/tokens/", {"name": "x"}).status_code == 403  # a viewer of B


def test_owner_invites_a_member_who_signs_up(client, alice, traffic, django_capture_on_commit_callbacks):
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/account/members/", {"email": "Carol@Example.com", "role": "viewer"})
    link = re.search(r"http://testserver(/invitations/\S+/)", mail.outbox[0].body).group(1)
    client.logout()
    response = client.post(link, {"username": "carol", "password1": "Carol-pass-314", "password2": "Carol-pass-314"})
    assert response.status_code == 302
    carol = get_user_model().objects.get(username="carol")
    assert carol.email == "carol@example.com"
    assert Membership.objects.get(user=carol).role == "viewer"
    assert client.post("/account/members/", {"email": "x@example.com", "role": "owner"}).status_code == 403
    assert client.get(link).status_code == 200  # carol's own accepted invitation still opens for her
    client.logout()
    assert client.get(link).status_code == 410


def test_the_last_owner_cannot_be_removed(client, alice):
    client.force_login(alice)
    own = Membership.objects.get(user=alice)
    response = client.post("/account/members/remove/", {"remove": own.pk}, follow=True)
    assert "Not removed: an account keeps at least one owner." in _text(response)
    assert Membership.objects.filter(pk=own.pk).exists()


def test_account_api_token_reads_only_its_account(client, alice, traffic):
    _, secret = account_token_create(account=traffic["a"], name="ci", created_by=alice)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    usage = client.get("/api/v1/account/usage", {"start": D2.isoformat(), "end": D1.isoformat(),
                                                 "group_by": "model"}, **auth).json()
    assert usage["rows"] == [
        {"model": "lab/alpha", "requests": 2, "failures": 1, "tokens_prompt": 4000, "tokens_completion": 500,
         "tokens_reasoning": 100, "tokens_cached": 200, "tokens_total": 4500, "byok_tokens": 0,
         "spend_usd": "0.0150000000", "unpriced_requests": 0},
        {"model": "lab/beta", "requests": 2, "failures": 0, "tokens_prompt": 2100, "tokens_completion": 1100,
         "tokens_reasoning": 0, "tokens_cached": 0, "tokens_total": 3200, "byok_tokens": 200,
         "spend_usd": "0.0300000000", "unpriced_requests": 0}]
    first = client.get("/api/v1/account/generations", {"limit": 2}, **auth).json()
    assert [g["id"] for g in first["results"]] == ["r5", "r3"]
    rest = client.get("/api/v1/account/generations", {"after": first["next"], "limit": 10}, **auth).json()
    assert [g["id"] for g in rest["results"]] == ["r2", "r1", "r4"]
    assert rest["next"] is None
    assert client.get("/api/v1/account/usage").status_code in (401, 403)
    assert client.get("/api/v1/account/usage", HTTP_AUTHORIZATION="Bearer tg_wrong").status_code == 401


def test_pages_show_new_traffic_at_once_though_cached(client, alice, tmp_path, django_capture_on_commit_callbacks):
    client.force_login(alice)
    params = {"period": "custom", "start": D1.isoformat(), "end": D1.isoformat()}
    assert re.search(r"Requests 3 ", _text(client.get("/account/", params)))
    assert re.search(r"Requests 3 ", _text(client.get("/account/", params)))  # from the cache
    with django_capture_on_commit_callbacks(execute=True):
        run_batch(write_jsonl(tmp_path / "more.jsonl", [record(id="late", created_at=_at(D1, 20), account="acct_a")]))
    assert re.search(r"Requests 4 ", _text(client.get("/account/", params)))


def test_usage_version_moves_once_a_window_and_catches_up(traffic, monkeypatch, clock):
    from analytics.usage import cache as usage
    from analytics.usage import tasks

    prewarmed, later = [], []
    monkeypatch.setattr(tasks.usage_prewarm, "delay", prewarmed.append)
    monkeypatch.setattr(tasks.usage_refresh_later, "apply_async", lambda **kw: later.append(kw))
    a, b = traffic["a"].pk, traffic["b"].pk
    for account_id in (a, b):
        usage.usage_watch(account_id=account_id)
    tasks.usage_refresh(account_ids=[a])
    first_a = usage.usage_version(a)
    clock.shift(1)
    tasks.usage_refresh(account_ids=[a, b])
    first_b = usage.usage_version(b)
    clock.shift(1)
    tasks.usage_refresh(account_ids=[a, b])
    assert (usage.usage_version(a), usage.usage_version(b)) == (first_a, first_b)  # moved once each
    assert prewarmed == [[a], [b]]
    assert later == [{"args": [[a]], "countdown": 11}, {"args": [[b]], "countdown": 11}]
    clock.shift(10)  # 11 s after the second refresh, the catch-up run
    tasks.usage_refresh_later.run([a])
    assert usage.usage_version(a) not in (first_a, first_b)
    assert prewarmed[-1] == [a]


def test_prewarm_fills_what_the_overview_reads(client, alice, traffic, django_assert_max_num_queries):
    from analytics.usage import cache, prewarm

    cache.usage_watch(account_id=traffic["a"].pk)  # only watched accounts are prewarmed
    prewarm.usage_prewarm(account_id=traffic["a"].pk)
    client.force_login(alice)
    with django_assert_max_num_queries(4):  # session, user, memberships (+ savepoint): no usage query
        response = client.get("/account/")
    assert re.search(r"Spend \$0\.045 ", _text(response))


def test_repeated_failed_sign_ins_lock_the_username(client, alice, settings):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
        assert "Please enter a correct username and password" in _text(response)
    response = client.post("/accounts/login/", {"username": "Alice", "password": "pw-alice-123"})
    assert response.status_code == 200  # the right password is refused too while locked
    assert "Too many failed sign-ins. Try again in 15 minutes." in _text(response)
    get_user_model().objects.create_user("bob", password="pw-bob-12345")
    assert client.post("/accounts/login/", {"username": "bob", "password": "pw-bob-12345"}).status_code == 302


def test_untrusted_names_are_escaped_on_the_account_pages(client, alice, tmp_path):
    hostile = "<img src=x onerror=alert(1)>"
    run_batch(write_jsonl(tmp_path / "hostile.jsonl", [record(
        id="h1", created_at=_at(D1, 15), account="acct_a", api_key="k1", model="lab/alpha",
        provider_name=hostile, origin="https://evil.example/", app_name=hostile, finish_reason=hostile,
        user=hostile, session_id=hostile, tags=[hostile])]))
    client.force_login(alice)
    for url in ("/account/?period=30d", "/account/activity/?group_by=app&group_by=provider&period=30d",
                "/account/generations/", "/account/generations/h1/"):
        body = client.get(url).content.decode()
        assert hostile not in body, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in body or "\\u003Cimg src=x" in body, url
