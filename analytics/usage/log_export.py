"""generations.csv: an account's generations under the log's filter, streamed straight out of
`COPY (SELECT …) TO STDOUT`, with formula-like text cells neutralized in SQL."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, tzinfo

from django.db import connection, transaction

from analytics import cost_sources
from core.csvutil import DANGEROUS_PREFIXES, NUMBER_PATTERN
from core.timerange import days_span

from .filters import FILTER_COLUMNS
from .generation_log import LogFilter

# (header, SQL expression over g = generation, m = model, p = provider, a = app, k = api key, untrusted text)
CSV_COLUMNS = (
    ("id", "g.id", True),
    ("created_at", "g.created_at", False),
    ("model", "m.slug", True),
    ("provider", "p.slug", True),
    ("app", "a.name", True),
    ("app_origin", "a.origin", True),
    ("api_key", "k.external_id", True),
    ("end_user", "g.end_user", True),
    ("session_id", "g.session_id", True),
    ("tags", "g.tags", True),
    ("tokens_prompt", "g.tokens_prompt", False),
    ("tokens_completion", "g.tokens_completion", False),
    ("tokens_reasoning", "g.tokens_reasoning", False),
    ("tokens_cached", "g.tokens_cached", False),
    ("total_cost_usd", "g.cost_units", False),
    ("cost_priced_by_tokengrid", f"(NOT {cost_sources.GATEWAY.sql('g.cost_source')})", False),
    ("is_byok", "g.is_byok", False),
    ("latency_ms", "g.latency", False),
    ("generation_time_ms", "g.generation_time", False),
    ("status", "g.status", False),
    ("finish_reason", "g.finish_reason", True),
    ("streamed", "g.streamed", False),
    ("cancelled", "g.cancelled", False),
    ("num_media_prompt", "g.num_media_prompt", False),
    ("num_media_completion", "g.num_media_completion", False),
    ("num_search_results", "g.num_search_results", False),
    ("provider_responses", "g.provider_responses", True),
    ("batch_id", "g.batch_id", False),
)



CSV_HEADER = [name for name, _, _ in CSV_COLUMNS]



_RANGE = "g.account_id = %s AND g.created_at >= %s AND g.created_at < %s"



_ORDER = "ORDER BY g.created_at, g.id"



_NUMBER = NUMBER_PATTERN



# core.csvutil's prefixes as SQL characters; all sort below 'A', which the ascii() pre-test relies on.
_PG_PREFIXES = ", ".join(f"chr({ord(prefix)})" for prefix in DANGEROUS_PREFIXES)



def pg_safe(text: str) -> str:
    """core.csvutil.safe_cell's rule in SQL: formula-like text gets a leading quote.

    `ascii() < 65` first: every dangerous first character sorts below 'A', so an ordinary cell
    costs one integer test instead of six comparisons of a copied first letter.
    """
    return (f"CASE WHEN ascii({text}) < 65 AND left({text}, 1) IN ({_PG_PREFIXES})"
            f" AND {text} !~ '{_NUMBER}' THEN '''' || {text} ELSE {text} END")



def _pg_names(table: str, column: str) -> str:
    """A jsonb array holding each row's neutralized `column` at the position of its id.

    Uncorrelated, so PostgreSQL computes it once (an InitPlan); `->> id` then finds a row's name
    in constant time. No join is left in the export's plan: it is the account index read in
    order. Catalog ids are dense (registration inserts only missing names), so the array is about
    as long as the table.
    """
    return (f"(SELECT jsonb_agg({pg_safe(f't.{column}')} ORDER BY s.i) FROM generate_series(0,"
            f" (SELECT coalesce(max(id), 0) FROM {table})) s(i) LEFT JOIN {table} t ON t.id = s.i)")



# An account's key ids are not dense: its keys in a jsonb object by id.
_PG_KEYS = (f"(SELECT jsonb_object_agg(k.id, {pg_safe('k.external_id')}) FROM billing_apikey k"
            " WHERE k.account_id = %s)")



_PG_NAMES = {
    "model": f"{_pg_names('marketplace_model', 'slug')} ->> g.model_id::int",
    "provider": f"{_pg_names('marketplace_provider', 'slug')} ->> g.provider_id::int",
    "app": f"{_pg_names('marketplace_app', 'name')} ->> g.app_id::int",
    "app_origin": f"{_pg_names('marketplace_app', 'origin')} ->> g.app_id::int",
    "api_key": f"{_PG_KEYS} ->> g.api_key_id::text",
}



def _pg_column(name: str, expression: str, untrusted: bool) -> str:
    # Text built directly: one to_char() for the time, integer arithmetic for the cost (numeric
    # division costs more). Costs are never negative (the parser rejects them).
    if name in _PG_NAMES:
        return _PG_NAMES[name]
    if name == "created_at":
        return "to_char(g.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    if name == "tags":
        return pg_safe("btrim(g.tags, ',')")
    if name == "total_cost_usd":
        return "(g.cost_units / 10000000000)::text || '.' || lpad((g.cost_units %% 10000000000)::text, 10, '0')"
    if name in ("cost_priced_by_tokengrid", "is_byok", "streamed", "cancelled"):
        return f"{expression}::text"  # 'true' or 'false' (boolean to text; NULL stays NULL)
    if name == "provider_responses":
        # JSON text starts with [, {, ", a digit, t, f, n or a minus sign followed by a digit (a
        # number, left alone by the rule below too): never a formula. One jsonb-to-text, not three.
        return f"{expression}::text"
    if untrusted:
        return pg_safe(f"{expression}::text")
    return expression



def log_filter_sql(log_filter: LogFilter | None) -> tuple[str, list]:
    """The log filter (but its dates: the export's range is its own) as SQL on `g`: " AND …" and parameters."""
    if log_filter is None:
        return "", []
    clauses, params = [], []
    for dimension, values in log_filter.filters.items:
        column = f"g.{FILTER_COLUMNS[dimension]}"
        if dimension == "tag":
            clauses.append("(" + " OR ".join(["strpos(g.tags, %s) > 0"] * len(values)) + ")")
            params.extend(f",{tag}," for tag in values)
            continue
        ids = [v for v in values if v or dimension not in ("api_key", "app")]
        match = [f"{column} IN ({', '.join(['%s'] * len(ids))})"] if ids else []
        if len(ids) < len(values):  # 0: no key / no app, NULL in the generation table
            match.append(f"{column} IS NULL")
        clauses.append("(" + " OR ".join(match) + ")")
        params.extend(ids)
    if log_filter.session is not None:
        clauses.append("g.session_id = %s")
        params.append(log_filter.session)
    if log_filter.generation_id:
        clauses.append("g.id = %s")
        params.append(log_filter.generation_id)
    if log_filter.status == "ok":
        clauses.append("(g.status >= 200 AND g.status < 300)")
    elif log_filter.status == "error":
        clauses.append("NOT (g.status >= 200 AND g.status < 300)")
    return "".join(f" AND {clause}" for clause in clauses), params



def generations_csv(*, account_id: int, first: date, last: date, log_filter: LogFilter | None = None,
                    zone: tzinfo = UTC) -> Iterator[bytes]:
    """Every field of every generation of the account in [first, last] (dates of `zone`) under the log's
    filter (its dates aside), oldest first; times in the file are UTC."""
    start, end = days_span(first, last, zone)
    yield (",".join(CSV_HEADER) + "\r\n").encode()
    where, params = log_filter_sql(log_filter)
    yield from _csv_copy(account_id, start, end, where, params)



# The order is the account index (account, created_at DESC, id DESC) read backwards. Left alone,
# once the account holds a large share of the table the planner prefers a parallel scan of all of
# it and a sort of the range (slower, and the sort spills to disk), and on two cores parallel
# workers only compete with this backend and the process reading it. jit off: compiling the
# expressions costs more than it saves on one account's rows.
PG_EXPORT_SETTINGS = ("SET LOCAL enable_sort = off", "SET LOCAL max_parallel_workers_per_gather = 0",
                      "SET LOCAL jit = off")



def pg_export_select(where: str = "") -> str:
    """The export's SELECT on PostgreSQL (parameters: `pg_export_params`), `where` ANDed to the range."""
    select = ", ".join(_pg_column(*column) for column in CSV_COLUMNS)
    return f"SELECT {select} FROM analytics_generation g WHERE {_RANGE}{where} {_ORDER}"



def pg_export_params(account_id: int, start: datetime, end: datetime, extra: list | tuple = ()) -> tuple:
    return (account_id, account_id, start, end, *extra)  # the account's keys, the range, the filter



def _csv_copy(account_id: int, start: datetime, end: datetime, where: str = "",
                  params: list | tuple = ()) -> Iterator[bytes]:
    # COPY takes no %-style escapes of its own: the filter's text goes in as parameters.
    sql = f"COPY ({pg_export_select(where)}) TO STDOUT WITH (FORMAT csv)"
    connection.ensure_connection()
    with transaction.atomic(), connection.connection.cursor() as cursor:
        for setting in PG_EXPORT_SETTINGS:
            cursor.execute(setting)
        yield from _copy_blocks(cursor, sql, pg_export_params(account_id, start, end, params))



def _copy_blocks(cursor, sql: str, params: tuple) -> Iterator[bytes]:
    with cursor.copy(sql, params) as copy:
        buffer = bytearray()
        for block in copy:
            buffer += block
            if len(buffer) >= 256 * 1024:
                yield bytes(buffer)
                buffer.clear()
        if buffer:
            yield bytes(buffer)

