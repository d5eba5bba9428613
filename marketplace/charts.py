"""Plotly figures of the public pages (built here, drawn by static/js/charts.js)."""
import json

import plotly.graph_objects as go

from analytics.rankings import Series, VolumeMoney

LAYOUT = {"barmode": "stack", "legend": {"orientation": "h", "y": -0.2}, "height": 380,
          "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)"}


def _figure(fig: go.Figure) -> dict:
    return json.loads(fig.to_json())


def stacked_bars(series: Series, *, title: str, percent: bool = False) -> dict:
    """Stacked bars per period; `percent` stacks to 100%."""
    fig = go.Figure()
    totals = [sum(values[i] for values in series.series.values()) or 1 for i in range(len(series.periods))]
    for name, values in series.series.items():
        y = [v / t * 100 for v, t in zip(values, totals, strict=True)] if percent else values
        fig.add_bar(name=name, x=series.periods, y=y)
    fig.update_layout(title=title, yaxis_title="% of tokens" if percent else "tokens", **LAYOUT)
    return _figure(fig)


def volume_vs_money(rows: list[VolumeMoney]) -> dict:
    """Each author's share of tokens beside its share of spend."""
    fig = go.Figure()
    names = [r.author for r in rows]
    fig.add_bar(name="share of tokens", x=names, y=[r.token_share * 100 for r in rows])
    fig.add_bar(name="share of spend", x=names, y=[r.spend_share * 100 for r in rows])
    fig.update_layout(title="Volume against money", yaxis_title="%", **{**LAYOUT, "barmode": "group"})
    return _figure(fig)


def daily_stacked(series: Series, *, title: str) -> dict:
    """Stacked bars per day."""
    return stacked_bars(series, title=title)


def provider_health(rows: list[tuple]) -> dict:
    """A provider's daily uptime and mean latency."""
    fig = go.Figure()
    dates = [r[0] for r in rows]
    fig.add_scatter(name="uptime %", x=dates, y=[None if r[2] is None else r[2] * 100 for r in rows], mode="lines+markers")
    fig.add_scatter(name="mean latency ms", x=dates, y=[r[3] for r in rows], mode="lines", yaxis="y2")
    fig.update_layout(title="Uptime and latency", yaxis={"title": "uptime %", "range": [0, 100.5]},
                      yaxis2={"title": "ms", "overlaying": "y", "side": "right"},
                      **{k: v for k, v in LAYOUT.items() if k != "barmode"})
    return _figure(fig)
