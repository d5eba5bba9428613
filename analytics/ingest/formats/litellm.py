"""LiteLLM spend logs (docs/formats.md, section 2), as CSV or JSON Lines: mapped to the canonical fields.

The rows are LiteLLM's `LiteLLM_SpendLogs` as its proxy's spend-log writer fills them (checked
against LiteLLM 1.110): the session is the top-level `session_id` column, the end user is
`end_user` alone (`user` is the key owner's internal user), custom metadata sits under
`metadata.spend_logs_metadata`, and `request_tags` carries LiteLLM's own `User-Agent: …` tags
beside the client's.
"""
from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

import orjson

from .fields import LIMITS, Invalid, Record, _cost, _record, _timestamp

# LiteLLM's spend is a double with float noise (0.0011564000000000001): kept to 1e-10 USD, the
# precision its cost maps carry, so that the same request has the same cost in CSV and JSON.
SPEND_QUANTUM = Decimal("1e-10")
# LiteLLM tags every request with the client's User-Agent (`User-Agent: curl`, `User-Agent: curl/8.5.0`):
# a fact about the HTTP client, not a label the account chose.
AUTOMATIC_TAG_PREFIX = "user-agent:"


def _litellm_time(value, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return _timestamp(value)
    except Invalid as error:
        if field == "startTime":
            raise
        raise Invalid(f"bad_timestamp:{field}" if error.reason == "bad_timestamp" else error.reason) from None


def _json_object(value) -> dict:
    """A JSON object given as one (JSON Lines) or as its text (a CSV cell); anything else: empty."""
    if isinstance(value, str) and value.strip():
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def _text(value, limit: int) -> str | None:
    """A string value cut to `limit` (display text LiteLLM made up, never worth a reject); else None."""
    return value[:limit] if isinstance(value, str) and value.strip() else None


def _spend(value) -> Decimal | None:
    amount = _cost(value)
    return None if amount is None else amount.quantize(SPEND_QUANTUM, rounding=ROUND_HALF_EVEN)


def _millis_between(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds() * 1000))


def _litellm_record(line: int, obj: dict) -> Record:
    """Map a LiteLLM_SpendLogs row to the canonical fields (docs/formats.md, section 2)."""
    metadata = _json_object(obj.get("metadata"))
    custom = _json_object(metadata.get("spend_logs_metadata"))
    origin = next((v for k in ("app", "origin", "app_name") if isinstance(v := custom.get(k), str) and v.strip()),
                  None)
    start = obj.get("startTime")
    if start in (None, ""):
        raise Invalid("missing:created_at")
    started = _litellm_time(start, "startTime")
    first_token = _litellm_time(obj.get("completionStartTime"), "completionStartTime")
    ended = _litellm_time(obj.get("endTime"), "endTime")
    latency = None if first_token is None else _millis_between(started, first_token)
    # LiteLLM writes completionStartTime = endTime for a request it did not stream: no generation was
    # timed, so its throughput is unknown (None), not infinite (a time of 0) nor zero.
    generation_time = None
    if first_token is not None and ended is not None and ended > first_token:
        generation_time = _millis_between(first_token, ended) or None
    account = next((obj[k] for k in ("organization_id", "team_id", "user") if obj.get(k) not in (None, "")),
                   "default")
    status = obj.get("status")
    canonical = {
        "id": obj.get("request_id"), "account": account if isinstance(account, str) else str(account),
        "api_key": obj.get("api_key"), "model": obj.get("model_group") or obj.get("model"),
        "provider_name": obj.get("custom_llm_provider"), "origin": origin,
        "app_name": custom.get("app_name") if isinstance(custom.get("app_name"), str) else None,
        "tokens_prompt": obj.get("prompt_tokens"), "tokens_completion": obj.get("completion_tokens"),
        "latency": latency, "generation_time": generation_time,
        "status": 500 if isinstance(status, str) and status.strip().lower() == "failure" else 200,
        "user": obj.get("end_user"),  # never `user`: that is the key's owner, not the account's end user
        "session_id": obj.get("session_id"),
        "tags": _litellm_tags(obj.get("request_tags")),
    }
    if canonical["id"] is None or canonical["id"] == "":
        raise Invalid("missing:id")
    if not isinstance(canonical["id"], str):
        canonical["id"] = str(canonical["id"])
    record = _record(line, canonical, created_at=started)
    record.total_cost = _spend(obj.get("spend"))
    record.api_key_name = _text(metadata.get("user_api_key_alias"), LIMITS["api_key_name"]) if record.api_key else None
    return record


def _litellm_tags(request_tags) -> list[str] | None:
    """request_tags (a JSON array, as text in a CSV export) without LiteLLM's automatic User-Agent tags."""
    if request_tags is None or request_tags == "":
        return None
    if isinstance(request_tags, str):
        if not request_tags.strip().startswith("["):
            request_tags = [request_tags]
        else:
            try:
                request_tags = orjson.loads(request_tags)
            except orjson.JSONDecodeError:
                raise Invalid("type:tags") from None
    if not isinstance(request_tags, list) or not all(type(tag) is str for tag in request_tags):
        raise Invalid("type:tags")
    return [tag for tag in request_tags if not tag.lstrip().lower().startswith(AUTOMATIC_TAG_PREFIX)]


_LITELLM_CASE = {c.lower(): c for c in (
    "request_id", "startTime", "endTime", "completionStartTime", "model", "model_group",
    "custom_llm_provider", "api_key", "spend", "prompt_tokens", "completion_tokens", "user", "end_user",
    "team_id", "organization_id", "status", "request_tags", "session_id", "metadata")}
