"""What a browser does with the public pages: untrusted names stay text, phones fit, nothing is fetched elsewhere."""
import plotly
import pytest
from playwright.sync_api import expect

from marketplace.models import App, Author, Model, Provider
from tests.browser.conftest import charts_drawn

pytestmark = pytest.mark.browser

APP_NAME = "<img src=x onerror=alert(1)>"
# plotly draws `<a href>` in a legend as a live link (its own markup subset): it must stay text.
MODEL_NAME = '<a href="https://evil.test/">Click me</a>'


def _public_pages() -> list[str]:
    alpha = Model.objects.get(slug="lab/alpha")
    return ["/rankings/", alpha.get_absolute_url(), App.objects.get().get_absolute_url()]


def test_names_with_markup_read_as_text_and_create_no_elements(tab, public_site):
    App.objects.update(name=APP_NAME)
    Model.objects.filter(slug="lab/beta").update(name=MODEL_NAME)
    rankings, model_page, app_page = _public_pages()

    tab.open(f"{rankings}?window=day")
    expect(tab.page.locator("#model-ranking").get_by_role("link", name=MODEL_NAME, exact=True)).to_be_visible()
    expect(tab.page.get_by_role("link", name=APP_NAME, exact=True).first).to_be_visible()
    charts_drawn(tab.page)
    # plotly reads `<...>` in labels as its own markup; the name must stay one svg <text>, nothing more.
    assert sorted(tab.page.locator("#chart-weekly-models .legendtext").all_text_contents()) == [MODEL_NAME, "alpha"]
    assert tab.page.locator(".chart img, .chart image, .chart foreignObject").count() == 0
    assert tab.page.locator('.chart a, svg a[href*="evil.test"]').count() == 0

    for path in (model_page, app_page):  # alpha's page lists the app among its top apps
        tab.open(path)
        charts_drawn(tab.page)
        expect(tab.page.get_by_text(APP_NAME, exact=True).first).to_be_visible()
    expect(tab.page.get_by_role("heading", level=1)).to_have_text(APP_NAME)
    assert tab.page.title() == f"{APP_NAME} · Tokengrid"

    tab.page.wait_for_load_state("networkidle")  # an injected <img src=x> would have failed to load by now
    assert tab.page.locator('img[src="x"]').count() == 0
    assert not [url for url in tab.requests if url.endswith("/x")]
    assert tab.dialogs == []


def test_the_public_pages_fit_a_phone_and_tables_scroll_in_their_box(new_tab, public_site):
    phone = new_tab(width=390)
    for path in _public_pages():
        phone.open(path)
        width = phone.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1, f"{path} is {width}px wide on a 390px screen"
    # the providers table is wider than the phone: it scrolls inside its .table-wrap, not the page
    phone.open(_public_pages()[1])
    assert phone.page.locator(".table-wrap:has(#providers)").evaluate("box => box.scrollWidth > box.clientWidth")


def test_every_public_page_loads_plotly_from_the_site_itself(new_tab, public_site):
    plotly_js = f"/assets/plotly-{plotly.__version__}.min.js"
    pages = ["/", *_public_pages(), Author.objects.get(slug="lab").get_absolute_url(),
             Provider.objects.get(name="DeepInfra").get_absolute_url()]
    for path in pages:
        tab = new_tab()
        tab.open(path)
        assert charts_drawn(tab.page), path
        assert tab.origin + plotly_js in tab.requests, path
        assert tab.foreign_requests() == [], path


def test_names_with_markup_stay_text_in_the_account_charts(tab, account_site):
    """An app or model named like a link is one svg <text> in the overview's and the explorer's charts."""
    from tests.browser.conftest import sign_in

    App.objects.update(name=MODEL_NAME)
    Model.objects.filter(slug="lab/alpha").update(name=MODEL_NAME)
    sign_in(tab, next_path="/account/")
    tab.open("/account/activity/?group_by=app")
    assert charts_drawn(tab.page) == ["chart-activity"]
    legend = tab.page.locator("#chart-activity .legendtext").all_text_contents()
    assert MODEL_NAME in legend
    assert tab.page.locator(".chart a, .chart foreignObject, svg a[href*='evil.test']").count() == 0
    for path in ("/account/activity/?group_by=model", "/account/"):
        tab.open(path)
        charts_drawn(tab.page)
        assert tab.page.locator(".chart a, .chart foreignObject, svg a[href*='evil.test']").count() == 0
    assert tab.dialogs == []
