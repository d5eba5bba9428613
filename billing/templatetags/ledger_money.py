from decimal import ROUND_HALF_EVEN, Decimal

from django import template

from core.money import units_to_usd

register = template.Library()


@register.filter
def usd_fixed(units: int | None, places: int = 4) -> str:
    """Money in a ledger column: always `places` decimals, so amounts line up: -$0.0098."""
    usd = units_to_usd(units).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return f"{'-' if usd < 0 else ''}${abs(usd):,}"


@register.filter
def usd_input(units: int | None) -> str:
    """Money as a form value in dollars and cents: 12.50."""
    return "" if units is None else f"{units_to_usd(units).quantize(Decimal('0.01')):f}"
