"""Chart series and the plotly figures of every page, as the JSON plotly.js draws (static/js/charts.js).

Figures are written as plain plotly figure dicts: building them through plotly.graph_objects
validated every property and cost more than the rest of a page together.

plotly.js reads a subset of HTML in every text it draws (legend entries, tick labels, hover labels,
titles: `<a href>`, `<b>`, `<br>`, entities), so an app or model named `<a href="…">` would be a
live link in a legend. Every text of a figure goes through `_text`, which escapes it: plotly then
draws the characters themselves.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Protocol


@dataclass(frozen=True)
class Series:
    """Values per period for named series (a stacked chart and its table)."""

    periods: list[str]
    series: dict[str, list[int]]

    @property
    def rows(self) -> list[tuple[str, list[int]]]:
        return list(self.series.items())

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
          "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)"}


def stacked_bars(series: Series, *, title: str, percent: bool = False, unit: str = "tokens") -> dict:
    """Stacked bars per period; `percent` stacks to 100%."""
    totals = [sum(values[i] for values in series.series.values()) or 1 for i in range(len(series.periods))]
    data, x = [], _texts(series.periods)  # one list of labels for every trace
    for name, values in series.series.items():
        y = [round(v / t * 100, 3) for v, t in zip(values, totals, strict=True)] if percent else values
        data.append({"type": "bar", "name": _text(name), "x": x, "y": y})
    layout = {**LAYOUT, "title": {"text": _text(title)},
              "yaxis": {"title": {"text": _text(f"% of {unit}" if percent else unit)}}}
    return {"data": data, "layout": layout}


def lines(series: Series, *, title: str, unit: str) -> dict:
    """One line per series (for values that do not add up, such as a mean latency)."""
    x = _texts(series.periods)  # one list of labels for every trace
    data = [{"type": "scatter", "mode": "lines+markers", "name": _text(name), "x": x, "y": values}
            for name, values in series.series.items()]
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
    return {"data": [{"type": "pie", "labels": _texts(labels), "values": values, "hole": 0.45, "sort": False}],
            "layout": {"title": {"text": _text(title)}, "height": 380, "paper_bgcolor": "rgba(0,0,0,0)"}}
