"""The rankings page in a real browser: the leaderboard, its window and metric switches, its charts."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import charts_drawn, rows_of

pytestmark = pytest.mark.browser


def test_the_leaderboard_lists_the_models_in_order_and_draws_its_charts(tab, public_site):
    tab.open("/rankings/?window=day&metric=tokens")

    # Last 24 h: alpha 1,000 + 500 tokens against 1,000 the day before; beta 300 against 600; hidden unlisted.
    assert rows_of(tab.page, "#model-ranking") == [
        ["1", "alpha Lab", "1.5K", "+50.0%", "83%"],
        ["2", "beta Lab", "300", "-50.0%", "17%"],
    ]
    expect(tab.page.get_by_role("main")).not_to_contain_text("hidden")
    assert charts_drawn(tab.page) == ["chart-weekly-models", "chart-price-index", "chart-author-share",
                                      "chart-volume-money"]
    expect(tab.page.locator("#chart-price-index .gtitle")).to_have_text("Token price index, USD per 1M tokens")
    legend = tab.page.locator("#chart-weekly-models .legendtext").all_text_contents()
    assert sorted(legend) == ["alpha", "beta"]


def _switch(page, nav: str, label: str, query: str) -> None:
    """Click a tab of the `nav` bar and wait for the page it leads to."""
    with page.expect_navigation():
        page.get_by_role("navigation", name=nav).get_by_role("link", name=label, exact=True).click()
    expect(page).to_have_url(re.compile(re.escape(f"?{query}&")))
    expect(page.get_by_role("navigation", name=nav).get_by_role("link", name=label, exact=True)).to_have_attribute(
        "aria-current", "page")


def test_window_tabs_and_the_metric_switch_change_the_url_and_the_table(tab, public_site):
    tab.open("/rankings/")  # a week by tokens: everything ingested, nothing the week before
    assert rows_of(tab.page, "#model-ranking") == [
        ["1", "alpha Lab", "2.5K", "new", "74%"],  # 2,500 of 3,400 tokens
        ["2", "beta Lab", "900", "new", "26%"],
    ]

    _switch(tab.page, "Window", "Day", "window=day&metric=tokens")
    assert rows_of(tab.page, "#model-ranking")[0] == ["1", "alpha Lab", "1.5K", "+50.0%", "83%"]

    # By spend beta leads: $0.60 against $0.05 the day before; alpha $0.20 + $0.10 against $0.05.
    _switch(tab.page, "Metric", "By spend", "window=day&metric=spend")
    assert rows_of(tab.page, "#model-ranking") == [
        ["1", "beta Lab", "$0.60", "+1100.0%", "67%"],
        ["2", "alpha Lab", "$0.30", "+500.0%", "33%"],
    ]

    _switch(tab.page, "Window", "All", "window=all&metric=spend")
    assert rows_of(tab.page, "#model-ranking") == [
        ["1", "beta Lab", "$0.65", "new", "65%"],
        ["2", "alpha Lab", "$0.35", "new", "35%"],
    ]

    _switch(tab.page, "Metric", "By tokens", "window=all&metric=tokens")
    assert rows_of(tab.page, "#model-ranking")[0] == ["1", "alpha Lab", "2.5K", "new", "74%"]
    expect(tab.page.get_by_role("main")).to_contain_text("tokens of all time")

    _switch(tab.page, "Window", "Month", "window=month&metric=tokens")
    expect(tab.page.get_by_role("main")).to_contain_text("tokens in the last 30 days")
    assert rows_of(tab.page, "#model-ranking")[1] == ["2", "beta Lab", "900", "new", "26%"]
