"""The catalog's prices as ingestion reads them: loaded once per process, refreshed every few minutes."""
from __future__ import annotations

import time

from marketplace.pricing import PriceBook

PRICEBOOK_TTL_SECONDS = 300

_pricebook: tuple[float, PriceBook] | None = None


def price_book() -> PriceBook:
    """The catalog's prices, loaded once per process and refreshed every few minutes."""
    global _pricebook
    now = time.monotonic()
    if _pricebook is None or now - _pricebook[0] > PRICEBOOK_TTL_SECONDS:
        _pricebook = (now, PriceBook.load())
    return _pricebook[1]


def pricebook_reset() -> None:
    """Forget the cached prices (after catalog changes, and between tests)."""
    global _pricebook
    _pricebook = None
