"""Query and form parameters read into the ranges the rest of the code can compute with.

One place says what a date or an integer from outside may be, so that no page, export or API
meets a value the calendar (`date(9999, 12, 31) + timedelta(days=1)`) or the database (bigint)
cannot hold. A missing value is None; an invalid one raises `ParamError` with a sentence a person
can act on: pages show it and fall back to their default, the APIs and CSV routes answer 400.
"""
from __future__ import annotations

import re
from datetime import date

from django.http import Http404

# The dates any page, report or dataset accepts: wide enough for every log, far enough from the
# calendar's ends (year 1, year 9999) that a period, its previous period and an exclusive end fit.
DATE_MIN = date(2000, 1, 1)
DATE_MAX = date(2100, 12, 31)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")  # bounded before int(): a huge digit string is never converted


class ParamError(ValueError):
    """A parameter that is present but unusable; the message says what is accepted."""


DATE_ERROR = f"Enter dates as YYYY-MM-DD between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()}."


def date_param(value: str | None) -> date | None:
    """A YYYY-MM-DD date within DATE_MIN..DATE_MAX; None when empty; ParamError otherwise."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ParamError(DATE_ERROR) from None
    if not DATE_MIN <= day <= DATE_MAX:
        raise ParamError(DATE_ERROR)
    return day


def int64_param(value: str | None, *, name: str = "id") -> int | None:
    """A whole number that fits a signed 64-bit column; None when empty; ParamError otherwise."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not _INTEGER.fullmatch(text):
        raise ParamError(f"{name} must be a whole number up to {INT64_MAX}.")
    number = int(text)
    if not int64_fits(number):
        raise ParamError(f"{name} must be a whole number up to {INT64_MAX}.")
    return number


def int64_fits(value: int) -> bool:
    """Whether an integer (a URL's `<int:…>`, say) fits a signed 64-bit column."""
    return INT64_MIN <= value <= INT64_MAX


def int64_or_404(value: str | None) -> int:
    """An id posted by a form: a whole number within 64 bits, else 404 (as an unknown id answers)."""
    try:
        number = int64_param(value)
    except ParamError:
        raise Http404 from None
    if number is None:
        raise Http404
    return number
