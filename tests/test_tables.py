"""The no-JavaScript tables beside the charts."""
from decimal import Decimal

from core.charts import Series
from core.templatetags.tables import series_table


def test_series_table_escapes_names_and_formats_values():
    data = Series(periods=["2026-11-01", "2026-11-02"],
                  series={"<img src=x onerror=alert(1)>": [1500, 2_500_000], "spend": [Decimal("0.04500"), None]})
    html = series_table(data, "Day")
    assert "<img" not in html
    assert "<th class=\"num\">&lt;img src=x onerror=alert(1)&gt;</th>" in html
    assert "<tr><td>2026-11-01</td><td class=\"num\">1.5K</td><td class=\"num\">$0.0450</td></tr>" in html
    assert "<tr><td>2026-11-02</td><td class=\"num\">2.5M</td><td class=\"num\">—</td></tr>" in html
    assert html.startswith('<div class="table-wrap"><table><thead><tr><th>Day</th>')
