"""Money formatting: exact, signed the way people write it."""
import pytest

from core.money import format_usd, units_text, usd_to_units


@pytest.mark.parametrize(("units", "text"), [
    (0, "$0.00"),
    (usd_to_units("37.03"), "$37.03"),
    (usd_to_units("-37.03"), "-$37.03"),
    (usd_to_units("1234567.891"), "$1,234,567.89"),
    (usd_to_units("0.0045"), "$0.0045"),
    (usd_to_units("-0.0045"), "-$0.0045"),
    (5, "<$0.000001"),
    (-5, ">-$0.000001"),
])
def test_format_usd(units, text):
    assert format_usd(units) == text


def test_format_usd_places_round_half_even():
    assert format_usd(usd_to_units("0.045"), 2) == "$0.04"
    assert format_usd(usd_to_units("0.045"), 4) == "$0.0450"


@pytest.mark.parametrize(("units", "text"), [
    (0, "0.0000000000"), (usd_to_units("0.015"), "0.0150000000"), (usd_to_units("-1"), "-1.0000000000"),
    (usd_to_units("123456.0000000001"), "123456.0000000001"),
])
def test_units_text_is_exact(units, text):
    assert units_text(units) == text
