"""Routed-traffic log formats (../shared/formats.md): detection, parsing and validation.

`parse_lines` turns raw lines into canonical `Record`s or `Rejected`s (line number, reason code,
first 2 KB); it never raises on bad input. Pure Python, no database.
"""
from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated

import msgspec
import orjson

FORMATS = ("openrouter", "litellm", "csv")
RAW_LIMIT = 2048
MAX_INT = 2**53
MAX_COST = Decimal(1_000_000)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
BOM = b"\xef\xbb\xbf"
LIMITS = {"id": 128, "model": 200, "account": 128, "api_key": 128, "provider_name": 200, "origin": 500,
          "app_name": 200, "finish_reason": 40}


class FormatError(ValueError):
    """A file whose format cannot be detected or is unknown."""


class Invalid(Exception):
    """One record's first validation failure; `reason` is the reject code."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Record:
    line: int
    id: str
    created_at: datetime
    account: str
    api_key: str | None
    model: str
    provider_name: str
    origin: str | None
    app_name: str | None
    app_categories: tuple[str, ...]
    tokens_prompt: int
    tokens_completion: int
    tokens_reasoning: int
    tokens_cached: int
    total_cost: Decimal | None
    is_byok: bool
    latency: int | None
    generation_time: int | None
    status: int
    provider_responses: list[dict] | None
    finish_reason: str | None
    streamed: bool | None
    cancelled: bool | None
    num_media_prompt: int | None
    num_media_completion: int | None
    num_search_results: int | None


@dataclass(slots=True)
class Rejected:
    line: int
    reason: str
    raw: str


# ---------------------------------------------------------------- detection


def detect_format(sample: bytes) -> str:
    """Pick the format from the first non-blank record (formats.md, "Detection")."""
    text = sample.lstrip(BOM).strip()
    if not text:
        raise FormatError("cannot detect format: the file has no records")
    if text.startswith(b"{"):
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and "request_id" in obj and "spend" in obj and "tokens_prompt" not in obj:
            return "litellm"
        # JSON Lines with tokens_prompt or a data wrapper; a broken first record is JSON Lines too, so
        # that it is rejected with its reason rather than failing the whole file.
        return "openrouter"
    columns = {c.strip().lower() for c in _csv_row(text.decode("utf-8", errors="replace"))}
    if {"request_id", "spend"} <= columns:
        return "litellm"
    if {"id", "model"} <= columns:
        return "csv"
    raise FormatError("cannot detect format: neither JSON Lines nor a CSV header naming id and model "
                      "(or request_id and spend)")


def read_header(fmt: str, first_line: bytes) -> bytes | None:
    """The header line of a CSV file (None for JSON Lines)."""
    text = first_line.lstrip(BOM).strip()
    if fmt == "openrouter" or text.startswith(b"{"):
        return None
    return text


def _csv_row(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text)), [])


# ---------------------------------------------------------------- field coercion


def _string(obj: dict, field: str, *, required: bool = False, source: str | None = None) -> str | None:
    value = obj.get(source or field)
    if value is None or value == "":
        if required:
            raise Invalid(f"missing:{field}")
        return None
    if not isinstance(value, str):
        if required or field in ("api_key",):
            raise Invalid(f"type:{field}")
        value = str(value)
    limit = LIMITS.get(field)
    if limit and len(value) > limit:
        raise Invalid(f"too_long:{field}")
    return value


def _count(value, field: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise Invalid(f"type:{field}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise Invalid(f"type:{field}")
        number = int(value)
    else:
        raise Invalid(f"type:{field}")
    if number < 0:
        raise Invalid(f"negative:{field}")
    if number > MAX_INT:
        raise Invalid(f"out_of_range:{field}")
    return number


def _optional_count(value, field: str) -> int | None:
    return None if value is None or value == "" else _count(value, field)


def _millis(value, field: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"type:{field}")
    if not math.isfinite(value):
        raise Invalid(f"type:{field}")
    if value < 0:
        raise Invalid(f"negative:{field}")
    if value > 86_400_000:
        raise Invalid(f"out_of_range:{field}")
    return round(value)


def _cost(value) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Invalid("type:total_cost")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid("type:total_cost")
        amount = Decimal(repr(value))  # the shortest text that round-trips: the JSON number as written
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise Invalid("type:total_cost") from None
        if not amount.is_finite():
            raise Invalid("type:total_cost")
    else:
        raise Invalid("type:total_cost")
    if amount < 0:
        raise Invalid("negative:total_cost")
    if amount > MAX_COST:
        raise Invalid("out_of_range:total_cost")
    return amount


def _status(value) -> int:
    if value is None or value == "":
        return 200
    if isinstance(value, bool):
        raise Invalid("type:status")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise Invalid("type:status")
    if not 100 <= value <= 599:
        raise Invalid("out_of_range:status")
    return value


def _flag(value, field: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "t", "y"):
            return True
        if lowered in ("false", "0", "no", "f", "n"):
            return False
    raise Invalid(f"type:{field}")


_latest_cache = [0.0, EARLIEST]


def _latest() -> datetime:
    """Now plus the allowed slack, recomputed at most once a second."""
    now = time.monotonic()
    if now - _latest_cache[0] > 1.0:
        _latest_cache[0], _latest_cache[1] = now, datetime.now(tz=UTC) + FUTURE_SLACK
    return _latest_cache[1]


def _timestamp(value) -> datetime:
    if value is None or value == "":
        raise Invalid("missing:created_at")
    if not isinstance(value, str):
        raise Invalid("bad_timestamp")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid("bad_timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    elif parsed.utcoffset():
        parsed = parsed.astimezone(UTC)
    else:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed < EARLIEST or parsed > _latest():
        raise Invalid("out_of_range:created_at")
    return parsed


_CATEGORY_CACHE: dict[str, tuple[str, ...]] = {}


def _categories(value) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if type(value) is str:
        # An app sends the same categories text with every request: parse each text once.
        cached = _CATEGORY_CACHE.get(value)
        if cached is None:
            if len(_CATEGORY_CACHE) > 10_000:
                _CATEGORY_CACHE.clear()
            cached = _CATEGORY_CACHE[value] = _category_slugs(value.split(","))
        return cached
    return _category_slugs(value if isinstance(value, list) else str(value).split(","))


def _category_slugs(items) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for item in items:
        slug = str(item).strip().lower()[:64]
        if slug:
            seen[slug] = None
    return tuple(seen)


def _responses(value) -> list[dict] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise Invalid("type:provider_responses")
    attempts = []
    for item in value[:50]:
        if not isinstance(item, dict):
            raise Invalid("type:provider_responses")
        name, status, latency = item.get("provider_name"), item.get("status"), item.get("latency")
        if (type(name) is str and 0 < len(name) <= 200 and type(status) is int and 100 <= status <= 599
                and (latency is None or (type(latency) is int and 0 <= latency <= 86_400_000))):
            attempts.append({"provider_name": name, "status": status, "latency": latency})
            continue
        name = item.get("provider_name")
        name = str(name)[:200] if name not in (None, "") else "unknown"
        try:
            status = _status(item.get("status"))
            latency = _millis(item.get("latency"), "provider_responses")
        except Invalid:
            raise Invalid("type:provider_responses") from None
        attempts.append({"provider_name": name, "status": status, "latency": latency})
    return attempts


def _str_field(obj: dict, field: str, required: bool = False) -> str | None:
    """Fast path for a well-formed string field; the checked path otherwise."""
    value = obj.get(field)
    if type(value) is str and 0 < len(value) <= LIMITS.get(field, 1 << 30):
        return value
    return _string(obj, field, required=required)


def _int_field(value, field: str) -> int:
    if type(value) is int and 0 <= value <= MAX_INT:
        return value
    return _count(value, field)


def _ms_field(value, field: str) -> int | None:
    if type(value) is int and 0 <= value <= 86_400_000:
        return value
    return _millis(value, field)


def _record(line: int, obj: dict, *, created_at: datetime | None = None) -> Record:
    """Validate a canonical-field dict into a Record (openrouter and generic csv)."""
    get = obj.get
    record_id = _str_field(obj, "id", True)
    created = created_at or _timestamp(get("created_at"))
    account = _str_field(obj, "account", True)
    model = _str_field(obj, "model", True)
    reasoning = get("native_tokens_reasoning")
    if reasoning is None:
        reasoning = get("tokens_reasoning")
    cached = get("native_tokens_cached")
    if cached is None:
        cached = get("tokens_cached")
    status = get("status")
    byok = get("is_byok")
    streamed = get("streamed")
    cancelled = get("cancelled")
    categories = get("app_categories")
    media_prompt = get("num_media_prompt")
    media_completion = get("num_media_completion")
    searches = get("num_search_results")
    return Record(
        line, record_id, created, account, _str_field(obj, "api_key"), model,
        _str_field(obj, "provider_name") or "unknown", _str_field(obj, "origin"), _str_field(obj, "app_name"),
        _categories(categories) if categories else (),
        _int_field(get("tokens_prompt"), "tokens_prompt"),
        _int_field(get("tokens_completion"), "tokens_completion"),
        _int_field(reasoning, "native_tokens_reasoning"),
        _int_field(cached, "native_tokens_cached"),
        _cost(get("total_cost")),
        byok if type(byok) is bool else bool(_flag(byok, "is_byok")),
        _ms_field(get("latency"), "latency"),
        _ms_field(get("generation_time"), "generation_time"),
        status if type(status) is int and 100 <= status <= 599 else _status(status),
        _responses(get("provider_responses")),
        _str_field(obj, "finish_reason"),
        streamed if streamed is None or type(streamed) is bool else _flag(streamed, "streamed"),
        cancelled if cancelled is None or type(cancelled) is bool else _flag(cancelled, "cancelled"),
        None if media_prompt is None else _optional_count(media_prompt, "num_media_prompt"),
        None if media_completion is None else _optional_count(media_completion, "num_media_completion"),
        None if searches is None else _optional_count(searches, "num_search_results"),
    )


def _litellm_time(value, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return _timestamp(value)
    except Invalid as error:
        if field == "startTime":
            raise
        raise Invalid(f"bad_timestamp:{field}" if error.reason == "bad_timestamp" else error.reason) from None


def _litellm_record(line: int, obj: dict) -> Record:
    """Map a LiteLLM_SpendLogs row to the canonical fields (formats.md, section 2)."""
    metadata = obj.get("metadata")
    if isinstance(metadata, str) and metadata.strip():
        try:
            metadata = orjson.loads(metadata)
        except orjson.JSONDecodeError:
            metadata = None
    origin = metadata.get("app") if isinstance(metadata, dict) else None
    start = obj.get("startTime")
    if start in (None, ""):
        raise Invalid("missing:created_at")
    started = _litellm_time(start, "startTime")
    first_token = _litellm_time(obj.get("completionStartTime"), "completionStartTime")
    ended = _litellm_time(obj.get("endTime"), "endTime")
    latency = generation_time = None
    if first_token is not None:
        latency = max(0, round((first_token - started).total_seconds() * 1000))
    if ended is not None:
        generation_time = max(0, round((ended - (first_token or started)).total_seconds() * 1000))
    account = next((obj[k] for k in ("organization_id", "team_id", "user") if obj.get(k) not in (None, "")),
                   "default")
    status = obj.get("status")
    canonical = {
        "id": obj.get("request_id"), "account": account if isinstance(account, str) else str(account),
        "api_key": obj.get("api_key"), "model": obj.get("model_group") or obj.get("model"),
        "provider_name": obj.get("custom_llm_provider"), "origin": origin if isinstance(origin, str) else None,
        "tokens_prompt": obj.get("prompt_tokens"), "tokens_completion": obj.get("completion_tokens"),
        "total_cost": obj.get("spend"), "latency": latency, "generation_time": generation_time,
        "status": 500 if isinstance(status, str) and status.strip().lower() == "failure" else 200,
    }
    if canonical["id"] is None or canonical["id"] == "":
        raise Invalid("missing:id")
    if not isinstance(canonical["id"], str):
        canonical["id"] = str(canonical["id"])
    return _record(line, canonical, created_at=started)


# ---------------------------------------------------------------- CSV typing

_CSV_INTS = {
    "csv": {"tokens_prompt", "tokens_completion", "native_tokens_reasoning", "native_tokens_cached",
            "tokens_reasoning", "tokens_cached", "num_media_prompt", "num_media_completion",
            "num_search_results", "status"},
    "litellm": {"prompt_tokens", "completion_tokens"},
}
_CSV_NUMBERS = {"latency", "generation_time"}


def _csv_typed(row: dict[str, str], fmt: str) -> dict:
    """CSV cells are text: turn the numeric canonical columns into numbers (or raise type:)."""
    typed: dict = {}
    for key, value in row.items():
        if key is None:
            continue
        cell = value.strip() if isinstance(value, str) else value
        if cell == "" or cell is None:
            typed[key] = None
        elif key in _CSV_INTS[fmt]:
            try:
                typed[key] = int(cell)
            except ValueError:
                try:
                    number = float(cell)
                except ValueError:
                    raise Invalid(f"type:{key}") from None
                if not math.isfinite(number) or not number.is_integer():
                    raise Invalid(f"type:{key}") from None
                typed[key] = int(number)
        elif key in _CSV_NUMBERS:
            try:
                number = float(cell)
            except ValueError:
                raise Invalid(f"type:{key}") from None
            if not math.isfinite(number):
                raise Invalid(f"type:{key}")
            typed[key] = number
        elif key == "provider_responses":
            try:
                typed[key] = orjson.loads(cell)
            except orjson.JSONDecodeError:
                raise Invalid("type:provider_responses") from None
        else:
            typed[key] = cell
    return typed


# ---------------------------------------------------------------- the fast path
# msgspec decodes and checks a well-formed openrouter record in C. Anything it refuses goes
# through the checked path below, which alone decides reject reasons, so the two always agree:
# each constraint here is at least as strict as the checked path's.


def _text(limit: int):
    return Annotated[str, msgspec.Meta(min_length=1, max_length=limit)]


_Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT)]
_Millis = Annotated[int, msgspec.Meta(ge=0, le=86_400_000)]
_Status = Annotated[int, msgspec.Meta(ge=100, le=599)]


class _FastAttempt(msgspec.Struct):
    provider_name: _text(200)
    status: _Status
    latency: _Millis | None = None


class _FastRecord(msgspec.Struct):
    id: _text(128)
    created_at: datetime
    account: _text(128)
    model: _text(200)
    api_key: _text(128) | None = None
    provider_name: _text(200) | None = None
    origin: _text(500) | None = None
    app_name: _text(200) | None = None
    app_categories: str | None = None
    tokens_prompt: _Count | None = None
    tokens_completion: _Count | None = None
    native_tokens_reasoning: _Count | None = None
    native_tokens_cached: _Count | None = None
    tokens_reasoning: _Count | None = None
    tokens_cached: _Count | None = None
    total_cost: Decimal | None = None
    is_byok: bool | None = None
    latency: _Millis | None = None
    generation_time: _Millis | None = None
    status: _Status | None = None
    provider_responses: list[_FastAttempt] | None = None
    finish_reason: _text(40) | None = None
    streamed: bool | None = None
    cancelled: bool | None = None
    num_media_prompt: _Count | None = None
    num_media_completion: _Count | None = None
    num_search_results: _Count | None = None


class _FastWrapped(msgspec.Struct):
    data: _FastRecord


_decode_bare = msgspec.json.Decoder(_FastRecord).decode
_decode_wrapped = msgspec.json.Decoder(_FastWrapped).decode
# ValueError: invalid UTF-8 inside a string; RecursionError: nesting deeper than msgspec allows.
_FAST_ERRORS = (msgspec.MsgspecError, ValueError, RecursionError)
NUL_ESCAPE = b"\\u0000"  # the only way a NUL reaches a JSON string; PostgreSQL text cannot hold it


def _fast_record(line: int, data: bytes, latest: datetime) -> Record | None:
    """The Record of a well-formed openrouter line, or None to take the checked path."""
    try:
        fast = _decode_wrapped(data).data if data.startswith(b'{"data"') else _decode_bare(data)
    except _FAST_ERRORS:
        return None
    created = fast.created_at
    if created.tzinfo is not UTC:
        created = created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)
    cost = fast.total_cost
    if (created < EARLIEST or created > latest
            or (cost is not None and (not cost.is_finite() or cost < 0 or cost > MAX_COST))):
        return None
    attempts = fast.provider_responses
    categories = fast.app_categories
    return Record(
        line, fast.id, created, fast.account, fast.api_key, fast.model, fast.provider_name or "unknown",
        fast.origin, fast.app_name, _categories(categories) if categories else (),
        fast.tokens_prompt or 0, fast.tokens_completion or 0,
        fast.native_tokens_reasoning if fast.native_tokens_reasoning is not None else fast.tokens_reasoning or 0,
        fast.native_tokens_cached if fast.native_tokens_cached is not None else fast.tokens_cached or 0,
        cost, fast.is_byok is True, fast.latency, fast.generation_time,
        fast.status or 200,
        None if attempts is None else [
            {"provider_name": a.provider_name, "status": a.status, "latency": a.latency} for a in attempts[:50]],
        fast.finish_reason, fast.streamed, fast.cancelled, fast.num_media_prompt, fast.num_media_completion,
        fast.num_search_results)


# ---------------------------------------------------------------- the parser


def _has_nul(record: Record) -> bool:
    """Whether any text of the record holds a NUL character (the checked path only)."""
    texts = [record.id, record.account, record.api_key, record.model, record.provider_name, record.origin,
             record.app_name, record.finish_reason, *record.app_categories,
             *(a["provider_name"] for a in record.provider_responses or ())]
    return any(text and "\x00" in text for text in texts)


def _raw(data: bytes) -> str:
    return data[:RAW_LIMIT * 4].decode("utf-8", errors="replace")[:RAW_LIMIT]


def parse_lines(fmt: str, lines: Iterable[tuple[int, bytes]], *, header: bytes | None = None,
                max_line_bytes: int = 1_048_576) -> Iterator[Record | Rejected]:
    """Yield one Record or Rejected per non-blank line; never raises on bad input."""
    if fmt not in FORMATS:
        raise FormatError(f"unknown format {fmt!r}")
    columns: list[str] | None = None
    json_lines = fmt == "openrouter"
    if not json_lines and header:
        columns = [c.strip().lower() for c in _csv_row(header.lstrip(BOM).decode("utf-8", errors="replace"))]
        if fmt == "litellm":
            # LiteLLM's columns are camelCase (startTime, ...): keep their canonical spelling.
            columns = [_LITELLM_CASE.get(c, c) for c in columns]
    latest = _latest()
    for number, data in lines:
        if len(data) > max_line_bytes:
            yield Rejected(number, "too_large", _raw(data))
            continue
        if data.startswith(BOM):
            data = data[3:]
        stripped = data.strip()
        if not stripped:
            continue
        if json_lines and NUL_ESCAPE not in stripped:
            record = _fast_record(number, stripped, latest)
            if record is not None:
                yield record
                continue
        try:
            if stripped.startswith(b"{") or json_lines:
                try:
                    obj = orjson.loads(stripped)
                except orjson.JSONDecodeError:
                    try:
                        stripped.decode("utf-8")
                    except UnicodeDecodeError:
                        raise Invalid("invalid_utf8") from None
                    raise Invalid("invalid_json") from None
                if not isinstance(obj, dict):
                    raise Invalid("type:record")
                if fmt == "openrouter" and "data" in obj and isinstance(obj["data"], dict):
                    inner = obj["data"]
                    for key in ("account", "api_key"):
                        if key not in inner and key in obj:
                            inner[key] = obj[key]
                    obj = inner
                record = _litellm_record(number, obj) if fmt == "litellm" else _record(number, obj)
            else:
                try:
                    text = stripped.decode("utf-8")
                except UnicodeDecodeError:
                    raise Invalid("invalid_utf8") from None
                if columns is None:
                    raise Invalid("bad_csv")
                cells = _csv_row(text)
                if len(cells) != len(columns):
                    raise Invalid("bad_csv")
                row = _csv_typed(dict(zip(columns, cells, strict=True)), fmt)
                record = _litellm_record(number, row) if fmt == "litellm" else _record(number, row)
            if _has_nul(record):
                raise Invalid("nul_character")
        except Invalid as invalid:
            yield Rejected(number, invalid.reason, _raw(data))
            continue
        except (ValueError, TypeError, OverflowError, RecursionError, csv.Error) as error:
            yield Rejected(number, f"invalid:{type(error).__name__}", _raw(data))
            continue
        yield record


_LITELLM_CASE = {c.lower(): c for c in (
    "request_id", "startTime", "endTime", "completionStartTime", "model", "model_group",
    "custom_llm_provider", "api_key", "spend", "prompt_tokens", "completion_tokens", "user", "team_id",
    "organization_id", "status", "metadata")}
