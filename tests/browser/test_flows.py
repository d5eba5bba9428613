"""The main flows clicked through as a person would: model → provider → app; sign in → overview →
activity filter → CSV of that view; buy credits → the month's statement."""
import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import charts_drawn, rows_of, sign_in

pytestmark = pytest.mark.browser


def test_from_a_model_to_its_provider_and_to_an_app_using_it(tab, public_site):
    tab.open("/rankings/?window=day")
    with tab.page.expect_navigation():
        tab.page.locator("#model-ranking").get_by_role("link", name="alpha", exact=True).click()
    expect(tab.page.get_by_role("navigation", name="Breadcrumb").get_by_role("listitem")).to_have_text(
        ["Models", "Lab", "alpha"])

    with tab.page.expect_navigation():
        tab.page.locator("#providers").get_by_role("link", name="DeepInfra").click()
    assert tab.page.url == f"{tab.origin}/providers/deepinfra/"
    expect(tab.page.get_by_role("heading", level=1)).to_have_text("DeepInfra")
    assert charts_drawn(tab.page) == ["chart-provider-health"]

    tab.page.go_back()
    with tab.page.expect_navigation():
        tab.page.get_by_role("link", name="App One", exact=True).click()
    expect(tab.page.get_by_role("heading", level=1)).to_have_text("App One")
    expect(tab.page.get_by_role("navigation", name="Breadcrumb").get_by_role("listitem")).to_have_text(
        ["Rankings", "Apps · App One"])


def test_sign_in_then_filter_the_activity_and_download_that_view(tab, account_site):
    sign_in(tab, next_path="/account/")
    with tab.page.expect_navigation():
        tab.page.get_by_role("navigation", name="Account").get_by_role("link", name="Activity").click()
    tab.page.get_by_label("Group by").select_option("model")
    tab.page.locator('select[name="model"]').select_option(label="lab/alpha")
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Show").click()
    assert "group_by=model" in tab.page.url
    # Last 30 days of lab/alpha for account A: r1 $0.015 and r3 (failed, $0); r4 is 40 days old.
    names = [row[0].removesuffix(" +") for row in rows_of(tab.page, "table.activity-groups")]
    assert "lab/alpha" in names
    assert "lab/beta" not in names

    with tab.page.expect_download() as download:
        tab.page.get_by_role("link", name="Download this view (CSV)").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    body = [row for row in rows[1:] if "lab/alpha" in row]
    assert body
    assert all("lab/beta" not in row for row in rows)
    assert sum(float(row[rows[0].index("spend_usd")]) for row in body) == pytest.approx(0.015)


def test_buy_credits_then_read_them_on_the_statement(tab, account_site, settings):
    settings.BILLING_GATEWAY = "demo"  # the live server runs with DEBUG off, where the demo gateway is opt-in
    sign_in(tab, next_path="/account/credits/")
    tab.page.get_by_label("Amount (USD)").fill("10")
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Review fee and total").click()
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Pay").click()
    expect(tab.page.locator(".messages")).to_contain_text("Added $10.00 of credits")

    with tab.page.expect_navigation():
        tab.page.get_by_role("navigation", name="Account").get_by_role("link", name="Statements").click()
    with tab.page.expect_navigation():
        tab.page.locator("main table a").first.click()
    lines = {row[0]: row[1] for row in rows_of(tab.page, "main table") if len(row) == 2}
    assert lines["Purchases"] == "$10.00"
