"""Capability leaderboards: listed models by tool calls, images, long prompts, reasoning and cache hits.

OpenRouter's rankings have Tool Calls, Images and Context Length sections; here they come from the
fields every log already carries (`finish_reason`, `num_media_prompt`, `tokens_prompt`, the native
reasoning and cached tokens), which ingestion adds up per endpoint and hour / day
(`tool_call_requests`, `media_inputs`, `long_32k_requests`, `long_128k_requests` beside the token
counters). Counts rank by volume in the window; reasoning and cache hits rank by their share
(reasoning tokens / completion tokens, cached tokens / prompt tokens) among the models that carry
at least SHARE_FLOOR of the window's tokens of that kind, so a model with three requests cannot top
them. Change is against the preceding window, of the count or of the share. Cached like the rest
of the rankings (`cache.rankings_cached`).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Sum

from analytics.models import LONG_PROMPTS
from core.timerange import TimeRange

from .cache import rankings_cached
from .leaderboards import describe_models, endpoint_rollup, windowed


@dataclass(frozen=True)
class Capability:
    label: str
    measure: str  # what the value counts, for a page or the API
    column: str  # the rollup counter ranked (or the numerator of the share)
    base: str  # the rollup counter a model's rate divides by
    by_share: bool  # rank by column / base instead of by column


CAPABILITIES = {
    "tool_calls": Capability("Tool calls", "requests that ended in a tool call", "tool_call_requests",
                             "requests", False),
    "images": Capability("Images", "images sent in prompts", "media_inputs", "requests", False),
    "long_32k": Capability("Long context > 32k", f"requests with a prompt over {LONG_PROMPTS[0]:,} tokens",
                           "long_32k_requests", "requests", False),
    "long_128k": Capability("Long context > 128k", f"requests with a prompt over {LONG_PROMPTS[1]:,} tokens",
                            "long_128k_requests", "requests", False),
    "reasoning": Capability("Reasoning", "share of completion tokens spent reasoning", "tokens_reasoning",
                            "tokens_completion", True),
    "cache": Capability("Cache hits", "share of prompt tokens read from cache", "tokens_cached", "tokens_prompt",
                        True),
}
SHARE_FLOOR = 0.001  # a model ranked by a share holds at least 0.1% of the window's base tokens


@dataclass(frozen=True)
class CapabilityRow:
    rank: int
    id: int
    name: str
    slug: str
    url: str
    author: str
    author_url: str
    value: int  # the count, or the share's numerator
    base: int  # the model's requests, completion or prompt tokens in the window
    previous: int | None  # the value in the preceding window
    previous_base: int | None
    share: float  # of the window's total value over listed models
    by_share: bool = False  # ranked by the rate, not the count

    @property
    def rate(self) -> float | None:
        return self.value / self.base if self.base else None

    @property
    def previous_rate(self) -> float | None:
        return self.previous / self.previous_base if self.previous_base else None

    @property
    def change(self) -> float | None:
        """Relative change of what the ranking orders by (the count, or the share) against the preceding window."""
        before, now = (self.previous_rate, self.rate) if self.by_share else (self.previous, self.value)
        return None if not before or now is None else (now - before) / before


_COLUMNS = tuple(dict.fromkeys(c for spec in CAPABILITIES.values() for c in (spec.column, spec.base)))


def _sums(window: TimeRange | None) -> dict[int, dict[str, int]]:
    """Per listed model, every counter the capabilities read, in the window: one query for all six."""
    if window is None:
        return {}
    rows = (windowed(endpoint_rollup(window).objects.filter(model__listed=True), window)
            .values("model_id").annotate(**{c: Sum(c) for c in _COLUMNS}).values_list("model_id", *_COLUMNS))
    return {model_id: {c: v or 0 for c, v in zip(_COLUMNS, values, strict=True)} for model_id, *values in rows}


def _ranked(spec: Capability, current: dict, previous: dict, limit: int) -> list[tuple[int, int, int, int, int]]:
    """(model id, value, base, previous value, previous base) of the top models of one capability."""
    present = {k: (v[spec.column], v[spec.base]) for k, v in current.items() if v[spec.column] > 0}
    if spec.by_share:  # the floor counts every listed model's base, with the capability or not
        floor = SHARE_FLOOR * sum(v[spec.base] for v in current.values())
        eligible = [k for k, (_, base) in present.items() if base >= floor and base > 0]
        order = sorted(eligible, key=lambda k: (-present[k][0] / present[k][1], k))
    else:
        order = sorted(present, key=lambda k: (-present[k][0], k))
    before = {k: (v[spec.column], v[spec.base]) for k, v in previous.items()}
    return [(k, *present[k], *before.get(k, (0, 0))) for k in order[:limit]]


def capability_rankings(*, window: TimeRange, limit: int = 10) -> dict[str, list[CapabilityRow]]:
    """The top listed models of every capability in the window: two rollup reads and one of the models."""

    def compute() -> dict[str, list[CapabilityRow]]:
        current, previous = _sums(window), _sums(window.previous)
        ranked = {name: _ranked(spec, current, previous, limit) for name, spec in CAPABILITIES.items()}
        described = describe_models(list({row[0] for rows in ranked.values() for row in rows}))
        out = {}
        for name, rows in ranked.items():
            spec = CAPABILITIES[name]
            total = sum(v[spec.column] for v in current.values())
            out[name] = [
                CapabilityRow(i, k, *described[k], value=value, base=base,
                              previous=before if window.previous else None,
                              previous_base=before_base if window.previous else None,
                              share=value / total if total else 0.0, by_share=spec.by_share)
                for i, (k, value, base, before, before_base) in enumerate(
                    (row for row in rows if row[0] in described), start=1)]
        return out

    return rankings_cached(f"capabilities:{window.name}:{window.end:%Y%m%d%H}:{limit}", compute)


def capability_ranking(*, capability: str, window: TimeRange, limit: int = 10) -> list[CapabilityRow]:
    """The top listed models of one capability (a key of CAPABILITIES) in the window."""
    return capability_rankings(window=window, limit=limit)[capability]
