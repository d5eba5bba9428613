"""Every page a person reaches, in a real browser at a phone's and a desktop's width, light and dark:
no page wider than the window, no table clipped (or needing sideways scrolling at desktop width), and
no serious or critical axe-core finding. The pages are listed in tests/browser/probe.py."""
from decimal import Decimal

import pytest

from billing.budgets import budget_create
from billing.models import Membership
from billing.purchases import credits_purchase_start
from core.money import usd_to_units
from tests.analytics.conftest import account_traffic
from tests.browser.conftest import PASSWORD
from tests.browser.probe import (
    ACCOUNT,
    FOLLOW_ACCOUNT,
    FOLLOW_PUBLIC,
    PUBLIC,
    charts_drawn,
    detail_paths,
    probe,
)

pytestmark = pytest.mark.browser

WIDTHS = (390, 1280)


@pytest.fixture
def whole_site(transactional_db, tmp_path, settings):
    """Account A's traffic (public too: listed models, an app) with a purchase (a statement with lines), and alice: its owner, staff."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from marketplace.models import Model

    accounts = account_traffic(tmp_path, today=timezone.now().date())  # the live server's real clock
    Model.objects.update(listed=True)
    user = get_user_model().objects.create_user("alice", "alice@example.com", PASSWORD, is_staff=True,
                                                is_superuser=True)
    Membership.objects.create(user=user, account=accounts["a"], role=Membership.Role.OWNER)
    budget_create(account=accounts["a"], scope="key", target="k1", amount_units=usd_to_units("0.10"), period="month")
    budget_create(account=accounts["a"], scope="each_user", amount_units=usd_to_units(5), period="week", mode="soft")
    settings.BILLING_GATEWAY = "demo"  # the live server runs with DEBUG off, where the demo gateway is opt-in
    payment, _ = credits_purchase_start(account=accounts["a"], amount=Decimal(25), user=user)
    payment.refresh_from_db()
    assert payment.status == "succeeded", payment.status  # the demo gateway credits at once
    _alert_channels(accounts["a"])
    return accounts


def _alert_channels(account) -> None:
    """A webhook with a long URL and a failed delivery with a long body: the alerts page and the log."""
    from django.utils import timezone

    from billing.models import AlertChannel, AlertDelivery, AlertEvent

    now = timezone.now()
    AlertChannel.objects.create(account=account, kind="email", created=now)
    channel = AlertChannel.objects.create(
        account=account, kind="webhook", created=now, secret="whsec_" + "A" * 32, events=["balance.low"],
        url="https://hooks.example.com/services/T0123456789/B0123456789/averyveryverylongtokenwithoutanybreaks0123")
    event = AlertEvent.objects.create(account=account, event="balance.low", dedupe_key="walk", created=now,
                                      subject="Low credit balance on acct_a", text="The balance is $3.00.",
                                      data={"balance_usd": "3.00"})
    AlertDelivery.objects.create(channel=channel, event=event, created=now, due_at=now, sent_at=now, status="failed",
                                 status_code=503, duration_ms=42, error="HTTP 503: " + "x" * 200,
                                 body='{"type":"balance.low","data":{"subject":"' + "y" * 300 + '"}}')


def _walk(tab, paths: list[str], *, dark: bool) -> list[str]:
    problems = []
    tab.page.emulate_media(color_scheme="dark" if dark else "light")
    for width in WIDTHS:
        tab.page.set_viewport_size({"width": width, "height": 900})
        for path in paths:
            response = tab.page.goto(tab.origin + path)
            expected = 404 if path == "/no-such-page/" else 200
            assert response is not None, path
            assert response.status == expected, (path, response.status)
            charts_drawn(tab.page)
            found = probe(tab.page, path)
            problems += [f"{width}px{' dark' if dark else ''} {path}: {p}" for p in found.problems]
    return problems


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_every_page_fits_and_passes_axe(tab, whole_site, dark):
    public = PUBLIC + detail_paths(tab.page, tab.origin, FOLLOW_PUBLIC)
    assert len(public) == len(PUBLIC) + len(FOLLOW_PUBLIC), public  # every kind of detail page was found
    problems = _walk(tab, public, dark=dark)

    tab.page.goto(tab.origin + "/accounts/login/")
    tab.page.get_by_label("Username").fill("alice")
    tab.page.get_by_label("Password").fill(PASSWORD)
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="Sign in").click()
    account = ACCOUNT + detail_paths(tab.page, tab.origin, FOLLOW_ACCOUNT)
    assert len(account) == len(ACCOUNT) + len(FOLLOW_ACCOUNT), account
    problems += _walk(tab, account, dark=dark)
    assert problems == [], "\n".join(problems)
