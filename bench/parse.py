#!/usr/bin/env python
"""Parsing and validation alone: records/s of analytics.ingest.formats on an openrouter file.

    .venv/bin/python bench/parse.py FILE.jsonl [--repeat 5]

Prints the median of the runs for the fast path (msgspec) and the checked path alone.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import msgspec  # noqa: E402

from analytics.ingest import formats  # noqa: E402
from analytics.ingest.formats import openrouter  # noqa: E402


def rate(lines) -> float:
    started = time.perf_counter()
    for _ in formats.parse_lines("openrouter", lines):
        pass
    return len(lines) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--limit", type=int, default=200_000)
    options = parser.parse_args()
    with options.file.open("rb") as handle:
        lines = [(n, line) for n, line in zip(range(1, options.limit + 1), handle, strict=False)]
    fast = statistics.median(rate(lines) for _ in range(options.repeat))

    def refuse(data):
        raise msgspec.DecodeError("checked path only")

    openrouter._decode_bare = openrouter._decode_wrapped = refuse
    checked = statistics.median(rate(lines) for _ in range(options.repeat))
    print(f"{len(lines):,} records: fast path {fast:,.0f} records/s, checked path {checked:,.0f} records/s")


if __name__ == "__main__":
    main()
