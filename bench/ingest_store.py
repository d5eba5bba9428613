"""What the ingest store costs a batch: saving a file into it and reading every chunk's range back,
against reading the same ranges from the local file (what chunks did before the store).

    DATABASE_URL=postgres://… .venv/bin/python bench/ingest_store.py FILE [--chunk-lines 50000]

Prints MB/s for each step and the time per chunk. Uses the configured store (INGEST_STORE) and
removes what it saved.
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from analytics.ingest.batches import chunk_ranges  # noqa: E402
from analytics.ingest.store import store_open, store_range, store_remove, store_save  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("--chunk-lines", type=int, default=50_000)
    args = parser.parse_args()
    size = args.file.stat().st_size
    name = f"bench-{os.getpid()}"
    mb = size / 1e6

    with args.file.open("rb") as handle:
        started = time.perf_counter()
        ranges, _ = chunk_ranges(handle, 0, 1, args.chunk_lines)
        local_split = time.perf_counter() - started
    started = time.perf_counter()
    for _, start, end in ranges:
        with args.file.open("rb") as handle:
            handle.seek(start)
            handle.read(end - start)
    local_read = time.perf_counter() - started

    try:
        with args.file.open("rb") as handle:
            started = time.perf_counter()
            store_save(name=name, source=handle)
            saved = time.perf_counter() - started
        with store_open(name=name) as handle:
            started = time.perf_counter()
            stored_ranges, _ = chunk_ranges(handle, 0, 1, args.chunk_lines)
            split = time.perf_counter() - started
        assert stored_ranges == ranges
        started = time.perf_counter()
        for _, start, end in ranges:
            store_range(name=name, start=start, end=end)
        read = time.perf_counter() - started
    finally:
        store_remove(name=name)

    print(f"{args.file.name}: {mb:.1f} MB, {len(ranges)} chunks of {args.chunk_lines} lines")  # noqa: T201
    for step, seconds in (("save into the store", saved), ("split, from the store", split),
                          ("split, local file", local_split), ("chunk ranges, from the store", read),
                          ("chunk ranges, local file", local_read)):
        print(f"  {step:30} {seconds:7.2f} s  {mb / seconds:8.0f} MB/s")  # noqa: T201
    print(f"  per chunk from the store: {1000 * read / len(ranges):.0f} ms")  # noqa: T201


if __name__ == "__main__":
    main()
