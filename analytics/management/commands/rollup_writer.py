"""`manage.py rollup_writer [--interval SECONDS] [--once]`: the rollup writer of fold mode (INGEST_ROLLUPS=fold).

Loops: fold the delta into the rollups (analytics.ingest.fold.rollups_fold), sleep `--interval`
(ROLLUP_FOLD_INTERVAL, 2 s) unless the fold took all it may. One transaction per fold: killed or
disconnected mid-fold, it rolls back and the next fold (this process's after a lost connection, or a
restarted one's) takes the same rows. Several writers may run; the advisory lock lets one fold at a time.
SIGTERM or SIGINT ends it after the fold in progress.
"""
import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, connection

from analytics.ingest.fold import rollups_fold

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Fold the rollup delta into the rollups every few seconds (INGEST_ROLLUPS=fold)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=None,
                            help="seconds between folds (default: ROLLUP_FOLD_INTERVAL)")
        parser.add_argument("--once", action="store_true", help="fold until the delta is empty, then exit")

    def handle(self, *args, interval: float | None, once: bool, **options):
        interval = settings.ROLLUP_FOLD_INTERVAL if interval is None else interval
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"rollup writer: folding every {interval:g} s", ending="\n")
        self.stdout.flush()
        while not stopping:
            try:
                folded = rollups_fold()
            except DatabaseError as error:  # a dropped connection: the fold rolled back; start again
                log.warning("fold failed, retrying: %s", error)
                connection.close()
                time.sleep(min(interval, 1.0))
                continue
            if folded is not None and folded.rows + folded.attempts:
                self.stdout.write(f"folded {folded.rows} rows, {folded.attempts} attempts of {folded.accounts} "
                                  f"accounts in {folded.seconds:.3f} s")
                self.stdout.flush()
            if folded is not None and folded.full:
                continue
            if once and folded is not None:
                return
            time.sleep(interval)
