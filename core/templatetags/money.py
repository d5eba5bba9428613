"""The template filters of numbers, one set for every page: money, prices, tokens, shares and changes
(core.numbers says the rules). A shortened figure carries its exact value in a `title` (shown on hover)."""
from decimal import Decimal

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from core import numbers
from core.money import units_to_usd

register = template.Library()


def _with_exact(shown: str, exact: str) -> str:
    if shown == exact:
        return shown
    return format_html('<span class="exact" title="{}">{}</span>', exact, shown)


@register.filter
def usd(units: int | None) -> str:
    """Integer money units by magnitude, the exact amount on hover: {{ row.spend_units|usd }}."""
    return _with_exact(numbers.money(units), numbers.money_exact(units))


@register.filter
def usd_amount(amount) -> str:
    """A Decimal USD amount (a price per 1M tokens that was computed, not quoted) by magnitude, exact on hover."""
    if amount in (None, ""):
        return "—"
    amount = Decimal(amount)
    return _with_exact(numbers.money_usd(amount), numbers.usd_exact(amount))


@register.filter
def usd_text(units: int | None) -> str:
    """The same figure as plain text, for an attribute or a sentence that cannot hold markup."""
    return numbers.money(units)


@register.filter
def usd_exact(units: int | None) -> str:
    """The exact amount (one generation's cost): $0.0000834360."""
    return numbers.money_exact(units)


@register.filter
def usd_input(units: int | None) -> str:
    """Money as a form value in dollars and cents: 12.50."""
    return "" if units is None else f"{units_to_usd(units).quantize(numbers.CENT):f}"


@register.filter
def per_million(price) -> str:
    """A per-token Decimal price as dollars per 1M tokens: {{ endpoint.prompt_price|per_million }}."""
    if price in (None, ""):
        return "—"
    return numbers.per_million(price)


@register.filter
def compact(number: int | None) -> str:
    """Token counts the way people read them (1.2B, 34.5M, 12.3K), the exact count on hover."""
    shown = numbers.tokens(number)
    if number is None or -1000 < number < 1000:
        return shown
    return _with_exact(shown, numbers.tokens_exact(number))


@register.filter
def percent(share: float | None, places: int = 1) -> str:
    """A 0-1 share as a percentage: 0.9876 -> 98.8%."""
    return numbers.percent(share, places)


def change_html(change: "numbers.Change | float | None", *, short: bool = False) -> SafeString:
    """A change against the previous window: `+12.5%` in its colour, `new`, or `partial: 5 of 30 days`
    (`short`, in a table's cell: `partial`, the days and the percentage on hover)."""
    if not isinstance(change, numbers.Change):
        change = numbers.Change(change)
    title = ""
    if change.partial:
        title = (f"{numbers.signed_percent(change.change)} against a previous window with traffic on "
                 f"{change.covered_days} of its {change.window_days} days")
    text = "partial" if short and change.partial else change.text
    return format_html('<span class="{}"{}>{}</span>', change.direction,
                       mark_safe(format_html(' title="{}"', title)) if title else "", text)


@register.filter
def change(value) -> SafeString:
    """{{ c.change|change }}: a float, None, or a core.numbers.Change."""
    return change_html(value)
