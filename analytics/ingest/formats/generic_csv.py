"""CSV files (generic, and LiteLLM's export): text cells typed into the numbers the canonical fields need."""
from __future__ import annotations

import math

import orjson

from .fields import Invalid

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

