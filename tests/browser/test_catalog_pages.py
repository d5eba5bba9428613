"""A model page and an app page in a real browser, reached the way a visitor would."""
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import charts_drawn, rows_of

pytestmark = pytest.mark.browser


def test_a_model_page_lists_its_providers_with_prices_per_million_tokens(tab, public_site):
    tab.open("/rankings/?window=day")
    with tab.page.expect_navigation():
        tab.page.locator("#model-ranking").get_by_role("link", name="alpha", exact=True).click()

    assert tab.page.url == f"{tab.origin}/models/lab/alpha/"
    expect(tab.page.get_by_role("heading", level=1)).to_have_text("alpha")
    # Priced by the fixture per token: DeepInfra 0.0000001 in / 0.0000004 out, Other 0.00000025 / 0.000002.
    # Only DeepInfra served alpha, so it alone has figures and carries every mark.
    providers = [row[:3] for row in rows_of(tab.page, "#providers")]
    assert providers == [
        ["DeepInfra cheapest fastest most reliable", "$0.10", "$0.40"],
        ["Other", "$0.25", "$2.00"],
    ]
    expect(tab.page.locator(".stat", has_text="Input from")).to_contain_text("$0.10")
    assert charts_drawn(tab.page) == ["chart-model-uptime", "chart-model-daily"]
    expect(tab.page.locator("#chart-model-daily .gtitle")).to_have_text("Tokens per day by provider")
    expect(tab.page.locator("#chart-model-uptime .gtitle")).to_have_text("Uptime per hour, last 72 hours")


def test_an_app_page_shows_its_tokens_and_the_models_it_used(tab, public_site):
    tab.open("/rankings/?window=week")
    with tab.page.expect_navigation():
        tab.page.get_by_role("link", name="App One", exact=True).first.click()

    expect(tab.page.get_by_role("heading", level=1)).to_have_text("App One")
    expect(tab.page.get_by_role("main")).to_contain_text("Origin: https://app.example")
    # App One sent one request: alpha, 800 prompt + 200 completion tokens.
    models_used = 'table:has(th:text-is("Tokens (30 days)"))'
    assert rows_of(tab.page, models_used) == [["1", "alpha Lab", "1.0K", "new", "100%"]]
    assert charts_drawn(tab.page) == ["chart-app-daily"]
    expect(tab.page.locator("#chart-app-daily .gtitle")).to_have_text("Tokens per day by model")
