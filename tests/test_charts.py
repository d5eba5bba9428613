"""Chart figures carry untrusted names as text: plotly's markup subset (`<a href>`, `<b>`) is escaped."""
from core import charts
from core.charts import Series

LINK = '<a href="https://evil.test/">Click me</a>'
ESCAPED = '&lt;a href="https://evil.test/"&gt;Click me&lt;/a&gt;'


def test_series_names_categories_and_titles_are_escaped_for_plotly():
    series = Series(periods=["2026-12-01", "<b>week</b>"], series={LINK: [3, 4], "Tom & Jerry": [1, 2]})
    for figure in (charts.stacked_bars(series, title=f"Tokens of {LINK}"),
                   charts.lines(series, title=f"Latency of {LINK}", unit="ms")):
        assert [trace["name"] for trace in figure["data"]] == [ESCAPED, "Tom &amp; Jerry"]
        assert figure["data"][0]["x"] == ["2026-12-01", "&lt;b&gt;week&lt;/b&gt;"]
        assert figure["layout"]["title"]["text"].endswith(ESCAPED)
    bars = charts.stacked_bars(series, title="t", percent=True)
    assert bars["data"][0]["y"] == [75.0, 66.667]  # numbers untouched
