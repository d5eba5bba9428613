"""500 parallel reservations of $0.01 against a $1.00 hard budget, through the real endpoint on PostgreSQL:
exactly 100 succeed, and no check ever sees more than $1.00 reserved plus spent."""
import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from billing import budgets
from billing.ledger import ledger_post
from billing.models import Account, ApiKey, Reservation
from core.money import usd_to_units

pytestmark = [pytest.mark.slow]
TOKEN = "gw-concurrency-token"  # noqa: S105  (test only)
REQUESTS, CLIENTS = 500, 32  # clients at once: each server thread holds a connection while it answers


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310  (the test's own server)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_500_parallel_reservations_admit_exactly_100(live_server, settings, transactional_db):
    settings.GATEWAY_TOKEN = TOKEN
    account = Account.objects.create(external_id="acct_par")
    ledger_post(account_id=account.pk, kind="purchase", amount_units=usd_to_units("50"), idempotency_key="par:buy")
    ApiKey.objects.create(account=account, external_id="key_par")
    budgets.budget_create(account=account, scope="account", amount_units=usd_to_units("1.00"), period="day")

    done = threading.Event()
    seen: list[Decimal] = []

    def watch() -> None:  # the budget as checks see it while the reservations race
        while not done.is_set():
            code, body = _post(f"{live_server.url}/api/v1/spend/check", {"api_key": "key_par"})
            assert code == 200
            seen.append(Decimal(body["budgets"][0]["used_usd"]))

    watcher = threading.Thread(target=watch)
    watcher.start()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        answers = list(pool.map(lambda i: _post(f"{live_server.url}/api/v1/spend/reserve", {
            "id": f"gen-par-{i}", "api_key": "key_par", "amount_usd": "0.01"}), range(REQUESTS)))
    done.set()
    watcher.join()

    codes = [code for code, _ in answers]
    assert codes.count(201) == 100
    assert codes.count(402) == 400
    assert Reservation.objects.filter(status="open").count() == 100
    assert seen
    assert max(seen) <= Decimal("1.00")
    _, body = _post(f"{live_server.url}/api/v1/spend/check", {"api_key": "key_par"})
    assert (body["allowed"], body["budgets"][0]["reserved_usd"]) == (False, "1.0000000000")
