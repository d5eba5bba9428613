"""Workers that share nothing but the database and the broker: two worker processes, each in a network
namespace of its own (a veth pair, addresses on this host only) and a working directory of its own,
ingest one file together. They reach PostgreSQL, the broker (and the cache's Redis) only through their
veth peer address, where a forwarder in this namespace relays to the services on 127.0.0.1; the file
they ingest is gone from disk before they start, its bytes in the store (PostgreSQL).
"""
import asyncio
import os
import random
import re
import shutil
import subprocess
import threading
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection

from analytics.models import IngestBatch, IngestPiece
from tests.analytics.conftest import write_jsonl

from .conftest import ROOT, totals_assert_truth, traffic, wait_for

pytestmark = [pytest.mark.slow]


class Forwarders:
    """TCP relays in this namespace, on an asyncio loop of their own thread: listen on a veth address, relay
    to a service on 127.0.0.1 (PostgreSQL listens there only; its configuration stays as it is)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[asyncio.AbstractServer] = []

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    def add(self, *, listen: str, port: int, target_port: int) -> None:
        async def relay(reader, writer):
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
            except OSError:
                writer.close()
                return
            await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

        start = asyncio.start_server(relay, listen, port)
        self.servers.append(asyncio.run_coroutine_threadsafe(start, self.loop).result(timeout=10))

    def close(self) -> None:
        for server in self.servers:
            self.loop.call_soon_threadsafe(server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def _ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=30)


class Namespaces:
    """Network namespaces named uniquely per run, each joined to this one by a veth pair on a /24 of 10.77.x."""

    def __init__(self, count: int):
        tag = uuid.uuid4().hex[:6]
        used = set(re.findall(r"10\.77\.(\d+)\.", subprocess.run(["ip", "-o", "addr"], capture_output=True,
                                                                   text=True, check=True).stdout))
        free = [n for n in range(1, 255) if str(n) not in used]
        subnets = random.sample(free, count)
        self.names = [f"tg-{tag}-{i}" for i in range(count)]
        self.hosts = [f"10.77.{n}.1" for n in subnets]  # this namespace's end of each pair
        self.links = [f"tgv{tag}{i}" for i in range(count)]
        for name, link, subnet in zip(self.names, self.links, subnets, strict=True):
            _ip("netns", "add", name)
            _ip("link", "add", link, "type", "veth", "peer", "name", f"{link}p")
            _ip("link", "set", f"{link}p", "netns", name)
            _ip("addr", "add", f"10.77.{subnet}.1/24", "dev", link)
            _ip("link", "set", link, "up")
            _ip("-n", name, "addr", "add", f"10.77.{subnet}.2/24", "dev", f"{link}p")
            _ip("-n", name, "link", "set", f"{link}p", "up")
            _ip("-n", name, "link", "set", "lo", "up")

    def remove(self) -> None:
        for name, link in zip(self.names, self.links, strict=True):
            _ip("netns", "del", name, check=False)  # takes its end of the pair, and so the pair, with it
            _ip("link", "del", link, check=False)


def _via(url: str, host: str) -> str:
    """`url` with its host replaced by `host` (the port and the rest kept)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    address = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{address}" if len(netloc) == 2 else address))


@pytest.fixture
def namespaces(workers):
    if os.geteuid() != 0 or not shutil.which("ip"):
        if os.environ.get("CI") == "true":  # CI runs as root with iproute2: missing them is a broken run
            pytest.fail("needs root and `ip` (iproute2) for network namespaces")
        pytest.skip("needs root and `ip` (iproute2) for network namespaces")
    if not django_settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://", "pyamqp://")):
        pytest.skip("needs a broker reached over TCP (Redis or RabbitMQ, as in CI): the filesystem broker is a folder")
    if not connection.settings_dict.get("HOST", "").startswith("127.0.0.1"):
        pytest.skip("needs PostgreSQL on 127.0.0.1 (DATABASE_URL, as in CI): the embedded one listens on a socket")
    spaces = Namespaces(2)
    relays = Forwarders()
    try:
        yield spaces, relays
    finally:
        workers.stop()  # before their network goes
        relays.close()
        spaces.remove()


def test_two_workers_in_their_own_network_namespaces_ingest_one_file_together(tmp_path, workers, namespaces,
                                                                                settings):
    from tests.conftest import database_url

    spaces, relays = namespaces
    settings.INGEST_CHUNK_LINES = 1_000  # 12 chunks for two workers
    truth = write_jsonl(tmp_path / "truth.jsonl", traffic(range(12_000)))
    queued = tmp_path / "queued.jsonl"
    shutil.copyfile(truth, queued)

    services = [database_url(), django_settings.CELERY_BROKER_URL,
                *([os.environ["REDIS_URL"]] if os.environ.get("REDIS_URL") else [])]
    ports = {urlsplit(url).port or {"redis": 6379, "amqp": 5672}.get(urlsplit(url).scheme, 5432) for url in services}
    for host in spaces.hosts:
        for port in ports:
            relays.add(listen=host, port=port, target_port=port)

    for index, (name, host) in enumerate(zip(spaces.names, spaces.hosts, strict=True)):
        home = tmp_path / f"worker-{index}"
        home.mkdir()
        env = {"DATABASE_URL": _via(database_url(), host), "CELERY_BROKER_URL": _via(services[1], host),
               "PYTHONPATH": str(ROOT)}
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = _via(os.environ["REDIS_URL"], host)
        workers.start(concurrency=1, extra_env=env, cwd=home, prefix=("ip", "netns", "exec", name), timeout=90)

    call_command("ingest", str(queued))  # its bytes go into PostgreSQL, where both workers read them
    batch = IngestBatch.objects.get()
    assert IngestPiece.objects.filter(name=batch.path).exists()
    queued.unlink()  # no worker could read it from a disk anyway: they share only the database and the broker

    wait_for(lambda: IngestBatch.objects.get().status != IngestBatch.Status.RUNNING
             and IngestBatch.objects.get().chunks_total, timeout=240, message="the batch did not finish",
             workers=workers)
    batch.refresh_from_db()
    assert batch.status == IngestBatch.Status.DONE, batch.error
    assert (batch.accepted, batch.duplicates, batch.rejected, batch.chunks_done) == (12_000, 0, 0, 12)
    totals_assert_truth(truth)
    assert not IngestPiece.objects.exists()  # the stored file went with the batch's last chunk

    # Each worker logged the chunks it applied ("batch N chunk I: ..."); together, each chunk once.
    shares = [re.findall(rf"batch {batch.pk} chunk (\d+): ", log.read_text(errors="replace"))
              for _, log in workers.procs]
    assert all(shares), f"a worker did no chunk: {[len(share) for share in shares]}"
    assert sorted(int(i) for share in shares for i in share) == list(range(12))
