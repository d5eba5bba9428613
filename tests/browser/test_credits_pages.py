"""Credits in a real browser: buy through the demo gateway, watch balance and ledger, set a key limit."""
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import rows_of, sign_in

pytestmark = pytest.mark.browser


def test_buy_credits_through_the_demo_gateway(tab, account_site, settings):
    settings.BILLING_GATEWAY = "demo"  # the live server runs with DEBUG off, where the demo gateway is opt-in
    sign_in(tab, next_path="/account/credits/")
    # The fixture traffic debited $0.055 of usage (r1 0.015 + r2 0.03 + r4 0.01; BYOK r5 is free).
    expect(tab.page.locator("#balance")).to_have_text("-$0.055")
    expect(tab.page.locator('[data-stat="balance"]')).to_contain_text("overdrawn")

    tab.page.get_by_label("Amount (USD)").fill("25")
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Review fee and total").click()
    # Fee 5.5% of $25 = $1.375, above the $0.80 minimum; shown to the cent.
    expect(tab.page.locator("#quote-fee")).to_have_text("$1.38")
    expect(tab.page.locator("#quote-total")).to_have_text("$26.38")
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Pay $26.38").click()

    expect(tab.page.locator(".messages")).to_contain_text("Added $25.00 of credits")
    expect(tab.page.locator("#balance")).to_have_text("$24.94")  # 25 - 0.055 = 24.945, half to even
    expect(tab.page.locator('[data-stat="balance"]')).not_to_contain_text("overdrawn")
    newest = rows_of(tab.page, "#ledger")[0]
    assert newest[1:4] == ["purchase", "$25.00", "$24.94"]  # $24.945 exact on hover
    assert tab.page.locator("#ledger tbody tr").first.locator("td").nth(3).locator(".exact").get_attribute(
        "title") == "$24.945"
    purchases = rows_of(tab.page, "#purchases")
    assert purchases[0][2:5] == ["$25.00", "$1.38", "$26.38"]


def test_set_a_key_limit(tab, account_site):
    sign_in(tab, next_path="/account/keys/")
    row = tab.page.locator("#keys tbody tr", has_text="k1")
    row.get_by_label("Limit of k1 in USD").fill("5")
    row.get_by_label("Interval of k1").select_option("never")
    with tab.page.expect_navigation():
        row.get_by_role("button", name="Save").click()
    expect(tab.page.locator(".messages")).to_contain_text("Limit of k1 saved.")
    # k1 spent r1 $0.015 + r3 $0 + r4 $0.01 in all: $0.025 of $5.
    cells = next(row for row in rows_of(tab.page, "#keys") if row[0] == "k1")
    assert cells[2:6] == ["$5.00", "never", "$0.025 (0%)", "$4.98"]  # $4.975 exact on hover
