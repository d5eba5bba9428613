"""Budgets and the gateway's check and reservations: hand-computed use, binding limits, holds, settlement."""
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics import ingest
from billing import budgets
from billing.models import Account, ApiKey, Budget, BudgetSpend, Reservation
from core.money import usd_to_units
from tests.analytics.conftest import record, run_batch, write_jsonl
from tests.conftest import NOW

from .conftest import buy, iso

pytestmark = pytest.mark.django_db
GATEWAY_TOKEN = "gw-test-token"  # noqa: S105  (test only)
_files = count()


@pytest.fixture(autouse=True)
def _gateway_token(settings):
    settings.GATEWAY_TOKEN = GATEWAY_TOKEN
    settings.SPEND_RESERVATION_SECONDS = 600


def gw(client, path: str, body: dict | None = None, method: str = "post"):
    call = getattr(client, method)
    return call(f"/api/v1/spend/{path}", body, content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {GATEWAY_TOKEN}")


def spend(tmp_path, *rows: dict):
    """Ingest generations (dicts of record fields) a minute before now."""
    ingest.pricebook_reset()
    when = iso(datetime.now(tz=UTC) - timedelta(minutes=1))
    records = [record(**{"id": f"g{next(_files)}", "created_at": when, "account": "acct_a", "api_key": "key_1",
                         **row}) for row in rows]
    run_batch(write_jsonl(tmp_path / f"f{next(_files)}.jsonl", records))


def budget(account: Account, **fields) -> Budget:
    amount = fields.pop("amount", "1")
    return budgets.budget_create(account=account, amount_units=usd_to_units(amount),
                                 **{"scope": "account", "period": "day", **fields})


def check(client, **body) -> dict:
    response = gw(client, "check", {"api_key": "key_1", **body})
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def funded(acct_a):
    buy(acct_a, "10")
    ApiKey.objects.create(account=acct_a, external_id="key_1")
    return acct_a


def test_a_hard_budget_refuses_after_its_crossing(client, funded, tmp_path, clock):
    budget(funded, amount="1")
    spend(tmp_path, {"total_cost": 0.6})
    body = check(client)
    assert (body["allowed"], body["remaining_usd"]) == (True, "0.4000000000")
    assert body["binding"]["scope"] == "account"
    spend(tmp_path, {"total_cost": 0.5}, {"total_cost": 3, "is_byok": True})  # BYOK spends no budget
    body = check(client)
    assert (body["allowed"], body["remaining_usd"]) == (False, "0.0000000000")
    [use] = body["budgets"]
    assert (use["spent_usd"], use["used_usd"], use["over_usd"]) == ("1.1000000000", "1.1000000000", "0.1000000000")


def test_a_soft_budget_still_allows(client, funded, tmp_path, clock):
    budget(funded, amount="1", mode="soft")
    spend(tmp_path, {"total_cost": 1.5})
    body = check(client)
    # Balance $10 - $1.50 spent; the soft budget is listed, over, and does not bind.
    assert (body["allowed"], body["remaining_usd"], body["binding"]["scope"]) == (True, "8.5000000000", "balance")
    assert body["budgets"][0]["over_usd"] == "0.5000000000"


def test_the_binding_limit_is_the_smallest(client, funded, tmp_path, clock):
    budget(funded, amount="5", period="month")
    budget(funded, scope="key", target="key_1", amount="2", period="day")
    tag = budget(funded, scope="tag", target="prod", amount="1.25", period="week")
    budget(funded, scope="tag", target="prod", amount="0.5", period="day", mode="soft")
    budget(funded, scope="user", target="ann", amount="3", period="none")
    spend(tmp_path, {"total_cost": 0.25, "tags": ["prod", "eu"], "user": "ann"})
    body = check(client, user="ann", tags=["prod"])
    assert body["binding"] == {"scope": "tag", "id": tag.pk, "target": "prod", "period": "week",
                               "resets_at": body["binding"]["resets_at"], "remaining_usd": "1.0000000000"}
    assert body["remaining_usd"] == "1.0000000000"
    assert len(body["budgets"]) == 5
    # Without the tag, the key's $2 - $0.25 binds.
    assert check(client, user="ann")["binding"]["scope"] == "key"
    assert check(client, user="ann")["remaining_usd"] == "1.7500000000"


def test_a_known_key_without_budget_is_allowed_up_to_the_balance_and_an_unknown_key_is_404(client, funded):
    body = check(client)
    assert (body["allowed"], body["remaining_usd"], body["budgets"]) == (True, "10.0000000000", [])
    assert gw(client, "check", {"api_key": "nope"}).status_code == 404


def test_each_user_caps_every_end_user_apart(client, funded, tmp_path, clock):
    budget(funded, scope="each_user", amount="1")
    spend(tmp_path, {"total_cost": 0.9, "user": "u1"})
    assert check(client, user="u1")["remaining_usd"] == "0.1000000000"
    assert check(client, user="u2")["remaining_usd"] == "1.0000000000"
    assert check(client)["budgets"] == []  # a request without an end user has no user cap


def test_a_reservation_is_idempotent_all_or_nothing_and_released(client, funded, clock):
    budget(funded, amount="1")
    key = {"api_key": "key_1"}
    first = gw(client, "reserve", {**key, "id": "gen-r1", "amount_usd": "0.7"})
    assert first.status_code == 201
    assert first.json()["expires_at"] == iso(NOW + timedelta(seconds=600))
    assert first.json()["remaining_usd"] == "0.3000000000"
    again = gw(client, "reserve", {**key, "id": "gen-r1", "amount_usd": "0.7"})
    assert (again.status_code, again.json()) == (201, first.json())
    assert gw(client, "reserve", {**key, "id": "gen-r1", "amount_usd": "0.5"}).status_code == 409
    refused = gw(client, "reserve", {**key, "id": "gen-r2", "amount_usd": "0.31"})
    assert refused.status_code == 402
    assert refused.json()["binding"]["scope"] == "account"
    assert refused.json()["remaining_usd"] == "0.3000000000"
    assert gw(client, "reserve", {**key, "id": "gen-r2", "amount_usd": "0.31"}).json() == refused.json()
    body = check(client)
    assert (body["budgets"][0]["reserved_usd"], body["remaining_usd"]) == ("0.7000000000", "0.3000000000")
    assert body["balance_reserved_usd"] == "0.7000000000"
    released = gw(client, "reserve/gen-r1", method="delete")
    assert released.json()["status"] == "released"
    assert check(client)["remaining_usd"] == "1.0000000000"
    assert gw(client, "reserve/unknown", method="delete").status_code == 404


def test_a_reservation_holds_against_the_balance_without_budgets(client, acct_a):
    buy(acct_a, "5")  # $5 balance
    ApiKey.objects.create(account=acct_a, external_id="key_1")
    assert gw(client, "reserve", {"api_key": "key_1", "id": "a", "amount_usd": "4"}).status_code == 201
    refused = gw(client, "reserve", {"api_key": "key_1", "id": "b", "amount_usd": "1.01"})
    assert (refused.status_code, refused.json()["binding"]["scope"]) == (402, "balance")
    assert refused.json()["remaining_usd"] == "1.0000000000"


def test_a_reservation_expires_by_the_clock(client, funded, clock):
    budget(funded, amount="1")
    assert gw(client, "reserve", {"api_key": "key_1", "id": "gen-x", "amount_usd": "1"}).status_code == 201
    assert check(client)["allowed"] is False
    clock.shift(599)
    assert check(client)["allowed"] is False
    clock.shift(1)  # 600 s: no job ran, the hold is gone
    assert check(client)["remaining_usd"] == "1.0000000000"
    assert gw(client, "reserve", {"api_key": "key_1", "id": "gen-y", "amount_usd": "1"}).status_code == 201


@pytest.mark.parametrize(("held", "cost", "over"), [("0.1", 0.25, "0.1500000000"), ("0.5", 0.2, "0")])
def test_settlement_replaces_the_hold_with_the_real_cost(client, funded, tmp_path, held, cost, over):
    budget(funded, amount="1")
    assert gw(client, "reserve", {"api_key": "key_1", "id": "gen-s", "amount_usd": held}).status_code == 201
    spend(tmp_path, {"id": "gen-s", "total_cost": cost})
    reservation = Reservation.objects.get(pk="gen-s")
    assert (reservation.status, reservation.cost_units) == ("settled", usd_to_units(str(cost)))
    assert reservation.over_units == usd_to_units(over)
    [use] = check(client)["budgets"]
    assert (use["spent_usd"], use["reserved_usd"]) == (f"{usd_to_units(str(cost)) / 10**10:.10f}", "0.0000000000")


def test_spend_past_the_amount_is_recorded_not_clamped(client, funded, tmp_path):
    budget(funded, amount="1")
    assert gw(client, "reserve", {"api_key": "key_1", "id": "gen-o", "amount_usd": "1"}).status_code == 201
    spend(tmp_path, {"id": "gen-o", "total_cost": 1.75})
    [use] = check(client)["budgets"]
    assert (use["used_usd"], use["remaining_usd"], use["over_usd"]) == ("1.7500000000", "0.0000000000",
                                                                         "0.7500000000")
    assert BudgetSpend.objects.get().spent_units == usd_to_units("1.75")


def test_a_new_budget_counts_the_spend_of_its_period_so_far(client, funded, tmp_path, clock):
    spend(tmp_path, {"total_cost": 0.4}, {"total_cost": 0.1, "api_key": "key_2"})
    budget(funded, scope="key", target="key_1", amount="1")
    assert check(client)["budgets"][0]["spent_usd"] == "0.4000000000"


def test_ingestion_adds_to_budgets_in_a_constant_number_of_statements(funded, tmp_path):
    """A chunk of 3 budgeted accounts and one of 30 run the same statements; no budgets: fewer."""
    def chunk_queries(accounts: int) -> int:
        names = [f"acct_q{accounts}_{i}" for i in range(accounts)]
        for name in names:
            budget(Account.objects.create(external_id=name), scope="each_user", amount="1")
        rows = [record(id=f"q{accounts}-{i}-{j}", created_at=iso(NOW - timedelta(minutes=1)), account=name,
                       api_key=f"k{j}", user=f"u{j}", total_cost=0.01) for i, name in enumerate(names) for j in range(3)]
        path = write_jsonl(tmp_path / f"q{accounts}.jsonl", rows)
        with CaptureQueriesContext(connection) as queries:
            run_batch(path)
        return len([q for q in queries if "billing_budget" in q["sql"] or "billing_reservation" in q["sql"]])

    assert chunk_queries(3) == chunk_queries(30) == 3  # budgets found, their rows, one upsert (+ reservations)
    assert BudgetSpend.objects.filter(budget__account__external_id="acct_q30_7").count() == 3


def test_a_chunk_without_budgeted_accounts_reads_budgets_once(funded, tmp_path):
    rows = [record(id=f"n{i}", created_at=iso(NOW - timedelta(minutes=1)), account=f"acct_n{i}", total_cost=0.01)
            for i in range(20)]
    with CaptureQueriesContext(connection) as queries:
        run_batch(write_jsonl(tmp_path / "n.jsonl", rows))
    touched = [q["sql"] for q in queries if "billing_budget" in q["sql"] or "billing_reservation" in q["sql"]]
    assert len(touched) == 2  # which accounts have budgets; which have open reservations: none


def test_a_budget_week_starts_on_the_accounts_weekday(client, funded):
    funded.time_zone, funded.week_start = "America/New_York", 6
    funded.save()
    budget(funded, period="week")
    [use] = check(client)["budgets"]
    start = datetime.fromisoformat(use["period_start"].replace("Z", "+00:00"))
    from zoneinfo import ZoneInfo
    local = start.astimezone(ZoneInfo("America/New_York"))
    assert (local.weekday(), local.hour, local.minute) == (6, 0, 0)
    assert (datetime.fromisoformat(use["resets_at"].replace("Z", "+00:00")) - start) <= timedelta(days=7, hours=1)


def test_the_generation_log_shows_the_reservation_a_generation_settled(client, funded, tmp_path, owner):
    assert gw(client, "reserve", {"api_key": "key_1", "id": "gen-log", "amount_usd": "0.1"}).status_code == 201
    spend(tmp_path, {"id": "gen-log", "total_cost": 0.25})
    client.force_login(owner)
    detail = client.get("/account/generations/gen-log/").content.decode()
    assert "settled reservation <code>gen-log</code>: $0.10 held, $0.25 real cost" in detail
    assert "over the hold by $0.15" in detail
    assert "held $0.10" in client.get("/account/generations/").content.decode()


def test_old_reservations_are_pruned_and_recent_ones_kept(funded, settings):
    settings.SPEND_RESERVATION_RETENTION_DAYS = 35
    key = ApiKey.objects.get(external_id="key_1")
    budgets.spend_reserve(reservation_id="old", key=key, amount_units=1, now=NOW - timedelta(days=35, seconds=1))
    budgets.spend_reserve(reservation_id="new", key=key, amount_units=1, now=NOW - timedelta(days=34))
    assert budgets.reservations_prune(now=NOW) == 1
    assert list(Reservation.objects.values_list("pk", flat=True)) == ["new"]


def test_ingestion_counts_a_new_york_day_from_its_local_midnight(client, funded, tmp_path, clock):
    """NOW is 12:00 UTC, 07:00 in New York in winter: the local day began at 05:00 UTC (04:00 in summer)."""
    from zoneinfo import ZoneInfo

    from billing.periods import local_midnight

    funded.time_zone = "America/New_York"
    funded.save()
    budget(funded, amount="1", period="day")
    new_york = ZoneInfo("America/New_York")
    midnight = local_midnight(NOW.astimezone(new_york).date(), new_york)
    spend(tmp_path, {"created_at": iso(midnight - timedelta(minutes=30)), "total_cost": 0.4},  # 23:30 yesterday
          {"created_at": iso(midnight + timedelta(minutes=30)), "total_cost": 0.1})  # 00:30 today
    [use] = check(client)["budgets"]
    assert (use["spent_usd"], use["period_start"], use["resets_at"]) == (
        "0.1000000000", iso(midnight), iso(midnight + timedelta(days=1)))
