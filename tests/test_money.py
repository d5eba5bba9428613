"""Money formatting: exact, signed the way people write it."""
from datetime import date
from decimal import Decimal

import pytest

from core.money import units_text, usd_to_units
from core.numbers import Change, covered_days, money, money_exact, per_million, tokens
from core.templatetags.money import change, compact, usd


@pytest.mark.parametrize(("units", "text"), [
    (0, "$0.00"),
    (usd_to_units("37.03"), "$37.03"),
    (usd_to_units("-37.03"), "-$37.03"),
    (usd_to_units("1046"), "$1,046.00"),  # two decimals from $1, never `$1,046.0000`
    (usd_to_units("822.8171"), "$822.82"),
    (usd_to_units("1234567.891"), "$1,234,567.89"),
    (usd_to_units("1.005"), "$1.00"),  # half-even
    (usd_to_units("0.78"), "$0.78"),
    (usd_to_units("0.0045"), "$0.0045"),
    (usd_to_units("-0.0045"), "-$0.0045"),
    (usd_to_units("0.000083436"), "$0.00008344"),  # four significant digits below $1
    (usd_to_units("0.07812345"), "$0.07812"),
    (usd_to_units("0.99996"), "$1.00"),  # rounds up to a dollar, shown as one
    (5, "$0.0000000005"),
    (-5, "-$0.0000000005"),
])
def test_money_by_magnitude(units, text):
    assert money(units) == text


def test_the_exact_amount_is_on_hover_and_only_when_it_differs():
    assert money_exact(usd_to_units("822.81712345")) == "$822.81712345"
    assert money_exact(usd_to_units("1046")) == "$1,046.00"
    assert usd(usd_to_units("822.81712345")) == '<span class="exact" title="$822.81712345">$822.82</span>'
    assert usd(usd_to_units("0.78")) == "$0.78"


def test_prices_per_million_keep_their_quoted_precision():
    assert per_million(Decimal("0.0000001")) == "$0.10"
    assert per_million(Decimal("0.000000075")) == "$0.075"
    assert per_million(Decimal("0.0000022")) == "$2.20"
    assert per_million(Decimal("0.00001")) == "$10.00"
    assert per_million(None) == "—"


def test_tokens_compact_with_the_exact_count_on_hover():
    assert tokens(283_812_345) == "283.8M"
    assert compact(283_812_345) == '<span class="exact" title="283,812,345">283.8M</span>'
    assert compact(999) == "999"


def test_changes_follow_one_rule_for_new_and_partial_previous_windows():
    assert change(0.125) == '<span class="up">+12.5%</span>'
    assert change(-0.5) == '<span class="down">-50.0%</span>'
    assert change(None) == '<span class="muted">new</span>'
    assert Change(5.73, covered_days=0, window_days=30).text == "new"
    partial = Change(5.73, covered_days=5, window_days=30)
    assert change(partial) == ('<span class="muted" title="+573.0% against a previous window with traffic on 5 of '
                               'its 30 days">partial: 5 of 30 days</span>')
    assert Change(0.1, covered_days=30, window_days=30).text == "+10.0%"


def test_covered_days_count_the_previous_window_from_the_first_day_of_traffic():
    start = date(2026, 10, 9)  # a previous window of 30 days: Oct 9 to Nov 7
    assert covered_days(first_day=date(2026, 11, 3), window_start=start, window_days=30) == 5
    assert covered_days(first_day=date(2026, 9, 1), window_start=start, window_days=30) == 30
    assert covered_days(first_day=date(2026, 11, 20), window_start=start, window_days=30) == 0
    assert covered_days(first_day=None, window_start=start, window_days=30) is None


@pytest.mark.parametrize(("units", "text"), [
    (0, "0.0000000000"), (usd_to_units("0.015"), "0.0150000000"), (usd_to_units("-1"), "-1.0000000000"),
    (usd_to_units("123456.0000000001"), "123456.0000000001"),
])
def test_units_text_is_exact(units, text):
    assert units_text(units) == text
