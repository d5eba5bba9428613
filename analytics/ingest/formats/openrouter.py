"""OpenRouter JSON Lines: the fast path.

msgspec decodes and checks a well-formed openrouter record in C. Anything it refuses goes through
the checked path (`fields._record`, called by `parse.parse_lines`), which alone decides reject
reasons, so the two always agree: each constraint here is at least as strict as the checked path's.
"""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

import msgspec

from .fields import EARLIEST, MAX_COST, MAX_INT, Invalid, Record, _categories, tags_text


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
    user: _text(128) | None = None
    session_id: _text(128) | None = None
    tags: list[str] | str | None = None


class _FastWrapped(msgspec.Struct):
    data: _FastRecord


_decode_bare = msgspec.json.Decoder(_FastRecord).decode
_decode_wrapped = msgspec.json.Decoder(_FastWrapped).decode
# ValueError: invalid UTF-8 inside a string; RecursionError: nesting deeper than msgspec allows.
_FAST_ERRORS = (msgspec.MsgspecError, ValueError, RecursionError)
NUL_ESCAPE = b"\\u0000"  # the only way a NUL reaches a JSON string; PostgreSQL text cannot hold it


def fast_record(line: int, data: bytes, latest: datetime) -> Record | None:
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
    tags = fast.tags
    if tags:
        try:
            tags = tags_text(tags)
        except Invalid:
            return None  # the checked path names the reason
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
        fast.num_search_results, fast.user, fast.session_id, tags or "")

