#!/usr/bin/env python
"""Mixed public and account traffic against gunicorn while a file is being ingested, on PostgreSQL.

    .venv/bin/python bench/load.py [--template tokengrid_1m] [--events 200000] [--seconds 60] [--connections 50]

Runs under `flock /tmp/bench.lock` (re-executes itself there), so it never overlaps another
benchmark on this shared machine. Copies the template database (1M generations, filled by
ingestion) to `tokengrid_load` and migrates the copy, so the template is never touched; generates
`--events` new records with `generate_traffic` (another seed: new ids and accounts); starts
gunicorn (DEBUG off) and signs in, through the login form, a user made a member of the busiest
account; then queues the file for a Celery worker and at once runs wrk (Debian's) for `--seconds`
at `--connections` connections, its Lua script spreading requests over public pages (rankings,
the busiest model's page, a top app's page, providers) and the account's pages (overview,
activity, generations) with the session cookie. Prints one JSON line: requests, p50 and p99 in
ms, responses that were not 2xx/3xx, socket errors (both must be 0; the exit status is 1
otherwise) and the ingest rate while the load ran.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = "postgres://postgres@127.0.0.1:5432"
PY = sys.executable
BIN = Path(PY).parent
LOCK = "/tmp/bench.lock"
USERNAME, PASSWORD = "loadbench", "loadbench-Pa55word!"

WRK_SCRIPT = """
local paths = {%(paths)s}
local cookie = "%(cookie)s"
local i = 0
function init(args)
  i = math.random(#paths)  -- threads start at different pages
end
function request()
  i = i %% #paths + 1
  local page = paths[i]
  if page[2] then
    return wrk.format("GET", page[1], {["Cookie"] = cookie})
  end
  return wrk.format("GET", page[1])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_s": %%.2f, "p50_ms": %%.1f, "p90_ms": %%.1f, "p99_ms": %%.1f, "max_ms": %%.1f, ' ..
    '"non_2xx_3xx": %%d, "socket_errors": {"connect": %%d, "read": %%d, "write": %%d, "timeout": %%d}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def psql(sql: str, database: str = "postgres") -> str:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-tAc", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def database_copy(template: str, target: str) -> None:
    """CREATE DATABASE target TEMPLATE template; the template must have no sessions, so wait for them."""
    psql(f"DROP DATABASE IF EXISTS {target}")
    for _ in range(120):
        try:
            psql(f"CREATE DATABASE {target} TEMPLATE {template}")
            return
        except subprocess.CalledProcessError as error:
            if "being accessed by other users" not in error.stderr:
                raise
            time.sleep(1)
    raise SystemExit(f"{template} stayed in use for 2 minutes")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_http(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("gunicorn did not answer /healthz")


def cookies_of(response: http.client.HTTPResponse) -> dict[str, str]:
    # By hand: the cookies are Secure (production settings) and a cookie jar would not send them over http.
    found = {}
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, rest = header.partition("=")
        found[name.strip()] = rest.split(";", 1)[0]
    return found


def sign_in(port: int) -> str:
    """Sign in through the login form as a browser would; return the session cookie header."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/accounts/login/")
    page = conn.getresponse()
    jar = cookies_of(page)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.read()).group(1).decode()
    body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": USERNAME, "password": PASSWORD})
    conn.request("POST", "/accounts/login/", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={jar['csrftoken']}",
        "Origin": f"http://127.0.0.1:{port}", "Referer": f"http://127.0.0.1:{port}/accounts/login/"})
    answer = conn.getresponse()
    answer.read()
    session = cookies_of(answer).get("sessionid")
    if answer.status != 302 or not session:
        raise SystemExit(f"sign-in failed: {answer.status}")
    return f"sessionid={session}"


def prepare(env: dict) -> dict:
    """Make the load user a member of the busiest account; pick the pages to request."""
    code = f"""
import json
import django
django.setup()
from django.contrib.auth import get_user_model
from django.db.models import Sum
from analytics.models import AccountDay, AppDay, EndpointDay
from billing.models import Account, Membership
from marketplace.models import App, Model, Provider

busiest = AccountDay.objects.values("account_id").annotate(n=Sum("requests")).order_by("-n").first()
account = Account.objects.get(pk=busiest["account_id"])
user, _ = get_user_model().objects.get_or_create(username={USERNAME!r})
user.set_password({PASSWORD!r})
user.save()
Membership.objects.update_or_create(user=user, account=account, defaults={{"role": Membership.Role.MEMBER}})
model = Model.objects.select_related("author").get(
    pk=EndpointDay.objects.values("model_id").annotate(n=Sum("requests")).order_by("-n")[0]["model_id"])
provider = Provider.objects.get(
    pk=EndpointDay.objects.values("provider_id").annotate(n=Sum("requests")).order_by("-n")[0]["provider_id"])
app = App.objects.get(pk=AppDay.objects.values("app_id").annotate(n=Sum("requests")).order_by("-n")[0]["app_id"])
print(json.dumps({{"account": account.external_id, "account_requests": busiest["n"],
                   "model": model.get_absolute_url(), "provider": provider.get_absolute_url(),
                   "app": app.get_absolute_url()}}))
"""
    out = subprocess.run([PY, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--template", default="tokengrid_1m", help="database filled by ingestion, copied, not touched")
    parser.add_argument("--database", default="tokengrid_load")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--cache", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--no-ingest", action="store_true", help="the same load with no ingestion, for comparison")
    parser.add_argument("--chunk-lines", type=int, default=10_000,
                        help="lines per ingest task (fewer than the default 50k: progress is counted per chunk)")
    options = parser.parse_args()

    if os.environ.get("TOKENGRID_BENCH_LOCKED") != "1":  # never two benchmarks at once on this machine
        os.execvpe("flock", ["flock", LOCK, PY, *sys.argv], {**os.environ, "TOKENGRID_BENCH_LOCKED": "1"})
    for tool in ("wrk", "psql"):
        if not shutil.which(tool):
            raise SystemExit(f"needs {tool}")

    env = {**os.environ, "DATABASE_URL": f"{PG}/{options.database}", "CELERY_BROKER_URL": options.broker,
           "REDIS_URL": options.cache, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "0",
           "DJANGO_SECRET_KEY": "load-bench-" + "x" * 50, "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
           "DJANGO_SECURE_SSL_REDIRECT": "0", "INGEST_CHUNK_LINES": str(options.chunk_lines)}
    started = time.perf_counter()
    database_copy(options.template, options.database)
    subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run(["redis-cli", "-u", options.cache, "FLUSHDB"], check=True, capture_output=True)
    subprocess.run([str(BIN / "celery"), "-A", "config", "purge", "-f"], cwd=ROOT, env=env, capture_output=True)
    folder = ROOT / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"load-{options.events}.jsonl"
    if not path.exists():
        subprocess.run([PY, "manage.py", "generate_traffic", "--events", str(options.events), "--out", str(path),
                        "--seed", "8"], cwd=ROOT, env=env, check=True, capture_output=True)
    targets = prepare(env)
    print(f"prepared in {time.perf_counter() - started:.0f} s: {targets}", file=sys.stderr)

    load_before = [round(x, 2) for x in os.getloadavg()]
    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="tokengrid-load-"))
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "config.wsgi", "-w", str(options.gunicorn_workers), "-b", f"127.0.0.1:{port}",
         "--timeout", "60", "--log-level", "warning", "--error-logfile", str(logs / "gunicorn.log")],
        cwd=ROOT, env=env)
    worker = None
    try:
        wait_http(port)
        cookie = sign_in(port)
        pages = [("/rankings/?window=week", False), ("/", False), (targets["model"], False),
                 ("/rankings/?window=month&metric=spend", False), (targets["app"], False),
                 (targets["provider"], False), ("/account/", True), ("/account/activity/", True),
                 ("/account/generations/", True), ("/account/?period=7d", True)]
        for url, signed_in in pages:  # every page answers before the run (and warms its cache once)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("GET", url, headers={"Cookie": cookie} if signed_in else {})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"{url} answered {response.status}")
        script = logs / "mix.lua"
        script.write_text(WRK_SCRIPT % {
            "paths": ", ".join(f'{{"{url}", {"true" if signed_in else "false"}}}' for url, signed_in in pages),
            "cookie": cookie})

        if not options.no_ingest:
            worker = subprocess.Popen(
                [str(BIN / "celery"), "-A", "config", "worker", "-P", "solo", "-Q", "ingest,rollups,billing,default",
                 "-n", "load@%h", "--without-gossip", "--without-mingle", "--loglevel=WARNING",
                 "--logfile", str(logs / "worker.log")], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
            subprocess.run([PY, "manage.py", "ingest", str(path)], cwd=ROOT, env=env, check=True,
                           capture_output=True)
        queued = time.monotonic()
        run = subprocess.run(["wrk", "-t2", f"-c{options.connections}", f"-d{options.seconds}s", "--timeout", "10s",
                              "-s", str(script), f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                             check=True)
        load = json.loads(run.stdout.strip().splitlines()[-1])
        load_after = [round(x, 2) for x in os.getloadavg()]
        # Both stamps from the same clock (Django's): a finished batch's own time, else queued until now.
        batch = psql("SELECT status, accepted, duplicates, rejected, chunks_done, chunks_total, "
                     "extract(epoch FROM finished_at - created_at) FROM analytics_ingestbatch "
                     "ORDER BY id DESC LIMIT 1", options.database).split("|")
        batch[-1] = batch[-1] or str(time.monotonic() - queued)
    finally:
        server.terminate()
        if worker:
            worker.terminate()
        server.wait(timeout=30)
        if worker:
            worker.wait(timeout=60)
    errors = sum(load["socket_errors"].values())
    ingest = None
    if not options.no_ingest:
        status, accepted, duplicates, rejected, done, total, seconds = batch
        ingest = {"file": path.name, "status_at_end_of_load": status, "accepted": int(accepted),
                  "duplicates": int(duplicates), "rejected": int(rejected), "chunks": f"{done}/{total}",
                  "seconds": round(float(seconds), 1),
                  "rows_per_s": round((int(accepted) + int(duplicates)) / float(seconds))}
    result = {
        "database": options.database, "template": options.template, "gunicorn_workers": options.gunicorn_workers,
        "connections": options.connections, "pages": [url for url, _ in pages], **load,
        "load_average_1_5_15_min": {"before": load_before, "after": load_after},  # the machine is shared
        "requests_per_s": round(load["requests"] / load["duration_s"], 1),
        "ingest": ingest,
    }
    print(json.dumps(result))
    if load["non_2xx_3xx"] or errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
