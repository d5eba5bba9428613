"""Tables built in Python where a template loop would cost more than the rest of the page."""
from decimal import ROUND_HALF_EVEN, Decimal

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from .money import compact

register = template.Library()
_CENT_FRACTION = Decimal("0.0001")


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, Decimal):  # money, in USD
        return f"${value.quantize(_CENT_FRACTION, rounding=ROUND_HALF_EVEN):,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return compact(value)


@register.simple_tag
def series_table(data, period_label: str = "Week of") -> str:
    """The no-JavaScript table of a chart's `Series`: one row per period, one column per series.

    Series names are untrusted (app and model names) and escaped here.
    """
    head = "".join(f'<th class="num">{escape(name)}</th>' for name, _ in data.rows)
    body = "".join(
        f"<tr><td>{escape(period)}</td>" + "".join(f'<td class="num">{_cell(v)}</td>' for v in values) + "</tr>"
        for period, values in data.table)
    return mark_safe(  # noqa: S308  (every piece above is escaped or built from numbers)
        f'<div class="table-wrap"><table><thead><tr><th>{escape(period_label)}</th>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>")
