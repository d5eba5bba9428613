"""Detection of a file's format and `parse_lines`, which reads lines of any format into records.

`parse_lines` turns raw lines into canonical `Record`s or `Rejected`s (line number, reason code,
first 2 KB); it never raises on bad input.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

import orjson

from . import openrouter
from .fields import (
    BOM,
    FORMATS,
    RAW_LIMIT,
    FormatError,
    Invalid,
    Record,
    Rejected,
    _csv_row,
    _latest,
    _record,
)
from .generic_csv import _csv_typed
from .litellm import _LITELLM_CASE, _litellm_record


def detect_format(sample: bytes) -> str:
    """Pick the format from the first non-blank record (docs/formats.md, "Detection and errors")."""
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



def _has_nul(record: Record) -> bool:
    """Whether any text of the record holds a NUL character (the checked path only)."""
    texts = [record.id, record.account, record.api_key, record.model, record.provider_name, record.origin,
             record.app_name, record.finish_reason, record.end_user, record.session_id, record.tags,
             record.api_key_name,
             *record.app_categories,
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
        if json_lines and openrouter.NUL_ESCAPE not in stripped:
            record = openrouter.fast_record(number, stripped, latest)
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

