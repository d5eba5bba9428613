"""The canonical record of every format, and the checks that turn one field of a log into it.

Pure Python, no database: `Invalid` carries the reject code of a record's first bad field.
"""
from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

FORMATS = ("openrouter", "litellm", "csv")
RAW_LIMIT = 2048
MAX_INT = 2**53
MAX_COST = Decimal(1_000_000)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
BOM = b"\xef\xbb\xbf"
LIMITS = {"id": 128, "model": 200, "account": 128, "api_key": 128, "provider_name": 200, "origin": 500,
          "app_name": 200, "finish_reason": 40, "user": 128, "session_id": 128, "api_key_name": 200}
TAGS_MAX, TAG_MAX_LENGTH = 16, 64  # analytics.models.TAGS_MAX_LENGTH holds ",a,b," of as many


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
    end_user: str | None
    session_id: str | None
    tags: str  # ",a,b,": sorted, each once, between commas; "" for none (`tags_text`)
    api_key_name: str | None = None  # the key's display name, when the gateway names it (LiteLLM's key alias)


@dataclass(slots=True)
class Rejected:
    line: int
    reason: str
    raw: str


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


_latest_cache = [float("-inf"), EARLIEST]


def _latest() -> datetime:
    """Now plus the allowed slack, recomputed at most once a second, and at once when the wall clock moved
    more than a second either way (a clock set back: a fake clock in tests, an NTP step), which a
    monotonic clock would not see: a stale "now" read ahead of a clock set back refused today's records
    as from the future."""
    now = time.time()
    if abs(now - _latest_cache[0]) > 1.0:
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
_PARSED_MAX = 10_000


def _parsed_once(cache: dict, text: str, parse):
    """`parse(text)` remembered: a gateway repeats the same categories or tags text request after request."""
    parsed = cache.get(text)
    if parsed is None:
        if len(cache) > _PARSED_MAX:
            cache.clear()
        parsed = cache[text] = parse(text)
    return parsed


def _categories(value) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if type(value) is str:
        return _parsed_once(_CATEGORY_CACHE, value, lambda text: _category_slugs(text.split(",")))
    return _category_slugs(value if isinstance(value, list) else str(value).split(","))


def _category_slugs(items) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for item in items:
        slug = str(item).strip().lower()[:64]
        if slug:
            seen[slug] = None
    return tuple(seen)


_TAGS_CACHE: dict[str, str] = {}


def tags_text(value) -> str:
    """The record's tags as ",a,b,": from a list of strings or one comma-separated string.

    A comma separates tags in either form; each tag is stripped, empty ones dropped, repeats kept
    once, and the rest sorted, so one set of tags has one text (a rollup key; a filter finds a tag
    as `,tag,` in it). More than TAGS_MAX tags or one longer than TAG_MAX_LENGTH is too_long:tags;
    anything but a string or a list of strings is type:tags.
    """
    if value is None or value == "" or value == []:
        return ""
    if type(value) is str:
        return _parsed_once(_TAGS_CACHE, value, lambda text: _tags_joined(text.split(",")))
    if not isinstance(value, list) or not all(type(item) is str for item in value):
        raise Invalid("type:tags")
    return _tags_joined(part for item in value for part in item.split(","))


def _tags_joined(parts) -> str:
    tags = sorted({tag for part in parts if (tag := part.strip())})
    if not tags:
        return ""
    if len(tags) > TAGS_MAX or any(len(tag) > TAG_MAX_LENGTH for tag in tags):
        raise Invalid("too_long:tags")
    return f",{','.join(tags)},"


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
    tags = get("tags")
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
        _str_field(obj, "user"), _str_field(obj, "session_id"), tags_text(tags) if tags else "",
    )

