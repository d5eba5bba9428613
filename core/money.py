"""Money as integers: 1 unit = 1e-10 USD, exact on every database and summed without drift.

Analytics and the ledger store integer units (bigint); Decimal is used at the edges (parsing,
pricing, display). 1e-10 USD resolves a single token at the cheapest catalog prices, and a
bigint holds $922M in one row (PostgreSQL sums bigint into numeric, so totals never overflow).
"""
from decimal import ROUND_HALF_EVEN, Decimal

UNITS_PER_USD = 10**10
_QUANTUM = Decimal(1)
MAX_UNITS = 2**63 - 1  # a bigint column: $922,337,203.68
# The largest amount a form takes (a threshold, a top-up, a key limit, an adjustment): a tenth of
# what a bigint holds, so a balance plus any one amount stays in the ledger's range.
MAX_AMOUNT_USD = Decimal(100_000_000)


def usd_to_units(amount: Decimal | int | str) -> int:
    """Convert a USD amount to units, rounding half-even past 1e-10 USD."""
    value = amount if isinstance(amount, Decimal) else Decimal(amount)
    return int((value * UNITS_PER_USD).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN))


def units_to_usd(units: int | None) -> Decimal:
    """Convert units to an exact Decimal USD amount."""
    return Decimal(units or 0).scaleb(-10)


def units_text(units: int) -> str:
    """Exact USD text with all ten decimals, for CSV and JSON: `0.0150000000`, `-1.0000000000`."""
    sign, units = ("-", -units) if units < 0 else ("", units)
    return f"{sign}{units // UNITS_PER_USD}.{units % UNITS_PER_USD:010d}"
