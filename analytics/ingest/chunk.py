"""One chunk of a batch, parsed, registered, priced and applied exactly once.

`chunk_ingest` parses the chunk's lines, builds its stage rows (`stage`), then in ONE transaction
inserts the new generations, adds exactly those rows into the rollups (`loader`), debits the
accounts, keeps the rejects and marks the chunk done; after commit `chunk_fan_out` sets off the rest.
A chunk that was applied is marked done in the transaction that applied it, so a redelivered or
retried task finds it done and changes nothing; a chunk that died mid-way rolled back whole.
"""
from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from analytics.counters import SPEND
from analytics.models import IngestBatch, IngestChunk, Reject
from billing.budgets import budgets_chunk_apply
from billing.ledger import ledger_debit_usage
from core.id_cache import registry_confirm

from . import formats, loader
from .fanout import chunk_fan_out
from .files import batch_files_remove
from .stage import stage_rows
from .store import store_range

log = logging.getLogger(__name__)

RAW_LIMIT = 2048


@dataclass(frozen=True)
class ChunkResult:
    lines: int
    accepted: int
    duplicates: int
    rejected: int
    skipped: bool = False


def _chunk_lines(path: str, start: int, end: int, first_line: int) -> Iterator[tuple[int, bytes]]:
    data = store_range(name=path, start=start, end=end)  # from the store, on whichever host runs the chunk
    for offset, line in enumerate(data.split(b"\n")):
        yield first_line + offset, line


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
    stage, extra_attempts = stage_rows(records, batch_id) if records else ([], [])

    with transaction.atomic():
        locked = IngestChunk.objects.select_for_update().get(pk=chunk.pk)
        if locked.done:  # another worker applied it while we parsed
            return ChunkResult(locked.lines, locked.accepted, locked.duplicates, locked.rejected, skipped=True)
        if stage:
            registry_confirm()  # no name deleted or renamed since `stage_rows` took its ids (else retried)
        applied = loader.apply(stage=stage, extra_attempts=extra_attempts)
        Reject.objects.bulk_create(rejects, batch_size=1000)
        debited = ledger_debit_usage(spend_by_account=applied.spend_by_account,
                                     idempotency_prefix=f"ingest:batch:{batch_id}:chunk:{index}")
        accounts = sorted({row.account_id for row in stage}) if applied.inserted else []
        if applied.inserted:  # the budgets' spend and the reservations these generations settle, on sets
            budgets_chunk_apply(stage_table=loader.STAGE_TABLE, spend_sql=SPEND,
                                spending_account_ids=applied.spend_by_account, account_ids=accounts)
        duplicates = len(stage) - applied.inserted + in_chunk_duplicates
        result = ChunkResult(lines=len(records) + in_chunk_duplicates + len(rejects), accepted=applied.inserted,
                             duplicates=duplicates, rejected=len(rejects))
        IngestChunk.objects.filter(pk=chunk.pk).update(
            done=True, lines=result.lines, accepted=result.accepted, duplicates=result.duplicates,
            rejected=result.rejected, finished_at=timezone.now())
        IngestBatch.objects.filter(pk=batch_id).update(
            accepted=F("accepted") + result.accepted, duplicates=F("duplicates") + result.duplicates,
            rejected=F("rejected") + result.rejected, unpriced=F("unpriced") + applied.unpriced,
            chunks_done=F("chunks_done") + 1)
        batch_end = bool(IngestBatch.objects.filter(pk=batch_id, chunks_done=F("chunks_total")).exclude(
            status=IngestBatch.Status.FAILED).update(status=IngestBatch.Status.DONE, finished_at=timezone.now()))
        if batch_end:
            transaction.on_commit(lambda: batch_files_remove(path=batch.path))  # the last chunk: nobody reads it
        # A file's end moves the rankings at once (a backfill someone waits for, `ingest --wait`); a body
        # POSTed by a gateway is a slice of a stream, one chunk each second or so: its end follows the
        # rankings' rate limit like any chunk, or every body would recompute every leaderboard
        # (bench/freshness.py: 5-8 s of a worker per body, more than the chunks themselves).
        rank_now = batch_end and batch.source != IngestBatch.API_SOURCE
        if applied.inserted or batch_end:
            transaction.on_commit(lambda: chunk_fan_out(account_ids=accounts, debited_ids=debited,
                                                        batch_end=rank_now))
    log.info("batch %s chunk %s: %s lines, %s accepted, %s duplicates, %s rejected",
             batch_id, index, result.lines, result.accepted, result.duplicates, result.rejected)
    return result
