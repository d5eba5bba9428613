"""Ingestion: a file becomes a batch of chunks; each chunk is parsed, registered, priced and
applied exactly once.

Flow: `batch_queue` (a batch row, then the split task after commit) -> `batch_split` (format,
header, byte ranges of `INGEST_CHUNK_LINES` lines, one task per chunk) -> `chunk_ingest` (parse,
register unknown catalog rows, price, then ONE transaction: insert new generations, add exactly
those rows into the rollups, debit the accounts, keep the rejects, mark the chunk done).

A chunk that was applied is marked done in the transaction that applied it, so a redelivered or
retried task finds it done and changes nothing; a chunk that died mid-way rolled back whole.
"""
from __future__ import annotations

import contextlib
import gc
import gzip
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from billing.accounts import accounts_register, api_keys_register
from billing.ledger import ledger_debit_usage
from core.money import UNITS_PER_USD
from marketplace.pricing import PriceBook
from marketplace.services import apps_register, models_register, providers_register

from . import formats, histograms, loader, usage
from .models import IngestBatch, IngestChunk, Reject

ACCOUNT_AT = [name for name, _ in loader.STAGE_COLUMNS].index("account_id")

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
RAW_LIMIT = 2048
PRICEBOOK_TTL_SECONDS = 300


class IngestError(Exception):
    """A file that cannot be ingested at all (unreadable, undetectable format)."""


@dataclass(frozen=True)
class ChunkResult:
    lines: int
    accepted: int
    duplicates: int
    rejected: int
    skipped: bool = False


def batch_queue(*, path: Path, source: str, fmt: str = "auto") -> IngestBatch:
    """Record a batch for a readable file and queue its split after commit."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            handle.read(1)
        size = path.stat().st_size
    except OSError as error:
        raise IngestError(f"cannot read {path}: {error.strerror or error}") from error
    if fmt != "auto" and fmt not in formats.FORMATS:
        raise IngestError(f"unknown format {fmt!r}; expected auto or one of {', '.join(formats.FORMATS)}")
    from .tasks import ingest_batch_split

    with transaction.atomic():
        batch = IngestBatch.objects.create(source=source[:500], path=str(path.resolve()), format=fmt, bytes=size)
        transaction.on_commit(lambda: ingest_batch_split.delay(batch.pk))
    return batch


def _ingest_dir() -> Path:
    folder = Path(settings.VAR_DIR) / "ingest"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _plain_copy(batch: IngestBatch) -> Path:
    """Return a path to the batch's uncompressed bytes, decompressing a gzip file once."""
    source = Path(batch.path)
    with source.open("rb") as handle:
        magic = handle.read(2)
    if magic != GZIP_MAGIC:
        return source
    target = _ingest_dir() / f"batch-{batch.pk}.plain"
    limit = settings.INGEST_MAX_DECOMPRESSED_BYTES
    written = 0
    with gzip.open(source, "rb") as compressed, target.open("wb") as plain:
        while block := compressed.read(1 << 20):
            written += len(block)
            if written > limit:
                raise IngestError(f"decompressed size exceeds {limit} bytes")
            plain.write(block)
    return target


def _first_record_line(handle) -> tuple[bytes, int, int]:
    """Return (first non-blank line, its 1-based number, byte offset after it)."""
    number = 0
    offset = 0
    for line in handle:
        number += 1
        offset += len(line)
        if line.strip(b" \t\r\n\xef\xbb\xbf"):
            return line, number, offset
    return b"", number, offset


def batch_split(*, batch_id: int) -> IngestBatch:
    """Detect the format, cut the file into chunks of whole lines, and queue one task per chunk."""
    from .tasks import ingest_chunk

    batch = IngestBatch.objects.get(pk=batch_id)
    if batch.chunks_total:
        return batch  # already split (a redelivered task)
    IngestBatch.objects.filter(pk=batch_id).update(status=IngestBatch.Status.RUNNING, started_at=timezone.now())
    try:
        plain = _plain_copy(batch)
        with plain.open("rb") as handle:
            first, first_number, after_first = _first_record_line(handle)
            fmt = batch.format
            if fmt == "auto":
                # An empty file has nothing to detect and nothing to ingest.
                fmt = formats.detect_format(first.lstrip(b"\xef\xbb\xbf")) if first else "openrouter"
            header = b""
            if fmt != "openrouter" and first:
                candidate = formats.read_header(fmt, first.lstrip(b"\xef\xbb\xbf"))
                header = candidate or b""
            # Chunks start after the header line (CSV) or at the file start (JSON Lines).
            if header:
                start, line_number = after_first, first_number + 1
            else:
                start, line_number = 0, 1
            chunks, total_lines = _chunk_ranges(handle, start, line_number, settings.INGEST_CHUNK_LINES)
    except (OSError, EOFError, gzip.BadGzipFile, IngestError, formats.FormatError) as error:
        batch_fail(batch_id=batch_id, error=str(error))
        raise IngestError(str(error)) from error

    with transaction.atomic():
        IngestChunk.objects.bulk_create([
            IngestChunk(batch_id=batch_id, index=i, first_line=first_line, byte_start=a, byte_end=b)
            for i, (first_line, a, b) in enumerate(chunks)
        ])
        IngestBatch.objects.filter(pk=batch_id).update(
            format=fmt, header=header.decode("utf-8", errors="replace").rstrip("\r\n"), path=str(plain),
            lines=total_lines, chunks_total=len(chunks))
        if not chunks:
            IngestBatch.objects.filter(pk=batch_id).update(status=IngestBatch.Status.DONE,
                                                           finished_at=timezone.now())
        for index in range(len(chunks)):
            transaction.on_commit(lambda i=index: ingest_chunk.delay(batch_id, i))
    batch.refresh_from_db()
    return batch


def _chunk_ranges(handle, start: int, first_line: int, size: int, block_size: int = 8 << 20
                  ) -> tuple[list[tuple[int, int, int]], int]:
    """Cut the file from `start` into (first line, byte start, byte end) ranges of `size` lines.

    Reads 8 MB blocks and counts newlines in C: a 600 MB file is cut in well under a second.
    """
    handle.seek(start)
    chunks: list[tuple[int, int, int]] = []
    chunk_start, chunk_first, in_chunk = start, first_line, 0
    position, line = start, first_line - 1
    while block := handle.read(block_size):
        at = 0
        newlines = block.count(b"\n")
        while in_chunk + newlines >= size:  # the chunk ends inside this block
            for _ in range(size - in_chunk):
                at = block.index(b"\n", at) + 1
            newlines -= size - in_chunk
            line += size - in_chunk
            chunks.append((chunk_first, chunk_start, position + at))
            chunk_start, chunk_first, in_chunk = position + at, line + 1, 0
        in_chunk += newlines
        line += newlines
        position += len(block)
        tail_without_newline = not block.endswith(b"\n")
    if position > chunk_start:
        if tail_without_newline:
            line += 1
        chunks.append((chunk_first, chunk_start, position))
    return chunks, line


def batch_fail(*, batch_id: int, error: str) -> None:
    """Mark a batch failed with its reason (its applied chunks stay applied)."""
    IngestBatch.objects.filter(pk=batch_id).update(status=IngestBatch.Status.FAILED, error=error[:5000],
                                                   finished_at=timezone.now())


def batch_retry(*, batch_id: int) -> int:
    """Queue again the chunks of a batch that are not done; returns how many."""
    from .tasks import ingest_batch_split, ingest_chunk

    batch = IngestBatch.objects.get(pk=batch_id)
    IngestBatch.objects.filter(pk=batch_id).update(status=IngestBatch.Status.RUNNING, error="", finished_at=None)
    if not batch.chunks_total:
        ingest_batch_split.delay(batch_id)
        return 1
    pending = list(IngestChunk.objects.filter(batch_id=batch_id, done=False).values_list("index", flat=True))
    for index in pending:
        ingest_chunk.delay(batch_id, index)
    return len(pending)


def batches_stalled_requeue(*, idle_seconds: int) -> list[int]:
    """Queue again the undone chunks of batches that made no progress for `idle_seconds`.

    A broker that lost its queue (Redis restarted without persistence) or a filesystem broker
    whose worker died leaves chunk tasks that will never run; their batch would wait forever.
    Re-queued chunks are safe: a chunk already done is skipped, and one runs exactly once.
    Returns the ids of the batches queued again.
    """
    cutoff = timezone.now() - timedelta(seconds=idle_seconds)
    open_batches = IngestBatch.objects.filter(status__in=(IngestBatch.Status.QUEUED, IngestBatch.Status.RUNNING),
                                              created_at__lt=cutoff)
    stalled = []
    for batch in open_batches.annotate(last_chunk=Max("chunks__finished_at")).order_by("pk"):
        last = max(t for t in (batch.created_at, batch.started_at, batch.last_chunk) if t is not None)
        # A re-queue counts as activity, so a batch is queued again at most once per idle period.
        if last < cutoff and cache.add(f"ingest:requeued:{batch.pk}", 1, idle_seconds):
            batch_retry(batch_id=batch.pk)
            stalled.append(batch.pk)
    if stalled:
        log.warning("re-queued stalled batches %s", stalled)
    return stalled


def _chunk_lines(path: str, start: int, end: int, first_line: int) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    for offset, line in enumerate(data.split(b"\n")):
        yield first_line + offset, line


_pricebook: tuple[float, PriceBook] | None = None


def _price_book() -> PriceBook:
    """The catalog's prices, loaded once per process and refreshed every few minutes."""
    global _pricebook
    now = time.monotonic()
    if _pricebook is None or now - _pricebook[0] > PRICEBOOK_TTL_SECONDS:
        _pricebook = (now, PriceBook.load())
    return _pricebook[1]


def pricebook_reset() -> None:
    """Forget the cached prices (after catalog changes, and between tests)."""
    global _pricebook
    _pricebook = None


def _rows(records: list[formats.Record], batch_id: int) -> tuple[list[tuple], list[tuple]]:
    """Register what the records name, price the unpriced ones, and build stage rows.

    The hot loop of ingestion: kept flat (locals, fast paths for the common single attempt).
    """
    account_ids = accounts_register(external_ids={r.account for r in records})
    key_ids = api_keys_register(keys={(account_ids[r.account], r.api_key) for r in records if r.api_key})
    model_ids = models_register(slugs={r.model for r in records})
    provider_names = {r.provider_name for r in records}
    for r in records:
        if r.provider_responses:
            provider_names.update(a["provider_name"] for a in r.provider_responses)
    provider_ids = providers_register(names=provider_names)
    apps: dict[str, tuple[str, list[str]]] = {}
    for r in records:
        if r.origin and r.origin not in apps:
            apps[r.origin] = (r.app_name or "", list(r.app_categories))
    app_ids = apps_register(apps=apps) if apps else {}
    prices = None

    stage, extra_attempts = [], []
    append, extra = stage.append, extra_attempts.append
    bucket_of = histograms.bucket_of
    latency_buckets: dict[int, int] = {}  # latencies are whole ms and repeat: one log per value
    units_per_usd, one = Decimal(UNITS_PER_USD), Decimal(1)
    last_hour_key, hour, day = None, None, None
    for r in records:
        cost = r.total_cost
        cost_priced = cost is None
        if cost_priced:
            prices = prices or _price_book()
            cost = prices.cost(model_slug=r.model, provider_name=r.provider_name, created_at=r.created_at,
                               tokens_prompt=r.tokens_prompt, tokens_completion=r.tokens_completion,
                               tokens_reasoning=r.tokens_reasoning, tokens_cached=r.tokens_cached)
        cost_units = int((cost * units_per_usd).quantize(one, rounding=ROUND_HALF_EVEN)) if cost else 0
        account_id = account_ids[r.account]
        provider = r.provider_name
        status = r.status
        failed = 0 if 200 <= status < 300 else 1
        created = r.created_at
        hour_key = created.timestamp() // 3600
        if hour_key != last_hour_key:  # records mostly arrive in time order
            last_hour_key, hour = hour_key, created.replace(minute=0, second=0, microsecond=0)
            day = created.date()
        model_id = model_ids[r.model]
        attempts = r.provider_responses
        if not attempts:
            own, own_failed = 1, failed
        elif len(attempts) == 1 and attempts[0]["provider_name"] == provider:
            own, own_failed = 1, 0 if 200 <= attempts[0]["status"] < 300 else 1
        else:
            own = own_failed = 0
            for attempt in attempts:
                attempt_failed = 0 if 200 <= attempt["status"] < 300 else 1
                if attempt["provider_name"] == provider:
                    own += 1
                    own_failed += attempt_failed
                else:
                    extra((r.id, hour, day, model_id, provider_ids[attempt["provider_name"]], attempt_failed))
        latency = r.latency
        generation_time = r.generation_time
        completion = r.tokens_completion
        latency_bucket = throughput_bucket = None
        if not failed:
            if latency is not None:
                latency_bucket = latency_buckets.get(latency)
                if latency_bucket is None:
                    latency_bucket = latency_buckets[latency] = bucket_of(latency)
            if generation_time and completion:
                throughput_bucket = bucket_of(completion * 1000 / generation_time)
        append((
            r.id, created, hour, day, account_id, key_ids[(account_id, r.api_key)] if r.api_key else 0,
            model_id, provider_ids[provider], app_ids[r.origin] if r.origin else 0, batch_id,
            r.tokens_prompt, completion, r.tokens_reasoning, r.tokens_cached,
            cost_units, cost_priced, r.is_byok, latency, generation_time, status,
            r.finish_reason or "", r.streamed, r.cancelled, r.num_media_prompt, r.num_media_completion,
            r.num_search_results, attempts, failed, own, own_failed, latency_bucket, throughput_bucket,
        ))
    return stage, extra_attempts


@contextlib.contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector while a chunk is ingested.

    Parsing allocates several objects per record and none of them form cycles (reference counting
    frees them), yet each allocation burst set off collections that walked every live record:
    half the parse time. The pause spans the whole chunk, so the collector runs again only after
    the chunk's objects are gone (re-enabled between parse and apply, its first collections walked
    the 50k live records: 72 ms a chunk, bench/ingest_profile.py).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def chunk_ingest(*, batch_id: int, index: int) -> ChunkResult:
    """Parse one chunk and apply it exactly once; a chunk already done is skipped."""
    with _gc_paused():
        return _chunk_ingest(batch_id, index)  # its records are freed before the collector resumes


def _chunk_ingest(batch_id: int, index: int) -> ChunkResult:
    chunk = IngestChunk.objects.select_related("batch").get(batch_id=batch_id, index=index)
    if chunk.done:
        return ChunkResult(chunk.lines, chunk.accepted, chunk.duplicates, chunk.rejected, skipped=True)
    IngestChunk.objects.filter(pk=chunk.pk).update(attempts=F("attempts") + 1)
    batch = chunk.batch
    header = batch.header.encode() if batch.header else None

    records: list[formats.Record] = []
    rejects: list[Reject] = []
    seen: set[str] = set()
    in_chunk_duplicates = 0
    for item in formats.parse_lines(
            batch.format, _chunk_lines(batch.path, chunk.byte_start, chunk.byte_end, chunk.first_line),
            header=header, max_line_bytes=settings.INGEST_MAX_LINE_BYTES):
        if isinstance(item, formats.Rejected):
            rejects.append(Reject(batch_id=batch_id, line=item.line, reason=item.reason[:100],
                                  raw=item.raw[:RAW_LIMIT].replace("\x00", "\ufffd")))
        elif item.id in seen:
            in_chunk_duplicates += 1
        else:
            seen.add(item.id)
            records.append(item)
    del seen
    stage, extra_attempts = _rows(records, batch_id) if records else ([], [])

    with transaction.atomic():
        locked = IngestChunk.objects.select_for_update().get(pk=chunk.pk)
        if locked.done:  # another worker applied it while we parsed
            return ChunkResult(locked.lines, locked.accepted, locked.duplicates, locked.rejected, skipped=True)
        applied = loader.apply(stage=stage, extra_attempts=extra_attempts)
        Reject.objects.bulk_create(rejects, batch_size=1000)
        debited = ledger_debit_usage(spend_by_account=applied.spend_by_account,
                                     idempotency_prefix=f"ingest:batch:{batch_id}:chunk:{index}")
        duplicates = len(stage) - applied.inserted + in_chunk_duplicates
        result = ChunkResult(lines=len(records) + in_chunk_duplicates + len(rejects), accepted=applied.inserted,
                             duplicates=duplicates, rejected=len(rejects))
        IngestChunk.objects.filter(pk=chunk.pk).update(
            done=True, lines=result.lines, accepted=result.accepted, duplicates=result.duplicates,
            rejected=result.rejected, finished_at=timezone.now())
        IngestBatch.objects.filter(pk=batch_id).update(
            accepted=F("accepted") + result.accepted, duplicates=F("duplicates") + result.duplicates,
            rejected=F("rejected") + result.rejected, chunks_done=F("chunks_done") + 1)
        IngestBatch.objects.filter(pk=batch_id, chunks_done=F("chunks_total")).exclude(
            status=IngestBatch.Status.FAILED).update(status=IngestBatch.Status.DONE, finished_at=timezone.now())
        if applied.inserted:
            accounts = sorted({row[ACCOUNT_AT] for row in stage})
            transaction.on_commit(lambda: chunk_fan_out(account_ids=accounts, debited_ids=debited))
    log.info("batch %s chunk %s: %s lines, %s accepted, %s duplicates, %s rejected",
             batch_id, index, result.lines, result.accepted, result.duplicates, result.rejected)
    return result


def chunk_fan_out(*, account_ids: list[int], debited_ids: list[int]) -> None:
    """Everything a committed chunk sets off, queued from this one place (call after commit).

    Each is a constant number of messages or cache round trips, whatever the number of accounts
    the chunk touched: the rankings refresh (rate-limited, analytics.tasks), the usage versions of
    the chunk's accounts and a prewarm of the watched ones (analytics.usage), and one billing task
    that finds, in SQL, the few debited accounts and keys that crossed a threshold (billing.alerts).
    """
    from billing.tasks import billing_after_debit

    from .tasks import rollup_rankings_refresh

    rollup_rankings_refresh.delay()
    usage.usage_refresh(account_ids=account_ids)
    if debited_ids:
        billing_after_debit.delay(debited_ids)


def batches_mark_ranked() -> int:
    """Stamp finished batches not yet in the rankings: the rankings version just moved past them."""
    return IngestBatch.objects.filter(status=IngestBatch.Status.DONE, ranked_at__isnull=True).update(
        ranked_at=timezone.now())


def batch_cleanup(*, batch: IngestBatch) -> None:
    """Remove the decompressed copy of a finished batch (the source file is the user's)."""
    path = Path(batch.path)
    if path.parent == _ingest_dir() and path.name.startswith("batch-") and path.exists():
        path.unlink()


def upload_store(*, chunks: Iterator[bytes], suffix: str = ".ndjson") -> Path:
    """Write an uploaded body to the ingest folder, where every worker can read it."""
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S%f")
    target = _ingest_dir() / f"upload-{stamp}{suffix}"
    try:
        with target.open("wb") as handle:
            for block in chunks:
                handle.write(block)
    except BaseException:
        target.unlink(missing_ok=True)  # a refused or broken upload leaves nothing behind
        raise
    return target


def file_store(*, source: Path) -> Path:
    """Copy a file into the ingest folder (so a batch survives the source being moved)."""
    target = _ingest_dir() / f"file-{datetime.now(tz=UTC).strftime('%Y%m%dT%H%M%S%f')}-{source.name}"
    shutil.copyfile(source, target)
    return target
