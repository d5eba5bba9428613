"""The catalog's prices and names as ingestion reads them: loaded once per process, refreshed every few minutes."""
from __future__ import annotations

import time

from marketplace.names import CatalogNames
from marketplace.pricing import PriceBook

PRICEBOOK_TTL_SECONDS = 300

_pricebook: tuple[float, PriceBook] | None = None
_names: tuple[float, CatalogNames] | None = None


def price_book() -> PriceBook:
    """The catalog's prices, loaded once per process and refreshed every few minutes."""
    global _pricebook
    now = time.monotonic()
    if _pricebook is None or now - _pricebook[0] > PRICEBOOK_TTL_SECONDS:
        _pricebook = (now, PriceBook.load())
    return _pricebook[1]


def catalog_names() -> CatalogNames:
    """The catalog's model and provider names for resolving a gateway's, on the price book's schedule:
    a provider or model catalog_sync adds is matched within PRICEBOOK_TTL_SECONDS."""
    global _names
    now = time.monotonic()
    if _names is None or now - _names[0] > PRICEBOOK_TTL_SECONDS:
        _names = (now, CatalogNames.load())
    return _names[1]


def pricebook_reset() -> None:
    """Forget the cached prices and names (after catalog changes, and between tests)."""
    global _pricebook, _names
    _pricebook = _names = None
