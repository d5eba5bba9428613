"""The budgets page in a real browser: an owner adds a budget, sees its use bar, hold and reset, on a
desktop and on a phone (no sideways scrolling). Screenshots go to var/screenshots/."""
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def test_an_owner_adds_a_budget_and_reads_its_use(new_tab, account_site):
    from billing import budgets
    from billing.ledger import ledger_post
    from billing.models import ApiKey
    from core.money import usd_to_units

    account = account_site["a"]
    ledger_post(account_id=account.pk, kind="purchase", amount_units=usd_to_units("20"), idempotency_key="shot")
    tab = new_tab()
    sign_in(tab, next_path="/account/credits/budgets/")
    expect(tab.page.locator("#no-budgets")).to_be_visible()
    form = tab.page.locator("#budget-new")
    form.get_by_label("Scope").select_option("key")
    form.get_by_label("Target").fill("k1")
    form.get_by_label("Amount (USD)").fill("0.10")
    form.get_by_label("Period").select_option("none")
    with tab.page.expect_navigation():
        form.get_by_role("button", name="Add budget").click()
    expect(tab.page.locator(".messages")).to_contain_text("Budget saved")
    # k1 spent r1 $0.015 + r3 $0 + r4 $0.01 in all (the fixture traffic), counted when the budget was made.
    budget = tab.page.locator("section.budget")
    expect(budget.locator(".budget-spent")).to_have_text("$0.025")
    budgets.spend_reserve(reservation_id="gen-held", key=ApiKey.objects.get(account=account, external_id="k1"),
                          amount_units=usd_to_units("0.05"))
    tab.page.reload()
    expect(budget.locator(".budget-reserved")).to_have_text("$0.05")
    expect(budget.locator(".budget-used")).to_contain_text("$0.075 of $0.10 used (75%)")
    expect(budget.locator(".budget-resets")).to_have_text("never")
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.page.screenshot(path=str(SHOTS / "budgets-1280.png"), full_page=True)

    phone = new_tab(width=390)
    phone.open("/account/credits/budgets/")
    expect(phone.page.locator(".budget-used")).to_be_visible()
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= 390
    phone.page.screenshot(path=str(SHOTS / "budgets-390.png"), full_page=True)
