"""One way to show numbers, for every page, chart and e-mail (the template filters of core.templatetags.money
and the chart hover texts call these; CSV and the API stay exact, core.money.units_text).

- Money by magnitude: two decimals from $1 (`$1,046.00`), four significant digits below (`$0.07812`,
  `$0.00008344`); the exact amount (`money_exact`) is what a page shows on hover.
- A price per 1M tokens keeps the precision it is quoted in, with at least cents: `$0.10`, `$0.075`.
- Tokens compact (`283.8M`), the exact count on hover.
- A change against a previous window follows one rule (`Change`): "new" when the previous window
  had nothing, "partial: 5 of 30 days" when traffic began inside it, else the percentage.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from core.money import units_to_usd

CENT = Decimal("0.01")
SIGNIFICANT = 4


def _usd(amount: Decimal) -> str:
    sign, amount = ("-" if amount < 0 else ""), abs(amount)
    return f"{sign}${amount:,f}"


def _at_least_cents(amount: Decimal) -> Decimal:
    """Trailing zeros dropped, but never fewer than two decimals: 0.0150 -> 0.015, 2.2 -> 2.20."""
    amount = amount.normalize()
    return amount.quantize(CENT) if amount.as_tuple().exponent > -2 else amount


def money_usd(amount: Decimal) -> str:
    """A USD amount by magnitude: `$1,234.57`, `$0.07812`, `$0.00`."""
    if amount == 0:
        return "$0.00"
    if abs(amount) < 1:
        quantum = Decimal(1).scaleb(abs(amount).adjusted() - SIGNIFICANT + 1)
        rounded = amount.quantize(quantum, rounding=ROUND_HALF_EVEN)
        if abs(rounded) < 1:  # 0.99996 rounds up to a dollar, and is then shown as one
            return _usd(_at_least_cents(rounded))
    return _usd(amount.quantize(CENT, rounding=ROUND_HALF_EVEN))


def money(units: int | None) -> str:
    """Integer money units (1e-10 USD) by magnitude."""
    return money_usd(units_to_usd(units))


def money_exact(units: int | None) -> str:
    """The exact amount, to 1e-10 USD, without trailing zeros past the cents: `$822.81712345`."""
    return usd_exact(units_to_usd(units))


def usd_exact(amount: Decimal) -> str:
    return _usd(_at_least_cents(amount))


def per_million(price: Decimal | None) -> str:
    """A per-token price as dollars per 1M tokens, in the precision it is quoted: `$0.10`, `$0.075`."""
    if price is None:
        return "—"
    return _usd(_at_least_cents(price * 1_000_000))


def tokens(number: int | None) -> str:
    """Counts the way people read them: 1.2B, 34.5M, 12.3K; under 1,000 as they are."""
    if number is None:
        return "—"
    if -1000 < number < 1000:  # most cells of a chart's table: no suffix to look for
        return f"{int(number)}"
    n = float(number)
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= limit:
            return f"{n / limit:.1f}{suffix}"
    raise AssertionError(number)  # every |n| >= 1000 has a suffix above


def tokens_exact(number: int) -> str:
    return f"{int(number):,}"


def percent(share: float | None, places: int = 1) -> str:
    """A 0-1 share as a percentage: 0.9876 -> 98.8%."""
    if share is None:
        return "—"
    return f"{share * 100:.{places}f}%"


@dataclass(frozen=True)
class Change:
    """A figure against the previous window of equal length, and how much of that window had traffic."""

    change: float | None  # (now - before) / before; None when before is nothing
    covered_days: int | None = None  # days of the previous window with traffic behind them; None: all
    window_days: int | None = None

    @property
    def partial(self) -> bool:
        return (self.change is not None and self.covered_days is not None and self.window_days is not None
                and 0 < self.covered_days < self.window_days)

    @property
    def new(self) -> bool:
        return self.change is None or self.covered_days == 0

    @property
    def text(self) -> str:
        """`new`, `partial: 5 of 30 days`, or `+12.5%`."""
        if self.new:
            return "new"
        if self.partial:
            return f"partial: {self.covered_days} of {self.window_days} days"
        return signed_percent(self.change)

    @property
    def direction(self) -> str:
        """The class of its colour: up, down, or muted for new and partial."""
        if self.new or self.partial:
            return "muted"
        return "up" if self.change >= 0 else "down"


def signed_percent(change: float, places: int = 1) -> str:
    return f"{'+' if change >= 0 else ''}{change * 100:.{places}f}%"


def covered_days(*, first_day, window_start, window_days: int) -> int | None:
    """Days of a previous window on or after the first day with traffic (None: no traffic at all)."""
    if first_day is None:
        return None
    return max(0, min(window_days, window_days - (first_day - window_start).days))
