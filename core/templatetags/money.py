from django import template

from core.money import format_usd

register = template.Library()


@register.filter
def usd(units: int | None, places: int = 2) -> str:
    """Format integer money units as dollars: {{ row.spend_units|usd }}."""
    return format_usd(units, places)


@register.filter
def per_million(price) -> str:
    """A per-token Decimal price as dollars per 1M tokens: {{ endpoint.prompt_price|per_million }}."""
    if price is None:
        return "—"
    value = (price * 1_000_000).normalize()
    return f"${value:f}"


@register.filter
def compact(number: int | None) -> str:
    """Token counts the way people read them: 1.2B, 34.5M, 12.3K."""
    if number is None:
        return "—"
    n = float(number)
    if -1e3 < n < 1e3:  # most cells of a chart's table (a day without traffic is 0): no suffix to look for
        return f"{int(number)}"
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= limit:
            return f"{n / limit:.1f}{suffix}"
    return f"{int(number)}"


@register.filter
def percent(share: float | None, places: int = 1) -> str:
    """A 0-1 share as a percentage: 0.9876 -> 98.8%."""
    if share is None:
        return "—"
    return f"{share * 100:.{places}f}%"

