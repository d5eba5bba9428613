#!/usr/bin/env python
"""The database cost of the dedupe + insert of one chunk: plain table keyed by id against partitions + key table.

    .venv/bin/python bench/dedupe.py --plain DB1 --partitioned DB2 [--rows 50000] [--rounds 5]

DB1 holds generations in the plain table (before migration 0007), DB2 in monthly partitions with
the key table (after); fill both with `bench/ingest.py` from the same file. Each round, in each
database in turn, inside a transaction that is rolled back: stage `--rows` rows copied from
existing generations (new ids, or the same ids for the all-duplicates case), then time only the
statements that decide which rows are new and insert them, as `analytics.ingest.loader` ran them before
partitioning, after it (75174fc: the key insert with ON CONFLICT), and since 3cb4bc7 (a plain key
insert in a savepoint first, ON CONFLICT only when it meets a duplicate). Prints one JSON line: per case and database the median ms per chunk and
µs per row.
"""
import argparse
import json
import statistics
import time

import psycopg

COLUMNS = ("id, created_at, account_id, api_key_id, model_id, provider_id, app_id, batch_id, tokens_prompt,"
           " tokens_completion, tokens_reasoning, tokens_cached, cost_units, cost_source, is_byok, latency,"
           " generation_time, status, finish_reason, streamed, cancelled, num_media_prompt, num_media_completion,"
           " num_search_results, provider_responses")
STAGE = f"CREATE TEMP TABLE ingest_stage ON COMMIT DROP AS SELECT {COLUMNS} FROM analytics_generation LIMIT 0"
BEFORE = (f"WITH ins AS (INSERT INTO analytics_generation ({COLUMNS}) SELECT {COLUMNS} FROM ingest_stage"
          " ORDER BY id ON CONFLICT (id) DO NOTHING RETURNING id)"
          " DELETE FROM ingest_stage s WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.id = s.id)",)
HORIZON = ("COALESCE((SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']*)''\\)'))[1]"
           "::timestamptz FROM pg_class c WHERE c.oid = to_regclass('analytics_generation_expired')),"
           " '-infinity'::timestamptz)")
LOCK = "LOCK TABLE analytics_generation IN ROW EXCLUSIVE MODE"
KEYS = ("INSERT INTO analytics_generationkey (id, created_at) SELECT id, created_at FROM ingest_stage"
        f" WHERE created_at >= {HORIZON} ORDER BY id")
KEYS_SKIPPING = (f"WITH k AS ({KEYS} ON CONFLICT (id) DO NOTHING RETURNING id)"
                 " DELETE FROM ingest_stage s WHERE NOT EXISTS (SELECT 1 FROM k WHERE k.id = s.id)")
GENERATIONS = f"INSERT INTO analytics_generation ({COLUMNS}) SELECT {COLUMNS} FROM ingest_stage"
AFTER = (LOCK, KEYS_SKIPPING, GENERATIONS)  # as in commit 75174fc


def plain_insert_first(conn: psycopg.Connection, cursor) -> None:
    """As analytics.ingest.loader runs it since 3cb4bc7: a plain key insert in a savepoint, ON CONFLICT if it fails."""
    cursor.execute(LOCK)
    try:
        with conn.transaction():
            cursor.execute(KEYS)
    except psycopg.errors.UniqueViolation:
        cursor.execute(KEYS_SKIPPING)
    cursor.execute(GENERATIONS)


def one_chunk(conn: psycopg.Connection, statements, rows: int, offset: int, fresh: bool) -> float:
    new_id = "'bench-' || %s || '-' || id" if fresh else "id"
    with conn.transaction(force_rollback=True), conn.cursor() as cursor:
        cursor.execute(STAGE)
        cursor.execute(f"INSERT INTO ingest_stage SELECT {new_id} AS id, {COLUMNS.split(', ', 1)[1]}"
                       " FROM analytics_generation ORDER BY created_at OFFSET %s LIMIT %s",
                       (offset, offset, rows) if fresh else (offset, rows))
        cursor.execute("ANALYZE ingest_stage")
        started = time.perf_counter()
        if callable(statements):
            statements(conn, cursor)
        else:
            for sql in statements:
                cursor.execute(sql)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plain", required=True)
    parser.add_argument("--partitioned", required=True)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    targets = {"plain table (before)": (options.plain, BEFORE),
               "key table ON CONFLICT + partitions (75174fc)": (options.partitioned, AFTER),
               "key table plain insert first + partitions (3cb4bc7)": (options.partitioned, plain_insert_first)}
    conns = {name: psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db}", autocommit=True)
             for name, (db, _) in targets.items()}
    result = {"rows_per_chunk": options.rows, "rounds": options.rounds}
    for case, fresh in (("new rows", True), ("all duplicates", False)):
        samples = {name: [] for name in targets}
        for round_ in range(options.rounds):
            for name, (_, statements) in targets.items():  # alternate, so load drifts hit both alike
                samples[name].append(one_chunk(conns[name], statements, options.rows, round_ * options.rows, fresh))
        result[case] = {name: {"ms_per_chunk": round(statistics.median(s) * 1000, 1),
                               "us_per_row": round(statistics.median(s) * 1e6 / options.rows, 2)}
                        for name, s in samples.items()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
