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
    assert "<tr><td>2026-11-01</td><td class=\"num\"><span class=\"exact\" title=\"1,500\">1.5K</span></td><td class=\"num\">$0.045</td></tr>" in html
    assert "<tr><td>2026-11-02</td><td class=\"num\"><span class=\"exact\" title=\"2,500,000\">2.5M</span></td><td class=\"num\">—</td></tr>" in html
    assert html.startswith('<div class="table-wrap" tabindex="0"><table><thead><tr><th>Day</th>')


# The leaderboard rows as the template loop rendered them before `rank_rows` (an include per row).
_RANK_ROWS_LOOP = """{% load money %}{% for row in rows %}
<tr>
  <td class="num">{{ row.rank }}</td>
  <td><a href="{{ row.url }}">{{ row.name }}</a>{% if row.author %}<br><span class="muted">{% if row.author_url %}<a href="{{ row.author_url }}">{{ row.author }}</a>{% else %}{{ row.author }}{% endif %}</span>{% endif %}</td>
  <td class="num">{% if metric == "spend" %}{{ row.value|usd }}{% else %}{{ row.value|compact }}{% endif %}</td>
  <td class="num">{{ row.change|change }}</td>
  <td class="num hide-sm">{% widthratio row.share 1 100 %}%</td>
</tr>{% endfor %}"""


def test_rank_rows_render_as_the_template_loop_did_and_escape_names():
    import re

    from django.template import Context, Template

    from analytics.rankings.leaderboards import RankRow
    from core.templatetags.tables import rank_rows

    rows = [RankRow(1, 7, "<b>Evil</b> & co", "e", "/apps/e/?a=1&b=2", 'https://x.example/"', "", 1_234_567,
                    1_000_000, 0.125),
            RankRow(2, 8, "Beta", "b", "/models/lab/b/", "Lab", "/authors/lab/", 300, 600, 0.005),
            RankRow(3, 9, "Gamma", "g", "/models/lab/g/", "Lab", "/authors/lab/", 40, None, 0.875),
            RankRow(4, 10, "Zero", "z", "/models/lab/z/", "", "", 5, 5, 0.0),
            RankRow(5, 11, "Tiny drop", "t", "/models/lab/t/", "Lab", "", 999, 1000, 0.0045)]
    for metric in ("tokens", "spend"):
        loop = Template(_RANK_ROWS_LOOP).render(Context({"rows": rows, "metric": metric}))
        assert rank_rows(rows, metric) == re.sub(r">\s+<", "><", loop.strip())
    html = rank_rows(rows, "tokens")
    assert "<b>" not in html
    assert "&lt;b&gt;Evil&lt;/b&gt; &amp; co" in html
    assert '<span class="up">+23.5%</span>' in html  # 1,234,567 against 1,000,000
    assert '<span class="down">-50.0%</span>' in html
    assert '<span class="muted">new</span>' in html
    assert '<span class="down">-0.1%</span>' in html
