"""An account holder in a real browser: sign in, read the overview, change the period, download usage.csv."""
import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import charts_drawn, rows_of, sign_in

pytestmark = pytest.mark.browser


def test_overview_then_a_custom_period(tab, account_site):
    d2 = account_site["d2"]
    sign_in(tab, next_path="/account/")
    # Last 30 days: $0.045 (BYOK excluded) against $0.01 in the 30 days before, which the account's
    # traffic (from 40 days ago) covers for 11 of its 30 days: partial, the +350% on hover only.
    expect(tab.page.locator('[data-stat="spend"]')).to_contain_text("$0.045")
    expect(tab.page.locator('[data-stat="spend"]')).to_contain_text("partial: 11 of 30 days vs previous")
    assert tab.page.locator('[data-stat="spend"] .delta span').first.get_attribute("title") == (
        "+350.0% against a previous window with traffic on 11 of its 30 days")
    expect(tab.page.locator('[data-stat="requests"]')).to_contain_text("4")
    assert charts_drawn(tab.page) == ["chart-spend", "chart-tokens"]
    assert rows_of(tab.page, '[data-top="model"] table') == [
        ["lab/beta", "$0.03", "3.2K", "2", "66.7%"], ["lab/alpha", "$0.015", "4.5K", "2", "33.3%"]]

    tab.page.locator('input[name="start"]').fill(d2.isoformat())
    tab.page.locator('input[name="end"]').fill(d2.isoformat())
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Apply").click()
    assert f"start={d2.isoformat()}" in tab.page.url
    expect(tab.page.get_by_role("heading", level=1)).to_contain_text(f"{d2.isoformat()} to {d2.isoformat()}")
    expect(tab.page.locator('[data-stat="spend"]')).to_contain_text("$0.015")
    expect(tab.page.locator('[data-stat="requests"]')).to_contain_text("1")

    with tab.page.expect_navigation():
        tab.page.get_by_role("link", name="Last 7 days").click()
    expect(tab.page.locator('[data-stat="requests"] .value')).to_have_text("4")


def test_download_usage_csv_from_the_reports_page(tab, account_site):
    d1, d2 = account_site["d1"], account_site["d2"]
    sign_in(tab, next_path="/account/")
    with tab.page.expect_navigation():
        tab.page.get_by_role("navigation", name="Account").get_by_role("link", name="Reports").click()
    tab.page.locator("#usage-start").fill(d2.isoformat())
    tab.page.locator("#usage-end").fill(d1.isoformat())
    with tab.page.expect_download() as download:
        tab.page.get_by_role("button", name="Download usage.csv").click()
    assert download.value.suggested_filename == f"usage-acct_a-{d2.isoformat()}-{d1.isoformat()}.csv"
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert rows[0][:4] == ["date", "model", "api_key", "api_key_name"]
    spend = rows[0].index("spend_usd")
    assert rows[0][-1] == "unpriced_requests"
    assert [(r[0], r[1], r[2], r[4], r[spend]) for r in rows[1:]] == [
        (d2.isoformat(), "lab/alpha", "k1", "1", "0.0150000000"),
        (d1.isoformat(), "lab/alpha", "k1", "1", "0.0000000000"),
        (d1.isoformat(), "lab/beta", "k2", "2", "0.0300000000"),
    ]
