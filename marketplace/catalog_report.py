"""What a `catalog_sync` changed, as data (SyncReport), as text a person reads and as JSON for scripts.

Prices are kept per token; the report shows them per 1M tokens in USD, exact (Decimal).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

MILLION = Decimal(1_000_000)
KINDS = (("prompt", "prompt"), ("completion", "completion"), ("cache_read", "cache read"), ("reasoning", "reasoning"))
LISTED = 20  # names a text report lists before "… and N more"


@dataclass(frozen=True, slots=True)
class PriceSet:
    """One price per kind of token, USD per token; cache_read and reasoning None: the prompt / completion price."""

    prompt: Decimal
    completion: Decimal
    cache_read: Decimal | None
    reasoning: Decimal | None

    def per_million(self) -> dict[str, Decimal | None]:
        return {kind: None if (v := getattr(self, kind)) is None else _exact(v * MILLION) for kind, _ in KINDS}


def _same(a: Decimal | None, b: Decimal | None) -> bool:
    return a == b if a is not None and b is not None else a is b


def _exact(value: Decimal) -> Decimal:
    """Without trailing zeros or an exponent: 3.000000000 -> 3, 30 stays 30."""
    value = value.normalize()
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value


def _text(value: Decimal | None) -> str:
    return "none" if value is None else f"{value:f}"


class Status:
    APPLIED = "applied"
    PENDING = "needs a reprice"


@dataclass(frozen=True, slots=True)
class PriceChange:
    """A price of an endpoint that genai-prices now gives differently from `valid_from` on."""

    model: str
    provider: str
    valid_from: datetime
    old: PriceSet
    new: PriceSet
    status: str  # Status.APPLIED or Status.PENDING
    future: bool = False  # valid_from is after the sync: a forward change, no request can have used it
    requests: int = 0  # catalog-priced requests billed at the old price in the changed interval
    billed_since: datetime | None = None
    already_pending: bool = False  # an earlier sync recorded it; still waiting for a reprice

    def diffs(self) -> list[tuple[str, Decimal | None, Decimal | None]]:
        """(kind, old, new) per 1M tokens, for the kinds that changed."""
        old, new = self.old.per_million(), self.new.per_million()
        return [(label, old[kind], new[kind]) for kind, label in KINDS if not _same(old[kind], new[kind])]

    def line(self, *, dry_run: bool = False) -> str:
        diffs = ", ".join(f"{label} {_text(a)} → {_text(b)}" for label, a, b in self.diffs())
        when = f"valid from {self.valid_from:%Y-%m-%d}" + (" (future)" if self.future else "")
        if self.status == Status.PENDING:
            since = f"{self.billed_since:%Y-%m-%d %H:%M} UTC" if self.billed_since else "?"
            noun = "request" if self.requests == 1 else "requests"
            held = ("still pending, not applied" if self.already_pending else
                    "would be recorded as pending" if dry_run else "recorded as pending, not applied")
            outcome = f"needs a reprice: {self.requests:,} {noun} priced with the old price since {since}; {held}"
        else:
            outcome = "added as a new price" if self.future else "applied"
            outcome = f"would be {outcome}" if dry_run else outcome
        return f"{self.model} @ {self.provider}, {when}: {diffs}: {outcome}"

    def as_json(self) -> dict:
        return {"model": self.model, "provider": self.provider, "valid_from": self.valid_from.isoformat(),
                "future": self.future, "status": "pending" if self.status == Status.PENDING else "applied",
                "already_pending": self.already_pending,
                "old_per_million_usd": {k: None if v is None else f"{v:f}" for k, v in self.old.per_million().items()},
                "new_per_million_usd": {k: None if v is None else f"{v:f}" for k, v in self.new.per_million().items()},
                "requests_priced_with_old_price": self.requests,
                "billed_since": self.billed_since.isoformat() if self.billed_since else None}


@dataclass
class KindReport:
    added: int = 0
    changed: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"{self.added} added, {self.changed} changed, {self.unchanged} unchanged"


COUNTED = ("authors", "models", "providers", "endpoints", "prices")


@dataclass
class SyncReport:
    """Counts per kind of row, the names that are new or gone from genai-prices, and every price change."""

    source: str = ""
    dry_run: bool = False
    authors: KindReport = field(default_factory=KindReport)
    models: KindReport = field(default_factory=KindReport)
    providers: KindReport = field(default_factory=KindReport)
    endpoints: KindReport = field(default_factory=KindReport)
    prices: KindReport = field(default_factory=KindReport)
    new_models: list[str] = field(default_factory=list)
    new_endpoints: list[str] = field(default_factory=list)  # "model @ provider"
    removed_models: list[str] = field(default_factory=list)  # no longer in genai-prices: kept, never deleted
    removed_endpoints: list[str] = field(default_factory=list)
    price_changes: list[PriceChange] = field(default_factory=list)

    @property
    def pending(self) -> list[PriceChange]:
        return [c for c in self.price_changes if c.status == Status.PENDING]

    @property
    def changed_anything(self) -> bool:
        counts = any(getattr(self, k).added or getattr(self, k).changed for k in COUNTED)
        return counts or any(not c.already_pending for c in self.price_changes)

    def counts(self) -> dict[str, dict[str, int]]:
        return {kind: vars(getattr(self, kind)).copy() for kind in COUNTED}

    def as_json(self) -> dict:
        return {"source": self.source, "dry_run": self.dry_run, "counts": self.counts(),
                "new_models": self.new_models, "new_endpoints": self.new_endpoints,
                "removed_from_source": {"models": self.removed_models, "endpoints": self.removed_endpoints,
                                        "kept": True},
                "price_changes": [c.as_json() for c in self.price_changes],
                "pending_price_changes": len(self.pending)}

    def lines(self) -> list[str]:
        """The report as a person reads it."""
        out = [f"source: {self.source}"] if self.source else []
        out += [f"{kind}: {getattr(self, kind)}" for kind in COUNTED]
        out += _names("new models", self.new_models) + _names("new endpoints", self.new_endpoints)
        out += _names("models no longer in genai-prices", self.removed_models, note="; kept, not deleted")
        out += _names("endpoints no longer in genai-prices", self.removed_endpoints, note="; kept, not deleted")
        if self.price_changes:
            pending = len(self.pending)
            out.append(f"price changes ({len(self.price_changes)}, USD per 1M tokens"
                       + (f"; {pending} need a reprice" if pending else "") + "):")
            out += [f"  {change.line(dry_run=self.dry_run)}" for change in self.price_changes]
        else:
            out.append("price changes: none")
        if self.dry_run:
            out.append("dry run: nothing was written")
        return out


def _names(title: str, names: list[str], *, note: str = "") -> list[str]:
    if not names:
        return []
    shown = ", ".join(names[:LISTED])
    more = f" … and {len(names) - LISTED:,} more (--json lists them all)" if len(names) > LISTED else ""
    return [f"{title} ({len(names):,}{note}): {shown}{more}"]
