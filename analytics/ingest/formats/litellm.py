"""LiteLLM spend logs (formats.md, section 2), as CSV or JSON Lines: mapped to the canonical fields."""
from __future__ import annotations

from datetime import datetime

import orjson

from .fields import Invalid, Record, _record, _timestamp


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
    if not isinstance(metadata, dict):
        metadata = {}
    origin = metadata.get("app")
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
    end_user = obj.get("end_user")
    canonical = {
        "id": obj.get("request_id"), "account": account if isinstance(account, str) else str(account),
        "api_key": obj.get("api_key"), "model": obj.get("model_group") or obj.get("model"),
        "provider_name": obj.get("custom_llm_provider"), "origin": origin if isinstance(origin, str) else None,
        "tokens_prompt": obj.get("prompt_tokens"), "tokens_completion": obj.get("completion_tokens"),
        "total_cost": obj.get("spend"), "latency": latency, "generation_time": generation_time,
        "status": 500 if isinstance(status, str) and status.strip().lower() == "failure" else 200,
        "user": end_user if end_user not in (None, "") else obj.get("user"),
        "session_id": metadata.get("session_id"),
        "tags": _litellm_tags(obj.get("request_tags"), metadata.get("tags")),
    }
    if canonical["id"] is None or canonical["id"] == "":
        raise Invalid("missing:id")
    if not isinstance(canonical["id"], str):
        canonical["id"] = str(canonical["id"])
    return _record(line, canonical, created_at=started)



def _litellm_tags(request_tags, metadata_tags) -> list[str] | str | None:
    """request_tags (a JSON array, as text in a CSV export) plus metadata.tags, for `fields.tags_text`."""
    if isinstance(request_tags, str) and request_tags.strip().startswith("["):
        try:
            request_tags = orjson.loads(request_tags)
        except orjson.JSONDecodeError:
            raise Invalid("type:tags") from None
    parts = [tags for tags in (request_tags, metadata_tags) if tags not in (None, "", [])]
    if len(parts) < 2:
        return parts[0] if parts else None
    if not all(isinstance(tags, list | str) for tags in parts):
        raise Invalid("type:tags")
    return [*(parts[0] if isinstance(parts[0], list) else [parts[0]]),
            *(parts[1] if isinstance(parts[1], list) else [parts[1]])]


_LITELLM_CASE = {c.lower(): c for c in (
    "request_id", "startTime", "endTime", "completionStartTime", "model", "model_group",
    "custom_llm_provider", "api_key", "spend", "prompt_tokens", "completion_tokens", "user", "end_user",
    "team_id", "organization_id", "status", "request_tags", "metadata")}
