"""Tables built in Python where a template loop would cost more than the rest of the page."""
from decimal import Decimal

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from core.numbers import Change, money_usd

from .money import change_html, compact, usd

register = template.Library()


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, Decimal):  # money, in USD
        return money_usd(value)
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
        f'<div class="table-wrap" tabindex="0"><table><thead><tr><th>{escape(period_label)}</th>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>")


def _ratio(share) -> str:
    """`{% widthratio share 1 100 %}`: a share as a whole percentage, rounded as Django's tag rounds."""
    return str(round(float(share) * 100))


@register.simple_tag
def rank_rows(rows, metric: str = "tokens", coverage: dict | None = None) -> str:
    """The rows of a leaderboard (RankRow): rank, name and author links, value, change and share.

    A page shows up to 130 of them: a template loop (an include per row) cost more than the rest of
    the rankings page. Names and links are untrusted (app and model names, app origins) and escaped here.
    """
    out = []
    for row in rows:
        author = ""
        if row.author:
            name = escape(row.author)
            link = f'<a href="{escape(row.author_url)}">{name}</a>' if row.author_url else name
            author = f'<br><span class="muted">{link}</span>'
        value = usd(row.value) if metric == "spend" else compact(row.value)  # numbers only: safe
        out.append(f'<tr><td class="num">{row.rank}</td><td><a href="{escape(row.url)}">{escape(row.name)}</a>{author}</td>'
                   f'<td class="num">{value}</td><td class="num">{change_html(Change(row.change, **(coverage or {})), short=True)}</td>'
                   f'<td class="num hide-sm">{_ratio(row.share)}%</td></tr>')
    return mark_safe("".join(out))  # noqa: S308  (every piece above is escaped or built from numbers)
