"""Real Celery worker processes against the test database and the configured broker, and the truth
that ingested totals are checked against."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import database_url

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"


class Workers:
    """Start worker processes; stop (or kill) them; always clean up."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.procs: list[tuple[subprocess.Popen, Path]] = []

    def start(self, *, concurrency: int = 1, extra_env: dict | None = None, extra_args: tuple[str, ...] = (),
              timeout: float = 60, queues: str = "ingest,rollups,reports,billing,default",
              cwd: Path = ROOT, prefix: tuple[str, ...] = ()) -> subprocess.Popen:
        log = self.tmp_path / f"worker-{len(self.procs)}.log"
        env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "config.settings",
               "INGEST_CHUNK_LINES": str(settings.INGEST_CHUNK_LINES), **(extra_env or {})}
        env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        name = f"test-{uuid.uuid4().hex[:8]}@%h"
        handle = log.open("wb")
        proc = subprocess.Popen(
            [*prefix, str(CELERY), "-A", "config", "worker", "-Q", queues, "-c",
             str(concurrency), "-n", name, "--without-gossip", "--without-mingle", "--loglevel=INFO", *extra_args],
            cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((proc, log))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b" ready." in log.read_bytes():
                return proc
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready in {timeout} s:\n{log.read_text(errors='replace')[-4000:]}")

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(log.read_text(errors="replace")[-tail:] for _, log in self.procs)

    def stop(self) -> None:
        # SIGTERM to the main process only: a warm shutdown lets the running task finish (SIGTERM to
        # the whole group would kill the pool child mid-task and send its message back to the queue).
        for proc, _ in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc, _ in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def broker_purge(url: str | None = None) -> None:
    """Empty every queue of ours on the broker, and on Redis the messages workers took but never acked.

    `app.control.purge()` empties only the default queue; the `ingest` and `rollups` queues, and the
    `unacked` hash that a killed or stopped worker leaves behind (Redis hands those out again after
    the visibility timeout), would otherwise feed the next test's worker tasks of earlier batches;
    and a restore mutex left by a killed worker would hold up the next test's redeliveries.
    """
    from config.celery import app

    with app.connection_for_write(url) as conn:
        channel = conn.default_channel
        for queue in settings.CELERY_WORKER_QUEUES.split(","):
            if conn.transport.driver_type == "amqp":
                # RabbitMQ closes the channel on a queue nobody declared yet (404): nothing to purge there.
                with conn.channel() as own, contextlib.suppress(conn.channel_errors):
                    own.queue_purge(queue)
                continue
            channel.queue_purge(queue)
        if conn.transport.driver_type == "redis":
            channel.client.delete(channel.unacked_key, channel.unacked_index_key, channel.unacked_mutex_key)


@pytest.fixture
def workers(tmp_path, transactional_db):
    broker_purge()  # before and after: messages of earlier batches must never reach a test's workers
    pool = Workers(tmp_path)
    yield pool
    pool.stop()
    broker_purge()
    connection.close()


def traffic(ids: range) -> list[dict]:
    """Generations over 3 accounts, 4 models, 2 providers, 5 days and 2 apps (every other one has an origin)."""
    from tests.analytics.conftest import record

    return [record(id=f"gen-{i}", account=f"acct_{i % 3}", model=f"lab/model-{i % 4}",
                   provider_name=f"Provider {i % 2}", created_at=f"2026-03-0{1 + i % 5}T{i % 24:02d}:15:00Z",
                   origin=f"https://app-{i % 4}.example/" if i % 2 else ..., tokens_prompt=i % 1000,
                   tokens_completion=i % 97, total_cost=float(f"0.000{i % 10}1"))
            for i in ids]


def totals_assert_truth(path: Path) -> None:
    """Generations, every rollup, each account's balance and the ledger equal the truth read from the file.

    The file holds good openrouter records only (status 200, latency and generation time set), so the
    truth is plain sums over its lines; money is read as Decimal, never float.
    """
    from django.core.management import call_command
    from django.db.models import Sum

    from analytics.models import (
        AccountDay,
        AccountHour,
        AccountTagDay,
        AccountUserDay,
        AppDay,
        EndpointDay,
        EndpointHistogram,
        EndpointHour,
        Generation,
    )
    from billing.models import Account, LedgerEntry
    from core.money import usd_to_units

    records = {}
    for line in path.read_bytes().splitlines():
        item = json.loads(line, parse_float=Decimal)
        records[item["id"]] = item  # a repeated id counts once
    rows = list(records.values())

    def summed(some: list[dict]) -> dict:  # as the database sums them: None over no rows
        if not some:
            return dict.fromkeys(("requests", "tokens_prompt", "tokens_completion", "spend_units"))
        return {"requests": len(some), "tokens_prompt": sum(r["tokens_prompt"] for r in some),
                "tokens_completion": sum(r["tokens_completion"] for r in some),
                "spend_units": sum(usd_to_units(r["total_cost"]) for r in some)}

    truth = summed(rows)
    app_truth = summed([r for r in rows if r.get("origin")])
    # The user and tag rollups keep no row for requests without a user (tags): analytics.rollups.
    user_truth = summed([r for r in rows if r.get("user")])
    tag_truth = summed([r for r in rows if r.get("tags")])
    sums = {name: Sum(name) for name in truth}

    assert Generation.objects.count() == len(rows)
    assert Generation.objects.aggregate(tokens_prompt=Sum("tokens_prompt"), tokens_completion=Sum("tokens_completion"),
                                        spend_units=Sum("cost_units")) == {
        k: v for k, v in truth.items() if k != "requests"}
    for rollup in (EndpointHour, EndpointDay, AccountHour, AccountDay):
        assert rollup.objects.aggregate(**sums) == truth, rollup.__name__
    assert AccountUserDay.objects.aggregate(**sums) == user_truth
    assert AccountTagDay.objects.aggregate(**sums) == tag_truth
    assert AppDay.objects.aggregate(**sums) == app_truth
    latency = EndpointHistogram.objects.filter(metric=EndpointHistogram.Metric.LATENCY)
    throughput = EndpointHistogram.objects.filter(metric=EndpointHistogram.Metric.THROUGHPUT)
    assert latency.aggregate(n=Sum("count"))["n"] == len(rows)
    assert throughput.aggregate(n=Sum("count"))["n"] == sum(1 for r in rows if r["tokens_completion"])

    spend_by_account: dict[str, int] = {}
    for r in rows:
        spend_by_account[r["account"]] = spend_by_account.get(r["account"], 0) + usd_to_units(r["total_cost"])
    balances = dict(Account.objects.values_list("external_id", "balance_units"))
    assert balances == {account: -spend for account, spend in spend_by_account.items()}
    assert LedgerEntry.objects.aggregate(s=Sum("amount_units"))["s"] == -truth["spend_units"]
    call_command("ledger_verify")  # exits non-zero on any difference


def wait_for(predicate, *, timeout: float, message: str, workers: Workers | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"{message}\n{workers.logs() if workers else ''}")
