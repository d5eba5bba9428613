"""The token price index: what the market pays for a million tokens, week by week.

The index of a week is the blended price of all priced traffic that is not BYOK: the spend of
every request to a listed model (its gateway's `total_cost`, or Tokengrid's catalog price when the
gateway gave none) divided by the tokens (prompt + completion) of the same requests, BYOK requests
and requests Tokengrid could not price (`unpriced_tokens`: no spend, so no price) left out of both (the provider bills them, not the router; their tokens carry no spend), in USD per
1M tokens. Weeks are UTC, Monday to Sunday; the current week is marked as so far. The same ratio is
kept per author (the lab of the model) and per app category (the traffic of public apps declaring it;
an app in two categories counts in both), each with its change against the week before. Free
models count with their zero price: the index is what the market pays, not what a list price says.
All sums are integers (1e-10 USD and tokens); the price is divided once and rounded half-even to a
millionth of a dollar.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.db.models import F, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from analytics.models import AppDay, EndpointDay
from core.charts import Series
from core.money import UNITS_PER_USD
from core.timerange import hour_end
from marketplace.models import AppCategory, Author

from .cache import rankings_cached

WEEKS = 12
TOP_LINES = 8
_MILLIONTH = Decimal("0.000001")


def price_per_million(spend_units: int, tokens: int) -> Decimal | None:
    """USD per 1M tokens of `tokens` that cost `spend_units` (1e-10 USD); None without tokens."""
    if tokens <= 0:
        return None
    return (Decimal(spend_units) * 1_000_000 / (Decimal(UNITS_PER_USD) * tokens)).quantize(
        _MILLIONTH, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class IndexPoint:
    week: str  # its Monday, YYYY-MM-DD
    spend_units: int
    tokens: int  # not BYOK

    @property
    def price(self) -> Decimal | None:
        return price_per_million(self.spend_units, self.tokens)


def _change(now: Decimal | None, before: Decimal | None) -> float | None:
    return None if now is None or not before else float((now - before) / before)


@dataclass(frozen=True)
class IndexLine:
    name: str
    url: str
    points: list[IndexPoint]  # one per week, oldest first

    @property
    def latest(self) -> IndexPoint:
        return self.points[-1]

    @property
    def change(self) -> float | None:
        """The latest week's price against the week before's."""
        return _change(self.points[-1].price, self.points[-2].price) if len(self.points) > 1 else None


@dataclass(frozen=True)
class PriceIndex:
    weeks: list[str]
    current_partial: bool  # the last week is not over yet
    overall: IndexLine
    authors: list[IndexLine]  # the TOP_LINES authors with the most tokens over the weeks
    categories: list[IndexLine]

    @property
    def series(self) -> Series:
        """The overall index and the authors', USD per 1M tokens per week (None: no tokens that week)."""
        return Series(periods=self.weeks, series={
            line.name: [p.price for p in line.points] for line in [self.overall, *self.authors]})


def _week_label(value) -> str:
    return (value.date() if isinstance(value, datetime) else value).isoformat()


def _lines(rows, weeks: list[str], describe) -> list[IndexLine]:
    sums: dict[object, dict[str, list[int]]] = {}
    for week, key, spend, tokens, left_out in rows:
        cell = sums.setdefault(key, {}).setdefault(_week_label(week), [0, 0])
        cell[0] += int(spend or 0)
        cell[1] += int(tokens or 0) - int(left_out or 0)
    ranked = sorted((k for k in sums if k is not None), key=lambda k: -sum(c[1] for c in sums[k].values()))
    described = describe(ranked[:TOP_LINES])
    return [IndexLine(*described[k], points=[IndexPoint(w, *sums[k].get(w, (0, 0))) for w in weeks])
            for k in ranked[:TOP_LINES] if k in described]


def price_index(*, weeks: int = WEEKS, now: datetime | None = None) -> PriceIndex:
    """The index over the last `weeks` UTC weeks (the current one included), overall, per author and category."""
    end = hour_end(now or timezone.now())
    monday = (end - timedelta(microseconds=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    monday -= timedelta(days=monday.weekday())
    starts = [monday - timedelta(weeks=i) for i in range(weeks - 1, -1, -1)]
    labels = [s.date().isoformat() for s in starts]

    def compute() -> PriceIndex:
        sums = {"spend": Sum("spend_units"), "tokens": Sum(F("tokens_prompt") + F("tokens_completion")),
                "left_out": Sum(F("byok_tokens") + F("unpriced_tokens"))}
        by_author = list(EndpointDay.objects.filter(model__listed=True, day__gte=starts[0].date())
                         .annotate(week=TruncWeek("day")).values("week", "model__author_id").annotate(**sums)
                         .values_list("week", "model__author_id", "spend", "tokens", "left_out").order_by())
        by_category = (AppDay.objects.filter(model__listed=True, app__public=True, day__gte=starts[0].date())
                       .annotate(week=TruncWeek("day")).values("week", "app__categories__slug").annotate(**sums)
                       .values_list("week", "app__categories__slug", "spend", "tokens", "left_out").order_by())
        [overall] = _lines([(w, "all", s, t, b) for w, _, s, t, b in by_author], labels,
                           lambda keys: {"all": ("All listed models", "")}) or [
            IndexLine("All listed models", "", [IndexPoint(w, 0, 0) for w in labels])]

        def authors(ids):
            return {a.pk: (a.name, a.get_absolute_url()) for a in Author.objects.filter(pk__in=ids)}

        def categories(slugs):
            return {c.slug: (c.name, f"/rankings/?category={c.slug}") for c in AppCategory.objects.filter(slug__in=slugs)}

        return PriceIndex(weeks=labels, current_partial=end > starts[-1] and end < starts[-1] + timedelta(weeks=1),
                          overall=overall, authors=_lines(by_author, labels, authors),
                          categories=_lines(by_category, labels, categories))

    return rankings_cached(f"price-index:{weeks}:{end:%Y%m%d%H}", compute)
