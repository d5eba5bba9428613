#!/usr/bin/env python
"""The gateway's spend check and reservations at 200 requests/s, and what budgets cost ingestion.

    .venv/bin/python bench/gateway.py [--database tokengrid_gw] [--events 300000] [--accounts 100000]
                                      [--rate 200] [--seconds 20] [--pairs 3] [--skip-ingest] [--skip-gateway]

On PostgreSQL (a database of its own, created and migrated when missing; the catalog synced):

1. **Ingest ratio.** Generates `--events` router-shaped records over `--accounts` accounts
   (`generate_traffic`, kept under var/bench/), ingests them once to register the accounts, keys and
   apps, then times the same file ingested `--pairs` times without budgets (A) and with budgets on
   10% of the accounts that appear (B), in turns A B A B …, emptying generations, rollups, ledger
   entries, budget spend and reservations before each run (accounts and keys stay). B's budgets
   mix the levels (account per day, a key per month, each end user per week, the busiest tag per
   month), and 2,000 of the file's generation ids are open reservations, so settlement runs too.
   The chunks run in this process (`chunk_ingest`, the worker's function: parse, COPY, rollups,
   debits, budgets, settlement in one transaction); the after-commit fan-out (cache prewarm, alert
   tasks) is left out, the same in A and B. Prints each run's seconds and the median of B/A by pair.
2. **Gateway.** Serves the app with gunicorn (`--workers` processes, 8 threads each) and sends
   `--rate` requests/s for `--seconds` s, open loop (each request leaves at its scheduled time
   whatever the answers before it), half `POST /api/v1/spend/check`, half `POST /api/v1/spend/reserve`
   ($0.0001, a new id each), on keys of budgeted accounts (80%) and of others. Server time is
   gunicorn's own (`%(D)s`: from the request read to the response sent), per endpoint: p50, p99, max;
   the client's round trip too. Then the same requests one at a time in this process (the view's own
   time and its number of SQL statements, without HTTP or queueing).

Prints one JSON line.
"""
import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from production_env import production_env  # noqa: E402  (bench/, the script's own folder)

PY = sys.executable
TOKEN = "bench-gateway-token"  # noqa: S105  (a local benchmark's server)
EMPTIED = ("analytics_generation", "analytics_generationkey", "analytics_endpointhour", "analytics_endpointday",
           "analytics_endpointhistogram", "analytics_appday", "analytics_accountday", "analytics_accounthour",
           "analytics_accountuserday", "analytics_accounttagday", "analytics_reject", "analytics_ingestchunk",
           "analytics_ingestbatch", "billing_ledgerentry", "billing_budgetspend", "billing_reservation")


def psql(sql: str, database: str = "postgres") -> str:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-tAc", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def prepare(options, env: dict) -> Path:
    if not psql(f"SELECT 1 FROM pg_database WHERE datname = '{options.database}'"):
        psql(f"CREATE DATABASE {options.database}")
    for command in (["migrate", "--noinput", "-v", "0"], ["catalog_sync"]):
        subprocess.run([PY, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)
    path = ROOT / "var" / "bench" / f"gateway-{options.events}-{options.accounts}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([PY, "manage.py", "generate_traffic", "--events", str(options.events), "--out", str(path),
                        "--accounts", str(options.accounts), "--seed", "32", "--days", "3"],
                       cwd=ROOT, env=env, check=True, capture_output=True)
    return path


def ingest_file(path: Path) -> float:
    """Ingest a file through the chunk path in this process; return its seconds."""
    from analytics import ingest
    from analytics.models import IngestChunk

    started = time.perf_counter()
    batch = ingest.batch_queue(path=path, source=path.name, fmt="auto")
    ingest.batch_split(batch_id=batch.pk)
    for index in IngestChunk.objects.filter(batch_id=batch.pk).order_by("index").values_list("index", flat=True):
        ingest.chunk_ingest(batch_id=batch.pk, index=index)
    return time.perf_counter() - started


def empty_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(EMPTIED)}")


def budgets_add(path: Path, share: float = 0.1) -> dict:
    """Budgets on `share` of the file's accounts (levels in turn) and 2,000 open reservations of its ids."""
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import Account, ApiKey, Budget, Reservation

    rng = random.Random(32)
    seen = list(Account.objects.order_by("pk").values_list("pk", flat=True))  # all registered by the file
    tags: dict[str, int] = {}
    with path.open("rb") as handle:
        for _, line in zip(range(20_000), handle, strict=False):
            found = json.loads(line).get("tags") or []
            for tag in found.split(",") if isinstance(found, str) else found:
                tags[tag] = tags.get(tag, 0) + 1
    tag = max(tags, key=tags.get) if tags else "prod"
    chosen = sorted(rng.sample(seen, max(1, int(len(seen) * share))))
    first_key = dict(ApiKey.objects.filter(account_id__in=chosen).order_by("account_id", "-pk")
                     .values_list("account_id", "pk"))
    rows = []
    for i, account_id in enumerate(chosen):
        kind = i % 4
        if kind == 1 and account_id in first_key:
            key = ApiKey.objects.get(pk=first_key[account_id])
            rows.append(Budget(account_id=account_id, scope="key", target=key.external_id, api_key=key,
                               amount_units=10**13, period="month"))
        elif kind == 2:
            rows.append(Budget(account_id=account_id, scope="each_user", amount_units=10**12, period="week"))
        elif kind == 3:
            rows.append(Budget(account_id=account_id, scope="tag", target=tag, amount_units=10**12, period="month"))
        else:
            rows.append(Budget(account_id=account_id, scope="account", amount_units=10**13, period="day"))
    Budget.objects.bulk_create(rows, batch_size=5000)
    # Open reservations named by 2,000 of the file's generations (their accounts' first key).
    accounts = dict(Account.objects.values_list("external_id", "pk"))
    keys = dict(ApiKey.objects.values_list("account_id", "pk").order_by("account_id", "-pk"))
    now = timezone.now()
    held = []
    with path.open("rb") as handle:
        for line in handle:
            if len(held) >= 2000:
                break
            if rng.random() < 0.01:
                record = json.loads(line)
                account_id = accounts.get(record.get("account"))
                if account_id in keys:
                    held.append(Reservation(id=record["id"], account_id=account_id, api_key_id=keys[account_id],
                                            amount_units=10**7, created=now, expires_at=now + timedelta(hours=1),
                                            answer_status=201, answer={}))
    Reservation.objects.bulk_create(held, batch_size=2000)
    return {"budgeted_accounts": len(rows), "accounts_with_traffic": len(seen), "reservations": len(held)}


def ingest_ratio(options, path: Path) -> dict:
    from analytics.ingest import chunk

    chunk.chunk_fan_out = lambda **kwargs: None  # the after-commit fan-out, the same in A and B, is left out
    from analytics.models import Generation

    result: dict = {"events": options.events, "accounts": options.accounts}
    if not Generation.objects.exists():
        result["first_ingest_seconds"] = round(ingest_file(path), 2)  # registers accounts, keys, apps
    from billing.models import Budget

    runs = {"none": [], "budgets": []}
    budgeted = None
    for _ in range(options.pairs):
        for label in ("none", "budgets"):
            empty_tables()
            Budget.objects.all().delete()
            if label == "budgets":
                budgeted = budgets_add(path)
                # Budget spend rows count from the generations ingested, from an empty start.
            runs[label].append(round(ingest_file(path), 2))
    ratios = [b / a for a, b in zip(runs["none"], runs["budgets"], strict=True)]
    from billing.models import BudgetSpend, Reservation
    result.update({"seconds_no_budgets": runs["none"], "seconds_10pct_budgeted": runs["budgets"],
                   "ratio_budgeted_over_none_median": round(statistics.median(ratios), 3),
                   "ratios": [round(r, 3) for r in ratios], **(budgeted or {}),
                   "budget_spend_rows": BudgetSpend.objects.count(),
                   "reservations_settled": Reservation.objects.filter(status="settled").count(),
                   "rows_per_second_no_budgets": round(options.events / statistics.median(runs["none"]))})
    return result


def gateway_load(options, env: dict) -> dict:
    from billing.models import Account, ApiKey, Budget

    # Ingestion debited accounts that never bought credits: give each a balance, so that answers
    # depend on the budgets (a benchmark's database; the ledger is not kept in step here).
    Account.objects.update(balance_units=10**13)

    budgeted = set(Budget.objects.values_list("account_id", flat=True))
    keys = list(ApiKey.objects.select_related("account").order_by("?")[:5000])
    on_budgets = [k for k in keys if k.account_id in budgeted] or keys
    others = [k for k in keys if k.account_id not in budgeted] or keys
    log = ROOT / "var" / "bench" / "gateway-access.log"
    log.unlink(missing_ok=True)
    port = options.port
    server = subprocess.Popen(
        [str(Path(PY).parent / "gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(options.workers),
         "-k", "gthread", "--threads", "8", "--access-logfile", str(log),
         "--access-logformat", "%(m)s %(U)s %(s)s %(D)s"],
        cwd=ROOT, env={**env, "GATEWAY_TOKEN": TOKEN}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    local = threading.local()
    client_ms: dict[str, list[float]] = {"check": [], "reserve": []}
    codes: dict[str, int] = {}
    lock = threading.Lock()

    def send(i: int, at: float) -> None:
        delay = at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        key = random.choice(on_budgets if random.random() < 0.8 else others)
        kind = "check" if i % 2 == 0 else "reserve"
        body = {"api_key": key.external_id, "account": key.account.external_id}
        if kind == "reserve":
            body.update(id=f"bench-{os.getpid()}-{i}-{time.time_ns()}", amount_usd="0.0001")
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        started = time.perf_counter()
        try:
            local.conn.request("POST", f"/api/v1/spend/{kind}", json.dumps(body), {
                "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
            response = local.conn.getresponse()
            response.read()
            code = response.status
        except (OSError, http.client.HTTPException):
            local.conn.close()
            del local.conn
            code = 0
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            client_ms[kind].append(elapsed)
            codes[f"{kind} {code}"] = codes.get(f"{kind} {code}", 0) + 1

    try:
        for _ in range(100):  # up, and warm (each worker's first requests import and connect)
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                break
            except OSError:
                time.sleep(0.2)
        with ThreadPoolExecutor(max_workers=32) as pool:
            start = time.perf_counter() + 0.5
            list(pool.map(lambda i: send(i, start + i / 100), range(200)))  # warm-up at 100/s
        log.write_text("")
        total = options.rate * options.seconds
        with ThreadPoolExecutor(max_workers=64) as pool:
            start = time.perf_counter() + 0.5
            list(pool.map(lambda i: send(i, start + i / options.rate), range(total)))
        sent_seconds = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=30)
    server_ms: dict[str, list[float]] = {"check": [], "reserve": []}
    for line in log.read_text().splitlines():
        method, url, _, micros = line.split()
        kind = url.rsplit("/", 1)[-1]
        if kind in server_ms:
            server_ms[kind].append(int(micros) / 1000)
    return {"rate": options.rate, "seconds": options.seconds, "achieved_rate": round(total / sent_seconds, 1),
            "workers": options.workers, "codes": codes, "keys_budgeted": len(on_budgets), "keys_other": len(others),
            **{f"{kind}_server_ms": {"n": len(v), "p50": pct(v, 0.5), "p99": pct(v, 0.99), "max": round(max(v), 2)}
               for kind, v in server_ms.items() if v},
            **{f"{kind}_client_ms": {"p50": pct(v, 0.5), "p99": pct(v, 0.99)} for kind, v in client_ms.items() if v}}


def sequential(options, count: int = 400) -> dict:
    """The same requests one at a time through Django in this process (no HTTP, no queueing): the
    view's own time, what the server time is made of when the machine is not saturated."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from billing.models import ApiKey, Budget

    settings.GATEWAY_TOKEN = TOKEN
    budgeted = set(Budget.objects.values_list("account_id", flat=True))
    keys = [k for k in ApiKey.objects.select_related("account").order_by("?")[:2000] if k.account_id in budgeted]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    times: dict[str, list[float]] = {"check": [], "reserve": []}
    queries: dict[str, int] = {}
    for i in range(count):
        key = keys[i % len(keys)]
        kind = "check" if i % 2 == 0 else "reserve"
        body = {"api_key": key.external_id, "account": key.account.external_id}
        if kind == "reserve":
            body.update(id=f"seq-{os.getpid()}-{i}-{time.time_ns()}", amount_usd="0.0001")
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.post(f"/api/v1/spend/{kind}", body, content_type="application/json")
            times[kind].append((time.perf_counter() - started) * 1000)
        assert response.status_code in (200, 201, 402), response.content
        queries[kind] = len(captured)
    return {f"{kind}_ms": {"p50": pct(v, 0.5), "p99": pct(v, 0.99)} for kind, v in times.items()} | {
        "queries": queries, "requests": count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="tokengrid_gw")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--port", type=int, default=8932)
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-gateway", action="store_true")
    options = parser.parse_args()
    env = {**os.environ, **production_env(options.database), "CELERY_BROKER_URL": "memory://"}
    path = prepare(options, env)
    os.environ.update(env)
    import django

    django.setup()
    from analytics.models import Generation

    result: dict = {}
    if not options.skip_ingest:
        result["ingest"] = ingest_ratio(options, path)
    elif not Generation.objects.exists():
        result["first_ingest_seconds"] = round(ingest_file(path), 2)
    result["generations"] = Generation.objects.count()
    if not options.skip_gateway:
        result["gateway"] = gateway_load(options, env)
        result["sequential_in_process"] = sequential(options)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
