"""python manage.py ingest FILE... [--format auto|openrouter|litellm|csv] [--wait]"""
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from analytics.ingest import formats
from analytics.ingest.batches import FINISHED, batch_wait
from analytics.ingest.files import IngestError
from analytics.ingest.tasks import batch_queue
from analytics.models import IngestBatch

WAIT_INTERVAL_SECONDS = 0.5


class Command(BaseCommand):
    help = "Queue routed-traffic log files for ingestion; with --wait, show progress until done."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--format", default="auto", choices=("auto", *formats.FORMATS))
        parser.add_argument("--wait", action="store_true", help="show progress until every file is done and in the public rankings")
        parser.add_argument("--timeout", type=float, default=0, help="with --wait: give up after this many seconds")

    def handle(self, *args, files, format, wait, timeout, **options):
        batches: list[IngestBatch] = []
        unreadable = 0
        for path in files:
            try:
                batch = batch_queue(path=path, source=path.name, fmt=format)
            except IngestError as error:
                unreadable += 1
                self.stderr.write(f"{path}: {error}")
                continue
            batches.append(batch)
            self.stdout.write(f"{path}: queued as batch {batch.pk}")
        failed = 0
        if wait and batches:
            batches = self._wait(batches, timeout)
            for batch in batches:
                if batch.status == IngestBatch.Status.FAILED:
                    failed += 1
                    self.stderr.write(f"{batch.source}: batch {batch.pk} failed: {batch.error}")
                else:
                    self.stdout.write(f"{batch.source}: {batch.accepted} accepted, {batch.duplicates} duplicates, "
                                      f"{batch.rejected} rejected ({batch.format}, {batch.lines} lines"
                                      + (f", {batch.seconds:.1f} s" if batch.seconds else "") + ")"
                                      + ("; in the public rankings" if batch.accepted else ""))
        if unreadable or failed:
            raise CommandError(f"{unreadable} unreadable file(s), {failed} failed batch(es)")

    def _wait(self, batches: list[IngestBatch], timeout: float) -> list[IngestBatch]:
        ids = [b.pk for b in batches]
        interactive = sys.stdout.isatty()
        last = None

        def progress(current: list[IngestBatch]) -> None:
            nonlocal last
            finished = [b for b in current if b.status in FINISHED]
            total = sum(b.chunks_total for b in current) or 1
            done = sum(b.chunks_done for b in current)
            records = sum(b.accepted + b.duplicates + b.rejected for b in current)
            width = 30
            filled = int(width * done / total)
            line = (f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} chunks, {records:,} records, "
                    f"{len(finished)}/{len(current)} files done")
            if line != last:
                self.stdout.write(("\r" if interactive else "") + line, ending="" if interactive else "\n")
                self.stdout.flush()
                last = line

        current = batch_wait(batch_ids=ids, timeout=timeout or None, interval=WAIT_INTERVAL_SECONDS,
                             ranked=True, progress=progress)
        if any(b.status not in FINISHED for b in current):
            raise CommandError(f"gave up waiting after {timeout:.0f} s; batches {ids} are still running")
        if any(b.status == IngestBatch.Status.DONE and not b.in_rankings for b in current):
            raise CommandError(f"gave up waiting after {timeout:.0f} s; batches {ids} are done but not yet in the "
                               "rankings (is a worker on the rollups queue running?)")
        if interactive:
            self.stdout.write("")
        return current
