"""Chart series and the plotly figures of every page, as the JSON plotly.js draws (static/js/charts.js).

Figures are written as plain plotly figure dicts: building them through plotly.graph_objects
validated every property and cost more than the rest of a page together.

plotly.js reads a subset of HTML in every text it draws (legend entries, tick labels, hover labels,
titles: `<a href>`, `<b>`, `<br>`, entities), so an app or model named `<a href="…">` would be a
live link in a legend. Every text of a figure goes through `_text`, which escapes it: plotly then
draws the characters themselves.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from html import escape
from typing import Protocol

from core import numbers

TOP_SERIES = 8  # a legend reads at a glance up to about this many; the rest are one "Others"
OTHERS = "Others"
# Distinct on a light and a dark background alike (Tableau 10 and its lighter half).
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#2f9fd8", "#a0cbe8", "#ffbe7d", "#8cd17d", "#b6992d", "#f1ce63", "#86bcb6",
           "#d37295", "#fabfd2", "#d4a6c8", "#79706e"]
OTHERS_COLOUR = "#9aa4b1"


@dataclass(frozen=True)
class Series:
    """Values per period for named series (a stacked chart and its table)."""

    periods: list[str]
    series: dict[str, list[int]]

    @property
    def rows(self) -> list[tuple[str, list[int]]]:
        return list(self.series.items())

    def top(self, n: int = TOP_SERIES) -> Series:
        """The `n` largest series (by their sum) with data, and the rest added up as one "Others"."""
        with_data = [(name, values) for name, values in self.series.items() if any(values)]
        if len(with_data) <= n:
            return Series(self.periods, dict(with_data))
        ranked = sorted(with_data, key=lambda item: -sum(v or 0 for v in item[1]))
        kept = dict(ranked[:n])
        rest = [values for _, values in ranked[n:]]
        kept[OTHERS] = [sum((values[i] or 0 for values in rest), start=type(rest[0][i] or 0)()) for i in
                        range(len(self.periods))]
        return Series(self.periods, kept)

    @property
    def table(self) -> list[tuple[str, list[int]]]:
        """One row per period with the value of each series (the chart's no-JS table)."""
        columns = list(self.series.values())
        return [(period, [values[i] for values in columns]) for i, period in enumerate(self.periods)]


class Shares(Protocol):
    """A row of `volume_vs_money` (analytics.rankings.leaderboards.VolumeMoney)."""

    author: str
    token_share: float
    spend_share: float


def _text(value):
    """A label as plotly should draw it: literally (markup escaped); numbers and None as they are."""
    return escape(value, quote=False) if isinstance(value, str) else value


def _texts(values: list) -> list:
    return [_text(v) for v in values]


LAYOUT = {"barmode": "stack", "legend": {"orientation": "h", "y": -0.2}, "height": 380,
          "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)", "hovermode": "x unified"}


class Palette:
    """One colour per model, provider or author across every chart of a page.

    A name starts from the colour its digest picks (so it tends to keep its colour from page to page)
    and moves to the next free one when another name of the page holds it.
    """

    def __init__(self) -> None:
        self.colours: dict[str, str] = {}

    def colour(self, name: str) -> str:
        if name == OTHERS:
            return OTHERS_COLOUR
        if name not in self.colours:
            start = int(hashlib.blake2s(name.encode(), digest_size=4).hexdigest(), 16) % len(PALETTE)
            taken = set(self.colours.values())
            free = [PALETTE[(start + i) % len(PALETTE)] for i in range(len(PALETTE))]
            self.colours[name] = next((c for c in free if c not in taken), PALETTE[start])
        return self.colours[name]


_page_palette: ContextVar[Palette | None] = ContextVar("page_palette", default=None)


def page_palette() -> Palette:
    """The palette of the page being built (core.middleware starts one per request)."""
    palette = _page_palette.get()
    if palette is None:
        palette = Palette()
        _page_palette.set(palette)
    return palette


def page_palette_reset() -> None:
    _page_palette.set(Palette())


def _hover_texts(values: list, unit: str) -> list[str]:
    """Each point as the page writes it: money by magnitude, tokens exact, percentages with one decimal."""
    if unit == "USD":
        return [numbers.money_usd(Decimal(v)) if v is not None else "—" for v in values]
    if unit.startswith("%"):
        return [numbers.percent(None if v is None else float(v) / 100) for v in values]
    if unit == "tokens" or unit == "requests":
        return ["—" if v is None else numbers.tokens_exact(v) for v in values]
    return ["—" if v is None else f"{v:,}" if isinstance(v, int) else f"{float(v):,.2f}" for v in values]


def _trace(kind: dict, name: str, x: list, y: list, *, unit: str, shown: list | None = None) -> dict:
    colour = page_palette().colour(name)
    trace = {**kind, "name": _text(name), "x": x, "y": y, "customdata": _hover_texts(shown if shown is not None
                                                                                      else y, unit),
             "hovertemplate": "%{fullData.name}: %{customdata}<extra></extra>"}
    if kind["type"] == "bar":
        trace["marker"] = {"color": colour}
    else:
        trace["line"] = {"color": colour}
        trace["marker"] = {"color": colour}
    return trace


def stacked_bars(series: Series, *, title: str, percent: bool = False, unit: str = "tokens") -> dict:
    """Stacked bars per period; `percent` stacks to 100%."""
    series = series.top()
    totals = [sum(values[i] for values in series.series.values()) or 1 for i in range(len(series.periods))]
    data, x = [], _texts(series.periods)  # one list of labels for every trace
    for name, values in series.series.items():
        y = [round(v / t * 100, 3) for v, t in zip(values, totals, strict=True)] if percent else values
        data.append(_trace({"type": "bar"}, name, x, y, unit="% of" if percent else unit))
    layout = {**LAYOUT, "title": {"text": _text(title)},
              "yaxis": {"title": {"text": _text(f"% of {unit}" if percent else unit)}}}
    return {"data": data, "layout": layout}


def lines(series: Series, *, title: str, unit: str) -> dict:
    """One line per series (for values that do not add up, such as a mean latency)."""
    x = _texts(series.periods)  # one list of labels for every trace
    shown = [(name, values) for name, values in series.series.items() if any(v is not None for v in values)]
    data = [_trace({"type": "scatter", "mode": "lines+markers"}, name, x, values, unit=unit)
            for name, values in shown[:TOP_SERIES * 2]]
    layout = {**{k: v for k, v in LAYOUT.items() if k != "barmode"}, "title": {"text": _text(title)},
              "yaxis": {"title": {"text": _text(unit)}}}
    return {"data": data, "layout": layout}


def daily_stacked(series: Series, *, title: str) -> dict:
    """Stacked bars per day."""
    return stacked_bars(series, title=title)


def volume_vs_money(rows: Sequence[Shares]) -> dict:
    """Each author's share of tokens beside its share of spend."""
    names = _texts([r.author for r in rows])
    data = [{"type": "bar", "name": "share of tokens", "x": names, "y": [round(r.token_share * 100, 3) for r in rows]},
            {"type": "bar", "name": "share of spend", "x": names, "y": [round(r.spend_share * 100, 3) for r in rows]}]
    layout = {**LAYOUT, "barmode": "group", "title": {"text": "Volume against money"},
              "yaxis": {"title": {"text": "%"}}}
    return {"data": data, "layout": layout}


def provider_health(rows: list[tuple]) -> dict:
    """A provider's daily uptime and mean latency."""
    dates = _texts([r[0] for r in rows])
    data = [{"type": "scatter", "mode": "lines+markers", "name": "uptime %", "x": dates,
             "y": [None if r[2] is None else round(r[2] * 100, 3) for r in rows]},
            {"type": "scatter", "mode": "lines", "name": "mean latency ms", "x": dates,
             "y": [None if r[3] is None else round(r[3], 1) for r in rows], "yaxis": "y2"}]
    layout = {**{k: v for k, v in LAYOUT.items() if k != "barmode"}, "title": {"text": "Uptime and latency"},
              "yaxis": {"title": {"text": "uptime %"}, "range": [0, 100.5]},
              "yaxis2": {"title": {"text": "ms"}, "overlaying": "y", "side": "right"}}
    return {"data": data, "layout": layout}


def pie(labels: list[str], values: list, *, title: str) -> dict:
    """A ring of slices (the monthly report's spend by model)."""
    palette = page_palette()
    return {"data": [{"type": "pie", "labels": _texts(labels), "values": values, "hole": 0.45, "sort": False,
                      "marker": {"colors": [palette.colour(label) for label in labels]}}],
            "layout": {"title": {"text": _text(title)}, "height": 380, "paper_bgcolor": "rgba(0,0,0,0)"}}
