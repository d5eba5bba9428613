"""An account's generation log: filtered, newest first, paged by key set; and its CSV export.

Pages walk the index (account, created_at DESC, id DESC) from a cursor, so page 10,000 costs what
page 1 costs, and rows that arrive while someone pages never shift what they see next (no gaps,
no repeats). The CSV streams straight out of `COPY (SELECT …) TO STDOUT`, with formula-like text
cells neutralized in SQL.
"""
from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo

import orjson
from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from analytics import cost_sources
from analytics.models import AccountDay, Generation, GenerationKey
from billing.models import ApiKey
from core.csvutil import DANGEROUS_PREFIXES, NUMBER_PATTERN
from core.money import usd_to_units
from core.params import DATE_ERROR, DATE_MAX, DATE_MIN, ParamError, date_param
from core.timerange import days_span, local_day, midnight
from marketplace.models import App, EndpointPrice, Model, Provider
from marketplace.pricing import CostParts, Prices, prices_in_force

from . import sources
from .filters import FILTER_COLUMNS, Filters, filters_parse
from .queries import dimension_names

STATUSES = {"ok": Q(status__gte=200, status__lt=300), "error": ~Q(status__gte=200, status__lt=300)}
PAGE_SIZE = 50


@dataclass(frozen=True)
class LogFilter:
    """What the log shows: the slice filters every account page shares, plus the log's own.

    `filters` (analytics.usage.filters: model, provider, api_key, app, user, tag; repeated means
    `in`), `session` (session_id, exact), `generation_id` (exact search: one id of this account, or
    nothing), status and a range of dates of the account's zone (`end` exclusive).
    """

    filters: Filters = Filters()
    session: str | None = None
    generation_id: str = ""
    status: str = ""
    start: datetime | None = None
    end: datetime | None = None  # exclusive
    zone: tzinfo = UTC  # whose dates `start` and `end` are midnights of

    def q(self) -> Q:
        q = self.filters.generation_q()
        if self.session is not None:
            q &= Q(session_id=self.session)
        if self.generation_id:
            q &= Q(id=self.generation_id)
        if self.status in STATUSES:
            q &= STATUSES[self.status]
        if self.start:
            q &= Q(created_at__gte=self.start)
        if self.end:
            q &= Q(created_at__lt=self.end)
        return q

    def query(self) -> list[tuple[str, str]]:
        """The URL parameters that read back as this filter (without the cursor)."""
        pairs = self.filters.query()
        if self.session is not None:
            pairs.append(("session", self.session))
        if self.generation_id:
            pairs.append(("id", self.generation_id))
        if self.status:
            pairs.append(("status", self.status))
        if self.start:
            pairs.append(("start", self.start.astimezone(self.zone).date().isoformat()))
        if self.end:
            pairs.append(("end", (self.end - timedelta(microseconds=1)).astimezone(self.zone).date().isoformat()))
        return pairs


SESSION_MAX = 128
ID_MAX = 256


def log_filter_parse(params, *, zone: tzinfo = UTC) -> LogFilter:
    """The log's filter from a query string (a QueryDict): filters.py's slice parameters, `session`
    (`session=` with nothing is "no session"), `id`, `status` and `start`/`end` dates (of `zone`).

    An unusable id, user, tag or date raises ParamError naming every unusable parameter; an
    unknown status is no filter.
    """
    values, problems = {}, []
    try:
        filters = filters_parse(params)
    except ParamError as error:
        problems.append(str(error))
    for field in ("start", "end"):
        try:
            values[field] = date_param(params.get(field))
        except ParamError:
            problems.append(f"{field}: {DATE_ERROR}")
    session = params.get("session") if "session" in params else None  # "session=": no session
    if session is not None and len(session) > SESSION_MAX:
        problems.append(f"session: at most {SESSION_MAX} characters.")
    generation_id = (params.get("id") or "").strip()
    if len(generation_id) > ID_MAX:
        problems.append(f"id: at most {ID_MAX} characters.")
    if problems:
        raise ParamError(" ".join(problems))
    start, end = values.pop("start"), values.pop("end")
    return LogFilter(
        filters=filters, session=session, generation_id=generation_id,
        status=params.get("status", "") if params.get("status") in STATUSES else "",
        start=midnight(start, zone) if start else None, end=midnight(end + timedelta(days=1), zone) if end else None,
        zone=zone)


def cursor_encode(created_at: datetime, generation_id: str) -> str:
    raw = orjson.dumps([created_at.astimezone(UTC).isoformat(), generation_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(value: str | None) -> tuple[datetime, str] | None:
    """The (created_at, id) a page continues after; None for a missing or mangled cursor."""
    if not value:
        return None
    try:
        stamp, generation_id = orjson.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        created = datetime.fromisoformat(stamp)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        return None
    if created.tzinfo is None or not isinstance(generation_id, str):
        return None
    try:  # a hand-made cursor at the calendar's edge (year 1 at +05:00) has no UTC time
        day = created.astimezone(UTC).date()
    except OverflowError:
        return None
    return (created, generation_id) if DATE_MIN <= day <= DATE_MAX else None


@dataclass(frozen=True)
class LogPage:
    rows: list[Generation]
    next_cursor: str | None


def generations_page(*, account_id: int, log_filter: LogFilter, after: str | None = None,
                     size: int = PAGE_SIZE) -> LogPage:
    """One page of the account's generations, newest first, after the cursor."""
    rows = Generation.objects.filter(Q(account_id=account_id) & log_filter.q())
    if log_filter.generation_id:  # one month's partition on PostgreSQL, not a probe of each
        rows = generations_with_id(rows, log_filter.generation_id)
    position = cursor_decode(after)
    if position:
        created, generation_id = position
        # The redundant `created_at <= cursor` is what the index (and partition pruning) can use:
        # without it the OR is a filter and page N reads the N pages before it.
        rows = rows.filter(Q(created_at__lte=created),
                           Q(created_at__lt=created) | Q(created_at=created, id__lt=generation_id))
    page = list(rows.order_by("-created_at", "-id")[: size + 1])
    more = len(page) > size
    page = page[:size]
    return LogPage(rows=page, next_cursor=cursor_encode(page[-1].created_at, page[-1].id) if more else None)


def generation_of(*, account_id: int, generation_id: str) -> Generation:
    """One generation of the account (DoesNotExist for anyone else's)."""
    return generations_with_id(Generation.objects.filter(account_id=account_id), generation_id).get()


def generations_with_id(rows, generation_id: str):
    """`rows` narrowed to the generation with this id (the detail page and the admin).

    The key table gives the generation's `created_at` first, so the lookup reads one month's
    partition instead of probing every month (the partitions have no index on id alone).
    """
    return rows.filter(id=generation_id,
                       created_at=GenerationKey.objects.filter(id=generation_id).values("created_at")[:1])


HISTOGRAM_MAX_DAYS = 90
HISTOGRAM_DEFAULT_DAYS = 30
HOURLY_MAX_DAYS = 2


@dataclass(frozen=True)
class Histogram:
    unit: str  # "hour" or "day"
    start: datetime
    end: datetime  # exclusive
    bars: list[tuple[datetime, int]]  # every bucket of the range, empty ones too
    capped: bool  # the filter's range was longer than HISTOGRAM_MAX_DAYS: only its last days are counted

    @property
    def peak(self) -> int:
        return max((count for _, count in self.bars), default=0)

    @property
    def total(self) -> int:
        return sum(count for _, count in self.bars)


def histogram_counts(*, account_id: int, log_filter: LogFilter, unit: str, zone: tzinfo = UTC):
    """(bucket, requests) of the account's generations under the filter, whose dates bound the scan;
    days of `zone`, hours of UTC (the same hours in a whole-hour zone, and no ambiguous hour at DST)."""
    trunc = TruncHour if unit == "hour" else TruncDay
    return (Generation.objects.filter(Q(account_id=account_id) & log_filter.q())
            .annotate(bucket=trunc("created_at", tzinfo=UTC if unit == "hour" else zone)).values("bucket")
            .annotate(n=Count("id")).values_list("bucket", "n"))


# What the rollups count under a status filter: every request, the successful ones, the failed ones.
_ROLLUP_COUNTS = {"": F("requests"), "ok": F("requests") - F("failed"), "error": F("failed")}


def rollup_histogram_counts(*, account_id: int, log_filter: LogFilter, unit: str, start: datetime,
                            end: datetime) -> dict[datetime, int] | None:
    """Requests per bucket from the account rollups, when they answer exactly: a filter on their
    dimensions and status only (no session, no id) and a range of whole UTC hours (any zone a whole
    number of hours from UTC), by a rollup holding every filtered dimension (`sources.rollup_for`);
    None otherwise. One grouped query: a daily rollup for UTC days, else AccountHour summed per hour
    by the database and into local days here."""
    if log_filter.session is not None or log_filter.generation_id or start.minute or end.minute:
        return None
    zone, count = log_filter.zone, _ROLLUP_COUNTS[log_filter.status]
    condition = log_filter.filters.rollup_q()
    filtered = [FILTER_COLUMNS[d] for d, _ in log_filter.filters.items]
    daily = unit == "day" and zone is UTC
    rollup = sources.rollup_for(filtered, hourly=not daily)
    if rollup is None:  # users or tags with another dimension, or by the hour: only the log has them
        return None
    if daily:
        days = (rollup.objects.filter(condition, account_id=account_id, day__gte=start.date(), day__lt=end.date())
                .values_list("day").annotate(n=Sum(count)).values_list("day", "n").order_by())
        return {midnight(day): int(n or 0) for day, n in days}
    hours = (rollup.objects.filter(condition, account_id=account_id, hour__gte=start, hour__lt=end)
             .values_list("hour").annotate(n=Sum(count)).values_list("hour", "n").order_by())
    if unit == "hour":
        return {hour: int(n or 0) for hour, n in hours}
    out: dict[datetime, int] = {}
    for hour, n in hours:
        day = midnight(local_day(hour, zone), zone)
        out[day] = out.get(day, 0) + int(n or 0)
    return out


def requests_histogram(*, account_id: int, log_filter: LogFilter, now: datetime | None = None) -> Histogram:
    """Requests per day (per hour when the range is at most two days) under the log's filter.

    Counted from the account rollups when they answer exactly (`rollup_histogram_counts`: a busy
    account's 90 days are 90 day rows, not millions of generations), else from the generation table,
    reading only this account's rows in the range through the (account, created_at) index. The range
    is the filter's dates (default: the last 30 days) and at most HISTOGRAM_MAX_DAYS: a longer range
    counts its last 90 days and says so.
    """
    zone = log_filter.zone
    now = now or timezone.now()
    end = log_filter.end or midnight(now.astimezone(zone).date() + timedelta(days=1), zone)
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    first = log_filter.start.astimezone(zone).date() if log_filter.start else last - timedelta(days=HISTOGRAM_DEFAULT_DAYS - 1)
    capped = (last - first).days >= HISTOGRAM_MAX_DAYS
    if capped:
        first = last - timedelta(days=HISTOGRAM_MAX_DAYS - 1)
    start = max(log_filter.start, midnight(first, zone)) if log_filter.start else midnight(first, zone)
    unit = "hour" if end - start <= timedelta(days=HOURLY_MAX_DAYS) else "day"
    counts = rollup_histogram_counts(account_id=account_id, log_filter=log_filter, unit=unit, start=start, end=end)
    if counts is None:
        counted = histogram_counts(account_id=account_id, log_filter=replace(log_filter, start=start, end=end),
                                   unit=unit, zone=zone)
        counts = {bucket.astimezone(UTC): n for bucket, n in counted}
    if unit == "hour":
        # UTC hours; in a zone such as +05:30 the range's first and last are partial (its dates bound the count).
        at = start.replace(minute=0, second=0, microsecond=0)
        moments = []
        while at < end:
            moments.append(at)
            at += timedelta(hours=1)
    else:  # local days: 23 or 25 hours long when the clocks change
        moments = [midnight(date.fromordinal(n), zone) for n in range(first.toordinal(), last.toordinal() + 1)]
    bars = [(at, counts.get(at, 0)) for at in moments]
    return Histogram(unit=unit, start=start, end=end, bars=bars, capped=capped)


@dataclass(frozen=True)
class CostBreakdown:
    """A generation's cost by kind of token, at the catalog price in force at its created_at.

    `parts` is None when the catalog has no price for the endpoint. When the gateway sent the cost
    (`from_gateway`), the bill is the gateway's figure and `parts` only what the catalog's price at
    the time would have made of the same tokens: the page says so and never shows it as the bill.
    """

    parts: CostParts | None
    since: datetime | None  # the price row's valid_from; None: the endpoint's current price
    from_gateway: bool

    billed_units: int = 0
    cost_source: int | None = None  # Generation.CostSource

    @property
    def unpriced(self) -> bool:
        """Tokengrid could not price it when it was ingested: $0 is no price here, and nothing was debited."""
        return self.cost_source == Generation.CostSource.UNPRICED

    @property
    def insurance(self) -> bool:
        """Failed or empty, without a gateway cost: $0 by zero-completion insurance."""
        return self.cost_source == Generation.CostSource.INSURANCE

    @property
    def matches_bill(self) -> bool:
        return self.parts is not None and usd_to_units(self.parts.total) == self.billed_units

    @property
    def rows(self) -> list[tuple[str, int, int]]:
        """(part, tokens, cost in units: the exact USD to 1e-10, the bill's own resolution)."""
        p = self.parts
        if p is None:
            return []
        return [("Prompt (uncached)", p.tokens_prompt, usd_to_units(p.prompt)),
                ("Cache reads", p.tokens_cached, usd_to_units(p.cache_read)),
                ("Completion (without reasoning)", p.tokens_completion, usd_to_units(p.completion)),
                ("of the completion: reasoning", p.tokens_reasoning, usd_to_units(p.reasoning))]

    @property
    def total_units(self) -> int | None:
        return None if self.parts is None else usd_to_units(self.parts.total)


def generation_cost(generation: Generation) -> CostBreakdown:
    """The cost breakdown of one generation: at the price row that priced it (`price_id`, set at ingest or by a
    reprice; one query), else at the endpoint's price in force then (two queries)."""
    found = None
    if generation.price_id is not None:
        row = EndpointPrice.objects.filter(pk=generation.price_id).values_list(
            "prompt_price", "completion_price", "cache_read_price", "reasoning_price", "valid_from").first()
        if row is not None:
            *values, valid_from = row
            found = (Prices(*values), valid_from)
    if found is None:
        found = prices_in_force(model_id=generation.model_id, provider_id=generation.provider_id,
                                at=generation.created_at)
    parts = None
    since = None
    if found is not None:
        prices, since = found
        parts = prices.parts(prompt=generation.tokens_prompt, completion=generation.tokens_completion,
                             reasoning=generation.tokens_reasoning, cached=generation.tokens_cached)
    return CostBreakdown(parts=parts, since=since, from_gateway=cost_sources.GATEWAY.of(generation),
                         billed_units=generation.cost_units, cost_source=generation.cost_source)


@dataclass(frozen=True)
class Names:
    models: dict[int, str]
    providers: dict[int, str]
    apps: dict[int, str]
    keys: dict[int, str]


def names_for(rows: list[Generation], *, account_id: int) -> Names:
    """Display names of the models, providers, apps and keys on a page (four queries at most)."""
    def names(dimension: str, attr: str) -> dict[int, str]:
        return dimension_names(dimension, {getattr(r, attr) for r in rows}, account_id=account_id)

    return Names(models=names("model", "model_id"), providers=names("provider", "provider_id"),
                 apps=names("app", "app_id"), keys=names("api_key", "api_key_id"))


def filter_choices(*, account_id: int) -> dict[str, list[tuple[int, str]]]:
    """What the log can be filtered by: the account's keys and what its rollups have seen."""
    seen = AccountDay.objects.filter(account_id=account_id)
    model_ids = seen.values("model_id").distinct()
    provider_ids = seen.values("provider_id").distinct()
    app_ids = seen.exclude(app_id=0).values("app_id").distinct()
    return {
        "model": list(Model.objects.filter(pk__in=model_ids).order_by("slug").values_list("pk", "slug")),
        "provider": list(Provider.objects.filter(pk__in=provider_ids).order_by("name").values_list("pk", "name")),
        "app": [(pk, name or origin) for pk, name, origin in
                App.objects.filter(pk__in=app_ids).order_by("name").values_list("pk", "name", "origin")],
        "api_key": [(pk, name or external) for pk, name, external in
                    ApiKey.objects.filter(account_id=account_id).values_list("pk", "name", "external_id")],
    }


# --- generations.csv ---------------------------------------------------------------------

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
