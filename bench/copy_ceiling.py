#!/usr/bin/env python3
"""The ingestion ceiling on this machine: the fastest plain load of the same file.

Reads a JSONL file of routed-traffic records (the `openrouter` format of docs/formats.md),
parses each line with orjson and COPYs twelve raw columns into a scratch
table that has only a primary key and one time index. No validation, no dedupe beyond the key,
no pricing, no rollups. An ingest pipeline is measured against this figure, in the same run
(bench/ingest.py runs both). It is the yardstick issue 3 set, kept here unchanged but for this
docstring and a lint exemption, so the repository measures itself against a file of its own.

Usage: copy_ceiling.py FILE.jsonl POSTGRES_DSN
Needs: orjson, psycopg (3). Drops and recreates table ceiling_events in that database.
Prints one JSON line: {"rows": N, "seconds": S, "rows_per_s": R}
"""
import sys
import time

import orjson
import psycopg

COLUMNS = ("id", "created_at", "model", "provider_name", "origin", "account", "api_key",
           "tokens_prompt", "tokens_completion", "total_cost", "latency", "generation_time")


def main(path: str, dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS ceiling_events")
        conn.execute(
            "CREATE TABLE ceiling_events (id text PRIMARY KEY, created_at timestamptz NOT NULL,"
            " model text, provider_name text, origin text, account text, api_key text,"
            " tokens_prompt bigint, tokens_completion bigint, total_cost numeric,"
            " latency int, generation_time int)")
        conn.execute("CREATE INDEX ON ceiling_events (created_at)")
        rows = 0
        start = time.perf_counter()
        with conn.cursor() as cur, open(path, "rb") as lines:  # noqa: SIM117  (the yardstick as set)
            with cur.copy(f"COPY ceiling_events ({','.join(COLUMNS)}) FROM STDIN") as copy:
                for line in lines:
                    if not line.strip():
                        continue
                    record = orjson.loads(line)
                    record = record.get("data", record)
                    copy.write_row(tuple(record.get(name) for name in COLUMNS))
                    rows += 1
        seconds = time.perf_counter() - start
        conn.execute("DROP TABLE ceiling_events")
    print(orjson.dumps({"rows": rows, "seconds": round(seconds, 3),
                        "rows_per_s": round(rows / seconds)}).decode())


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
