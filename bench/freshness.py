#!/usr/bin/env python
"""Freshness, measured: how long until a request handed over by a router shows on each page.

    .venv/bin/python bench/freshness.py [--accounts 100000] [--capacity R | --capacity-events 500000]
        [--capacity-share 0.8 | --rate R] [--duration 240] [--interval 1] [--sample-every 1] [--poll 0.25]
        [--timeout 180] [--keep]

(Longer than 400 lines on purpose: one benchmark whose stages, the stream's plan, the services it
starts, the feeder and the pollers, share one run's state; apart, each would need the others' setup.)

The stream: `generate_traffic --live` at `--rate` requests/s over `--duration` seconds, router-shaped
(`--accounts`, 100,000 by default), written ahead with its timestamps in the near future and then
handed over in real time: every `--interval` seconds the records of the interval that just closed
are POSTed as one gzipped NDJSON body to the ingest API (`POST /api/v1/ingest?wait=0`, the gateway's
bearer token; plain, a 30-s body at 7,000/s would pass INGEST_MAX_BODY_BYTES). That is the path a router takes (analytics/ingest/api.py: "the gateway sends NDJSON"); the
`ingest` command reads files on a host that can see them, a backfill's path. Each body becomes one
batch of one chunk, split and applied by 2 Celery worker processes (`-P solo`, the queues
bench/ingest.py gives them); gunicorn (DEBUG off) serves the API and the pages. With
`INGEST_ROLLUPS=fold` in the environment and a `rollup_writer` command in the code, that process
runs beside the workers for the whole run (and for the capacity measurement).

The rate: `--rate`, else `--capacity-share` (0.8) of `--capacity`, else of the capacity measured
first, as bench/ingest.py measures it: a live file of `--capacity-events` records at the same
accounts, queued as one batch (`manage.py ingest FILE`) for the same workers on emptied tables,
accepted records over the batch's own time (created to finished). The database is emptied again
(accounts too) and the workers restarted before the stream starts.

The samples: one request per `--sample-every` seconds of traffic, drawn at random (seeded) among those
with tokens whose model is among the `RANKED_MODELS` busiest so far (so it is on the public leaderboard
of 100 models); its handover is its body's.
The accounts of the samples are registered up front, each with a user who is a viewer of it and a
signed-in session. From the moment its body is handed over, each sample is polled every `--poll`
seconds (at most `--pollers` requests at a time, so a slow page stretches the interval) until it
shows, or `--timeout` seconds (counted as missed):
- overview (`/account/`, last 30 days): the Requests figure reaches the account's request count up
  to the end of the sample's chunk (its body cut as the workers cut it, `--chunk-lines`);
- explorer (`/account/activity/`, its default view): the Requests of the Total row, the same;
- generation log (`/account/generations/?id=<id>`): the sample's row (its link) is on the page;
- rankings (`/rankings/`, anonymous, the week by tokens: cached and rate-limited as visitors see it):
  the sample's model's row reaches the model's tokens (prompt + completion) up to the end of its chunk.
(A count reached can include a later chunk applied first, by the other worker: a sample can show at
most one chunk's processing early. The log's is exact.)

Prints per page p50, p99 and max from the handover (missed samples count as never: a percentile that
falls on one prints as `>timeout`), the achieved ingest rate, the samples, the batches' own lag and
a check that the thresholds are what the database holds, and the worker seconds per task (from the
workers' INFO logs). One JSON line on stdout, the table on stderr. The stream files go to var/bench/
(removed unless `--keep`), the processes' logs to var/bench/freshness-logs-<time>/ (kept); the
database is left for a look.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import html
import http.client
import itertools
import json
import math
import os
import queue
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest as ingest_bench  # noqa: E402  (bench/ingest.py: its tables, psql and workers' queues)

ROOT = Path(__file__).resolve().parent.parent
PG = ingest_bench.PG
PY = sys.executable
BIN = Path(PY).parent
PAGES = ("overview", "explorer", "log", "rankings")
RANKED_MODELS = 30  # a sample's model is among the busiest so far: on the leaderboard of 100
LOG_PATH = "/account/generations/"
ID_SAFE = "-_~!$&'()*+,;=:@"  # as the log's URL converter quotes an id (analytics/usage/urls.py)


# ---- pure helpers (tests/test_bench_freshness.py) ----

def exact_int(fragment: str) -> int | None:
    """A count as a page prints it: `987`, `12,345`, or the `compact` filter's `<span class="exact"
    title="1,234,567">1.2M</span>` (the exact value is in the title); None when there is no number."""
    titled = re.search(r'title="([\d,]+)"', fragment)
    text = titled.group(1) if titled else re.sub(r"<[^>]*>", "", fragment)
    text = text.replace(",", "").strip()
    return int(text) if text.isdigit() else None


def overview_requests(page: str) -> int | None:
    """The overview's Requests figure (the `requests` stat); 0 for an account with none in the period."""
    found = re.search(r'data-stat="requests">\s*<div class="label">[^<]*</div>\s*<div class="value">(.*?)</div>',
                      page, re.S)
    if found:
        return exact_int(found.group(1))
    return 0 if "No requests in this period." in page else None


def explorer_requests(page: str) -> int | None:
    """The explorer's Requests of its first row (the Total of the default view); 0 when it has none."""
    table = re.search(r'<table class="activity-groups">(.*?)</table>', page, re.S)
    if not table:
        return 0 if "No requests in this period." in page else None
    head = re.search(r"<thead>(.*?)</thead>", table.group(1), re.S)
    body = re.search(r"<tbody>\s*<tr[^>]*>(.*?)</tr>", table.group(1), re.S)
    if not head or not body:
        return None
    headers = [re.sub(r"<[^>]*>", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", head.group(1), re.S)]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", body.group(1), re.S)
    if "Requests" not in headers or len(cells) != len(headers):
        return None
    return exact_int(cells[headers.index("Requests")])


def log_shows(page: str, generation_id: str) -> bool:
    """The generation log lists the generation: its row links to it (the search box echoes any id)."""
    return f'href="{LOG_PATH}{quote(generation_id, safe=ID_SAFE)}/"' in page


def ranking_tokens(page: str) -> dict[str, int]:
    """The public leaderboard's models (their page's path) and the value shown, from the top models
    table and its "show more" (the providers' and apps' tables come after `Top providers`)."""
    models = page.split("<h2>Top providers", 1)[0]
    rows = re.findall(r'<tr><td class="num">\d+</td><td><a href="(/models/[^"]+)">.*?</td><td class="num">(.*?)</td>',
                      models, re.S)
    shown: dict[str, int] = {}
    for href, cell in rows:
        value = exact_int(cell)
        if value is not None:
            shown.setdefault(html.unescape(href), value)
    return shown


TASK_DONE = re.compile(r"Task ([\w.]+)\[[^\]]+\] (?:succeeded|retry|raised)[^\n]*? in ([\d.]+)s")


def task_seconds(log: str) -> dict[str, tuple[int, float]]:
    """Per task name, (runs, seconds) from a Celery worker's INFO log ("Task … succeeded in 0.12s: …")."""
    spent: dict[str, tuple[int, float]] = {}
    for name, seconds in TASK_DONE.findall(log):
        runs, total = spent.get(name, (0, 0.0))
        spent[name] = (runs + 1, total + float(seconds))
    return spent


def percentile(values: list[float | None], q: float) -> float | None:
    """The nearest-rank percentile q (0-100) of `values`, where None (missed) ranks above everything;
    None when it falls on a miss (or there are no values)."""
    if not values:
        return None
    ordered = sorted(values, key=lambda v: (v is None, v or 0.0))
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Sample:
    index: int  # the body it is in
    id: str
    account: str
    model: str
    account_requests: int = 0  # the account's requests up to the end of its chunk
    model_tokens: int = 0  # its model's tokens (prompt + completion), the same
    handed_at: float = 0.0  # wall clock, when its body's POST began
    shown: dict = field(default_factory=dict)  # page -> seconds after the handover; None: missed
    chunk: int = 0  # its chunk within the body (INGEST_CHUNK_LINES lines each)


@dataclass
class Plan:
    """A live file cut into bodies of `interval` seconds of traffic, and a sample every `sample_every`."""
    start_ms: int  # the first body's start
    interval_ms: int
    bodies: list[tuple[int, int, int]]  # (byte start, byte end, records) per body
    samples: list[Sample]
    account_totals: dict[str, int]  # the whole file's, for the check against the database
    model_totals: dict[str, int]


def record_fields(line: bytes) -> tuple[int, str, str, str, int, bool]:
    """(created_at in ms, id, account, model, tokens, status 200) of an openrouter line."""
    record = orjson.loads(line)
    record = record.get("data", record)
    stamp = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
    tokens = (record.get("tokens_prompt") or 0) + (record.get("tokens_completion") or 0)
    return (int(stamp.timestamp() * 1000), record["id"], record["account"], record["model"], tokens,
            record.get("status", 200) == 200)


def plan_stream(read: Callable[[], Iterable[bytes]], *, start_ms: int, interval_ms: int, sample_ms: int | None = None,
                chunk_lines: int = 50_000, seed: int = 1) -> Plan:
    """Cut a time-ordered stream (`read()` gives its lines, as bytes with their newline, each time it is
    called) into bodies of `interval_ms` from `start_ms`, and draw one sample per `sample_ms` (default: per
    body) at random among the requests with tokens whose model is among the RANKED_MODELS busiest so far.

    A body is ingested as chunks of `chunk_lines` lines; a sample's thresholds are the running request
    count of its account and tokens of its model at the end of its chunk (a second pass), so that it
    shows once its chunk and everything before it is in.
    """
    sample_ms = sample_ms or interval_ms
    rng = random.Random(seed)
    bodies: list[tuple[int, int, int]] = []
    samples: list[Sample] = []
    tokens: dict[str, int] = {}
    ranked: set[str] = set()
    offset, body_start, count, body, slot, seen, chosen = 0, 0, 0, 0, 0, 0, None

    def slot_close() -> None:
        nonlocal ranked, seen, chosen
        if chosen is not None:
            samples.append(chosen)
        ranked = set(sorted(tokens, key=lambda m: -tokens[m])[:RANKED_MODELS])
        seen, chosen = 0, None

    for line in read():  # the bodies, the samples
        if not line.strip():
            offset += len(line)
            continue
        ms, generation_id, account, model, used, ok = record_fields(line)
        ms = max(ms, start_ms)
        while (ms - start_ms) // sample_ms > slot:
            slot_close()
            slot += 1
        while (ms - start_ms) // interval_ms > body:  # the interval just closed (an empty one too)
            bodies.append((body_start, offset, count))
            body_start, count, body = offset, 0, body + 1
        tokens[model] = tokens.get(model, 0) + used
        if ok and used > 0 and (not ranked or model in ranked):
            seen += 1
            if rng.random() * seen < 1:
                chosen = Sample(body, generation_id, account, model, chunk=count // chunk_lines)
        offset += len(line)
        count += 1
    slot_close()
    if count:
        bodies.append((body_start, offset, count))

    waiting: dict[tuple[int, int], list[Sample]] = {}
    for sample in samples:
        waiting.setdefault((sample.index, sample.chunk), []).append(sample)
    requests: dict[str, int] = {}
    tokens = {}
    lines = iter(line for line in read() if line.strip())
    for index, (_, _, records) in enumerate(bodies):  # the thresholds, at the end of each chunk
        for first in range(0, records, chunk_lines):
            for line in itertools.islice(lines, min(chunk_lines, records - first)):
                _, _, account, model, used, _ = record_fields(line)
                requests[account] = requests.get(account, 0) + 1
                tokens[model] = tokens.get(model, 0) + used
            for sample in waiting.get((index, first // chunk_lines), ()):
                sample.account_requests, sample.model_tokens = requests[sample.account], tokens[sample.model]
    return Plan(start_ms, interval_ms, bodies, samples, requests, tokens)


def summary(samples: list[Sample], timeout: float) -> dict:
    """Per page: samples, shown, missed, p50, p99 and max in seconds (a miss: `>timeout`)."""
    def shown(value: float | None) -> float | str:
        return f">{timeout:g}" if value is None else round(value, 2)

    pages = {}
    for page in PAGES:
        values = [s.shown.get(page) for s in samples]
        seen = [v for v in values if v is not None]
        pages[page] = {"samples": len(values), "shown": len(seen), "missed": len(values) - len(seen),
                       "p50_s": shown(percentile(values, 50)), "p99_s": shown(percentile(values, 99)),
                       "max_s": shown(None if len(seen) < len(values) else max(seen, default=None))}
    return pages


# ---- the run ----

def psql(sql: str, database: str) -> str:
    return ingest_bench.psql(sql, database)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Services:
    """The processes of a run: Celery workers, the rollup writer (fold mode) and gunicorn."""

    def __init__(self, env: dict, workers: int, logs: Path):
        self.env, self.workers, self.logs = env, workers, logs
        self.procs: list[subprocess.Popen] = []
        self.phase = "stream"  # the logs' prefix: `capacity` while measuring it
        self.fold = env.get("INGEST_ROLLUPS") == "fold" and subprocess.run(
            [PY, "manage.py", "help", "rollup_writer"], cwd=ROOT, env=env, capture_output=True).returncode == 0

    def start_workers(self) -> None:
        subprocess.run([str(BIN / "celery"), "-A", "config", "purge", "-f"], cwd=ROOT, env=self.env,
                       capture_output=True)
        for n in range(self.workers):
            self._start(f"worker{n}", [str(BIN / "celery"), "-A", "config", "worker", "-P", "solo",
                                       "-Q", "ingest,rollups,billing,default", "-n", f"fresh{n}@%h",
                                       "--without-gossip", "--without-mingle", "--loglevel=INFO"])
        if self.fold:
            self._start("rollup_writer", [PY, "manage.py", "rollup_writer"])
        time.sleep(4)

    def start_server(self, port: int, processes: int) -> None:
        self._start("gunicorn", [str(BIN / "gunicorn"), "config.wsgi", "-w", str(processes), "-b", f"127.0.0.1:{port}",
                                 "--timeout", "120", "--log-level", "warning"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if fetch(port, "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit("gunicorn did not answer /healthz")

    def _start(self, name: str, args: list[str]) -> None:
        log = (self.logs / f"{self.phase}-{name}.log").open("ab")
        self.procs.append(subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=log))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []


def fetch(port: int, path: str, cookie: str | None = None, *, method: str = "GET", body: bytes | None = None,
          headers: dict | None = None, timeout: float = 60) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        sent = dict(headers or {})
        if cookie:
            sent["Cookie"] = cookie
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def database_empty(db: str, env: dict) -> None:
    """Every generation, rollup, batch and account (and what hangs off them) gone; the cache flushed."""
    psql(f"TRUNCATE {', '.join(ingest_bench.TABLES)}", db)
    psql("TRUNCATE billing_account CASCADE", db)
    psql("DELETE FROM auth_user WHERE username LIKE 'fresh-%'", db)
    psql("TRUNCATE django_session", db)
    subprocess.run(["redis-cli", "-u", env["REDIS_URL"], "FLUSHDB"], check=True, capture_output=True)


def generate(path: Path, *, env: dict, records: int, accounts: int, rate: float, end: datetime | None,
             seed: int) -> float:
    """A live stream of `records` at `rate` requests/s ending at `end` (now); returns the seconds it took."""
    started = time.perf_counter()
    args = [PY, "manage.py", "generate_traffic", "--out", str(path), "--seed", str(seed), "--accounts", str(accounts),
            "--live", "--rate", repr(float(rate)), "--hours", repr(records / rate / 3600)]
    if end is not None:
        args += ["--end", end.isoformat()]
    out = subprocess.run(args, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout.strip()
    print(f"generated {path.name}: {out}", file=sys.stderr)
    return time.perf_counter() - started


def capacity_measure(options, env: dict, services: Services, folder: Path) -> dict:
    """The live stream's capacity on this machine: one file through the run's workers, as bench/ingest.py."""
    path = folder / f"freshness-capacity-{options.capacity_events}-a{options.accounts}.jsonl"
    if not path.exists():
        generate(path, env=env, records=options.capacity_events, accounts=options.accounts, rate=8000, end=None,
                 seed=options.seed + 100)
    database_empty(options.database, env)
    services.phase = "capacity"
    services.start_workers()
    try:
        subprocess.run([PY, "manage.py", "ingest", str(path)], cwd=ROOT, env=env, check=True, capture_output=True)
        while True:
            status = psql("SELECT status FROM analytics_ingestbatch ORDER BY id DESC LIMIT 1", options.database)
            if status in ("done", "failed"):
                break
            time.sleep(1)
    finally:
        services.stop()
        services.phase = "stream"
    accepted, seconds = psql("SELECT accepted, extract(epoch FROM finished_at - created_at) FROM analytics_ingestbatch "
                             "ORDER BY id DESC LIMIT 1", options.database).split("|")
    if status != "done":
        raise SystemExit("the capacity batch failed: see the workers' logs")
    if not options.keep:
        path.unlink(missing_ok=True)
    return {"records": int(accepted), "seconds": round(float(seconds), 1),
            "rows_per_s": round(int(accepted) / float(seconds))}


PREPARE = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from billing.accounts import accounts_register
from billing.models import Membership
from marketplace.models import Model

wanted = json.loads(sys.stdin.read())
ids = accounts_register(external_ids=wanted["accounts"])
User = get_user_model()
cookies, paths = {}, {}
for number, external_id in enumerate(sorted(ids)):
    user = User.objects.create_user(username=f"fresh-{number}")  # no password: signed in by its session
    Membership.objects.create(user=user, account_id=ids[external_id], role=Membership.Role.VIEWER)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    cookies[external_id] = f"{settings.SESSION_COOKIE_NAME}={session.session_key}"
for model in Model.objects.filter(slug__in=wanted["models"]).select_related("author"):
    paths[model.slug] = model.get_absolute_url()
print(json.dumps({"cookies": cookies, "paths": paths}))
"""


def prepare(plan: Plan, env: dict) -> tuple[dict[str, str], dict[str, str]]:
    """Register the sampled accounts, a viewer and a signed-in session each; the sampled models' page paths."""
    wanted = {"accounts": sorted({s.account for s in plan.samples}), "models": sorted({s.model for s in plan.samples})}
    out = subprocess.run([PY, "-c", PREPARE], cwd=ROOT, env=env, input=json.dumps(wanted), check=True,
                         capture_output=True, text=True).stdout
    made = json.loads(out.strip().splitlines()[-1])
    return made["cookies"], made["paths"]


class Feeder(threading.Thread):
    """Hands the bodies over on time: body k when the wall clock reaches start + (k + 1) × interval."""

    def __init__(self, path: Path, plan: Plan, *, port: int, token: str, wall_start: float, handed: queue.Queue):
        super().__init__(daemon=True)
        self.path, self.plan, self.port, self.token = path, plan, port, token
        self.wall_start, self.handed = wall_start, handed
        self.by_body: dict[int, list[Sample]] = {}
        for sample in plan.samples:
            self.by_body.setdefault(sample.index, []).append(sample)
        self.late: list[float] = []  # seconds each POST began after its time
        self.errors: list[str] = []
        self.posted = 0

    def run(self) -> None:
        try:
            self._feed()
        except Exception as error:  # noqa: BLE001  (reported; the pollers must still hear the end)
            self.errors.append(f"feeder stopped: {type(error).__name__}: {error}")
        finally:
            self.handed.put(None)

    def _feed(self) -> None:
        interval = self.plan.interval_ms / 1000
        with self.path.open("rb") as handle:
            for index, (start, end, records) in enumerate(self.plan.bodies):
                due = self.wall_start + (index + 1) * interval
                time.sleep(max(0.0, due - time.time()))
                handle.seek(start)
                body = gzip.compress(handle.read(end - start), compresslevel=1)  # as a gateway sends it
                began = time.time()
                self.late.append(began - due)
                samples = self.by_body.get(index, [])
                for sample in samples:
                    sample.handed_at = began
                if records:
                    status, text = fetch(self.port, "/api/v1/ingest?wait=0", method="POST", body=body, headers={
                        "Authorization": f"Bearer {self.token}", "Content-Type": "application/x-ndjson",
                        "Content-Encoding": "gzip"})
                    if status not in (200, 202):
                        self.errors.append(f"body {index}: {status} {text[:200]}")
                    self.posted += records
                for sample in samples:
                    self.handed.put(sample)


@dataclass
class Target:
    """One page to poll (an account's overview or explorer, a sample's log entry, the rankings) and the
    samples waiting to show on it."""
    page: str
    path: str
    cookie: str | None
    waiting: list[Sample] = field(default_factory=list)
    due: float = 0.0
    busy: bool = False


def shows(page: str, sample: Sample, body: str, model_path: str) -> bool:
    if page == "overview":
        return (overview_requests(body) or 0) >= sample.account_requests
    if page == "explorer":
        return (explorer_requests(body) or 0) >= sample.account_requests
    if page == "log":
        return log_shows(body, sample.id)
    return ranking_tokens(body).get(model_path, 0) >= sample.model_tokens


def poll(*, port: int, handed: queue.Queue, cookies: dict, paths: dict, interval: float, timeout: float,
         pollers: int) -> dict:
    """Poll every open sample's pages until each shows or times out; returns the polling's own figures."""
    targets: dict[tuple, Target] = {}
    in_flight: dict[concurrent.futures.Future, Target] = {}
    requests_made, errors, feeding = 0, 0, True
    with concurrent.futures.ThreadPoolExecutor(pollers) as pool:
        while feeding or targets:
            while True:
                try:
                    sample = handed.get_nowait()
                except queue.Empty:
                    break
                if sample is None:
                    feeding = False
                    continue
                cookie = cookies[sample.account]
                for page, key, path, who in (
                        ("overview", sample.account, "/account/", cookie),
                        ("explorer", sample.account, "/account/activity/", cookie),
                        ("log", sample.id, f"{LOG_PATH}?id={quote(sample.id)}", cookie),
                        ("rankings", None, "/rankings/", None)):
                    target = targets.setdefault((page, key), Target(page, path, who, due=sample.handed_at))
                    target.waiting.append(sample)
            done = [f for f in in_flight if f.done()]
            for future in done:
                target = in_flight.pop(future)
                target.busy = False
                requests_made += 1
                try:
                    status, body, received = future.result()
                except OSError:
                    status, body, received = 0, "", time.time()
                if status != 200:
                    errors += 1
                for sample in list(target.waiting):
                    if status == 200 and shows(target.page, sample, body, paths.get(sample.model, "")):
                        sample.shown[target.page] = max(0.0, received - sample.handed_at)
                        target.waiting.remove(sample)
            now = time.time()
            for key, target in list(targets.items()):
                for sample in [s for s in target.waiting if now - s.handed_at > timeout]:
                    sample.shown[target.page] = None
                    target.waiting.remove(sample)
                if not target.waiting and not target.busy:
                    del targets[key]
            for target in sorted((t for t in targets.values() if not t.busy and t.due <= now), key=lambda t: t.due):
                if len(in_flight) >= pollers:
                    break
                target.busy, target.due = True, now + interval
                in_flight[pool.submit(_get, port, target.path, target.cookie)] = target
            time.sleep(0.02)
    return {"page_requests": requests_made, "page_errors": errors}


def _get(port: int, path: str, cookie: str | None) -> tuple[int, str, float]:
    status, body = fetch(port, path, cookie, timeout=120)
    return status, body, time.time()


def batches_figures(db: str) -> dict:
    """The stream's batches as the database saw them: accepted rate, each batch's processing lag."""
    row = psql(
        "SELECT count(*), count(*) FILTER (WHERE status = 'done'), coalesce(sum(accepted), 0),"
        " extract(epoch FROM max(finished_at) - min(created_at)),"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)),"
        " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)),"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ranked_at - created_at)),"
        " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM ranked_at - created_at))"
        " FROM analytics_ingestbatch WHERE source = 'api'", db).split("|")
    number = [float(v) if v else None for v in row]
    return {"batches": int(number[0]), "batches_done": int(number[1]), "accepted": int(number[2]),
            "accepted_per_s": round(number[2] / number[3]) if number[3] else None,
            "batch_lag_p50_s": _round(number[4]), "batch_lag_p99_s": _round(number[5]),
            "ranked_lag_p50_s": _round(number[6]), "ranked_lag_p99_s": _round(number[7])}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def thresholds_check(plan: Plan, db: str) -> dict:
    """The sampled accounts' request counts and models' tokens in the database against the plan's totals
    (after the whole stream is in: the pages' thresholds were counted the way the database counts)."""
    accounts = sorted({s.account for s in plan.samples})
    models = sorted({s.model for s in plan.samples})
    quoted = ",".join("'" + a.replace("'", "''") + "'" for a in accounts)
    counted = dict(line.split("|") for line in psql(
        "SELECT a.external_id, count(*) FROM analytics_generation g JOIN billing_account a ON a.id = g.account_id"
        f" WHERE a.external_id IN ({quoted}) GROUP BY 1", db).splitlines() if line)
    quoted = ",".join("'" + m.replace("'", "''") + "'" for m in models)
    summed = dict(line.split("|") for line in psql(
        "SELECT m.slug, sum(e.tokens_prompt + e.tokens_completion) FROM analytics_endpointday e"
        f" JOIN marketplace_model m ON m.id = e.model_id WHERE m.slug IN ({quoted}) GROUP BY 1", db).splitlines()
        if line)
    return {"accounts_matching": sum(int(counted.get(a, 0)) == plan.account_totals[a] for a in accounts),
            "accounts": len(accounts),
            "models_matching": sum(int(summed.get(m, 0)) == plan.model_totals[m] for m in models),
            "models": len(models)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--rate", type=float, help="records/s to hand over (default: --capacity-share of capacity)")
    parser.add_argument("--capacity", type=float, help="the capacity in records/s (default: measured first)")
    parser.add_argument("--capacity-share", type=float, default=0.8)
    parser.add_argument("--capacity-events", type=int, default=500_000, help="records of the capacity file")
    parser.add_argument("--duration", type=float, default=240, help="seconds of stream handed over")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds of traffic per POSTed body")
    parser.add_argument("--sample-every", type=float, default=1.0, help="seconds of traffic per sample")
    parser.add_argument("--chunk-lines", type=int, default=50_000, help="the workers' INGEST_CHUNK_LINES")
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between two polls of a page")
    parser.add_argument("--timeout", type=float, default=180, help="seconds after which a sample counts as missed")
    parser.add_argument("--pollers", type=int, default=4, help="page requests in flight at most")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--web-processes", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the generated files in var/bench/")
    parser.add_argument("--database", default="tokengrid_freshness")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="the cache (flushed)")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/15", help="the Celery broker (purged)")
    options = parser.parse_args()
    if options.rate is not None and options.rate <= 0 or options.capacity is not None and options.capacity <= 0:
        parser.error("--rate and --capacity must be positive")
    if not 0 < options.capacity_share <= 2 or min(options.duration, options.interval, options.sample_every) <= 0:
        parser.error("--capacity-share in (0, 2]; --duration, --interval and --sample-every positive")

    db, token = options.database, secrets.token_urlsafe(24)
    env = {**os.environ, "DATABASE_URL": f"{PG}/{db}", "CELERY_BROKER_URL": options.broker_url,
           "REDIS_URL": options.redis_url, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "0",
           "DJANGO_SECRET_KEY": "freshness-bench-" + "x" * 50, "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
           "DJANGO_SECURE_SSL_REDIRECT": "0", "INGEST_TOKEN": token,
           "INGEST_CHUNK_LINES": str(options.chunk_lines)}
    folder = ROOT / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    logs = folder / f"freshness-logs-{datetime.now(tz=UTC):%Y%m%dT%H%M%S}"
    logs.mkdir()
    if psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'", "postgres") != "1":
        psql(f"CREATE DATABASE {db}", "postgres")
    subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([PY, "manage.py", "catalog_sync"], cwd=ROOT, env=env, check=True, capture_output=True)
    services = Services(env, options.workers, logs)
    mode = "fold" if services.fold else "chunk"
    print(f"ingest rollups: {mode}; logs in {logs}", file=sys.stderr)

    capacity = {"rows_per_s": options.capacity, "how": "given"} if options.capacity else None
    if options.rate is None and capacity is None:
        capacity = {**capacity_measure(options, env, services, folder), "how": "measured"}
        print(f"capacity: {capacity}", file=sys.stderr)
    rate = options.rate or round(options.capacity_share * capacity["rows_per_s"])

    records = round(rate * options.duration)
    path = folder / f"freshness-{records}-a{options.accounts}.jsonl"
    # The stream starts once it is written, planned and the services are up (about 14 µs a record for the
    # generator, 12 for the plan's two passes, half a minute for the rest): its timestamps are then just in the past.
    lead = 45 + records * 24e-6
    end = datetime.fromtimestamp(time.time() + lead + options.duration, tz=UTC)
    generate(path, env=env, records=records, accounts=options.accounts, rate=rate, end=end, seed=options.seed)
    start_ms = round((end.timestamp() - options.duration) * 1000)
    def read():
        with path.open("rb") as handle:
            yield from handle

    plan = plan_stream(read, start_ms=start_ms, interval_ms=round(options.interval * 1000),
                       sample_ms=round(options.sample_every * 1000), chunk_lines=options.chunk_lines, seed=options.seed)
    print(f"planned {len(plan.bodies)} bodies, {len(plan.samples)} samples over "
          f"{len({s.account for s in plan.samples})} accounts", file=sys.stderr)

    database_empty(db, env)
    cookies, paths = prepare(plan, env)
    port = free_port()
    handed: queue.Queue = queue.Queue()
    try:
        services.start_workers()
        services.start_server(port, options.web_processes)
        status, page = fetch(port, "/account/", next(iter(cookies.values())))
        if status != 200 or overview_requests(page) is None:
            raise SystemExit(f"a sampled account's overview answered {status} without its Requests figure")
        wall_start = max(time.time(), start_ms / 1000)
        time.sleep(max(0.0, wall_start - time.time()))
        handed_late = round(wall_start - start_ms / 1000, 1)
        feeder = Feeder(path, plan, port=port, token=token, wall_start=wall_start, handed=handed)
        feeder.start()
        polled = poll(port=port, handed=handed, cookies=cookies, paths=paths, interval=options.poll,
                      timeout=options.timeout, pollers=options.pollers)
        feeder.join()
        # Every batch in, for the check of the thresholds (the pages' figures were taken above).
        deadline = time.monotonic() + options.timeout
        while time.monotonic() < deadline and psql(
                "SELECT count(*) FROM analytics_ingestbatch WHERE status NOT IN ('done', 'failed')", db) != "0":
            time.sleep(1)
    finally:
        services.stop()
    figures = batches_figures(db)
    spent: dict[str, list] = {}
    for log in sorted(logs.glob("stream-worker*.log")):
        for name, (runs, seconds) in task_seconds(log.read_text(errors="replace")).items():
            runs_before, seconds_before = spent.get(name, (0, 0.0))
            spent[name] = [runs_before + runs, round(seconds_before + seconds, 1)]
    undone = figures["batches"] - figures["batches_done"]
    check = thresholds_check(plan, db) if not undone else {"skipped": f"{undone} batches not done"}
    offered = feeder.posted / (len(plan.bodies) * options.interval)
    result = {
        "mode": mode, "accounts": options.accounts, "workers": options.workers, "capacity": capacity,
        "capacity_share": None if options.rate else options.capacity_share, "rate": rate,
        "duration_s": options.duration, "interval_s": options.interval, "sample_every_s": options.sample_every, "records": feeder.posted,
        "offered_per_s": round(offered), "handed_over_after_created_s": handed_late,
        "post_late_p99_s": round(percentile(feeder.late, 99) or 0, 2), "post_errors": feeder.errors[:5],
        "samples": len(plan.samples), "poll_s": options.poll, "timeout_s": options.timeout, **polled,
        "pages": summary(plan.samples, options.timeout), "ingest": figures,
        # Where the workers' time went while the stream ran: task -> [runs, seconds].
        "worker_task_seconds": dict(sorted(spent.items(), key=lambda item: -item[1][1])), "thresholds_check": check,
    }
    print(f"{mode} mode, {options.accounts:,} accounts, {options.workers} workers: handed over {feeder.posted:,} "
          f"records at {offered:,.0f}/s (rate {rate:,.0f}/s"
          + (f" = {options.capacity_share:g} x capacity {capacity['rows_per_s']:,.0f}/s {capacity['how']}"
             if capacity else "") + f"); ingested {figures['accepted_per_s'] or 0:,}/s", file=sys.stderr)
    print(f"{'page':<10} {'samples':>7} {'missed':>6} {'p50 s':>7} {'p99 s':>7} {'max s':>7}", file=sys.stderr)
    for page, row in result["pages"].items():
        print(f"{page:<10} {row['samples']:>7} {row['missed']:>6} {row['p50_s']!s:>7} {row['p99_s']!s:>7} "
              f"{row['max_s']!s:>7}", file=sys.stderr)
    print(json.dumps(result))
    if not options.keep:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
