"""An account's generation log: its filter (from a query string) and its pages, newest first, by key set.

Pages walk the index (account, created_at DESC, id DESC) from a cursor, so page 10,000 costs what
page 1 costs, and rows that arrive while someone pages never shift what they see next (no gaps,
no repeats). The log's histogram is `log_histogram`, a generation's cost `cost_breakdown`, its CSV
export `log_export`.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

import orjson
from django.db.models import Q

from analytics.models import Generation, GenerationKey
from core.params import DATE_ERROR, DATE_MAX, DATE_MIN, ParamError, date_param
from core.timerange import midnight

from .filters import Filters, filters_parse

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

