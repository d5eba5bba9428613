"""A slice of an account's usage: filters on its dimensions, as every account page reads them from a URL.

The explorer, the generation log and the exports take the same parameters, so a cell of one links
to the others: a dimension's parameter given once is `eq`, repeated it is `in`
(`?model=12&model=15&tag=prod`). `model`, `provider`, `api_key`, `app` are ids (as the rollups hold
them; `0` is "no key" / "no app"); `user` and `tag` are the texts themselves (`user=` with nothing is
"no user"). A tag filter keeps the rows that carry any of the tags named.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, Value
from django.db.models.functions import StrIndex
from django.db.models.lookups import GreaterThan

from core.params import ParamError, int64_param

# dimension -> the column of the account rollups (and of the generation table, see `generation_q`)
FILTER_COLUMNS = {"model": "model_id", "provider": "provider_id", "api_key": "api_key_id", "app": "app_id",
                  "user": "end_user", "tag": "tags"}
FILTER_DIMENSIONS = tuple(FILTER_COLUMNS)
MAX_VALUES = 50
_TEXT_LIMITS = {"user": 128, "tag": 64}


@dataclass(frozen=True)
class Filters:
    """(dimension, values) pairs in FILTER_DIMENSIONS order; hashable, so it can be part of a cache key."""

    items: tuple[tuple[str, tuple], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.items)

    def get(self, dimension: str) -> tuple:
        return dict(self.items).get(dimension, ())

    def narrowed(self, dimension: str, value) -> Filters:
        """These filters with `dimension` set to the one `value` (a cell's link)."""
        chosen = {**dict(self.items), dimension: (value,)}
        return Filters(tuple((d, chosen[d]) for d in FILTER_DIMENSIONS if d in chosen))

    def query(self) -> list[tuple[str, str]]:
        """The URL parameters that read back as these filters (for `urlencode`)."""
        return [(dimension, str(value)) for dimension, values in self.items for value in values]

    def rollup_q(self) -> Q:
        """The condition on account rollup rows (AccountDay, AccountHour)."""
        q = Q()
        for dimension, values in self.items:
            column = FILTER_COLUMNS[dimension]
            q &= _any_tag(values) if dimension == "tag" else Q(**{f"{column}__in": values})
        return q

    def rollup_sql(self) -> tuple[str, list]:
        """The same condition as SQL for the rollups' raw queries: `" AND …"` (or "") and its parameters."""
        clauses, params = [], []
        for dimension, values in self.items:
            column = FILTER_COLUMNS[dimension]
            if dimension == "tag":
                # A position, not LIKE: nothing to escape.
                clauses.append("(" + " OR ".join(["strpos(tags, %s) > 0"] * len(values)) + ")")
                params.extend(f",{tag}," for tag in values)
            else:
                clauses.append(f"{column} IN ({', '.join(['%s'] * len(values))})")
                params.extend(values)
        return "".join(f" AND {clause}" for clause in clauses), params

    def generation_q(self) -> Q:
        """The condition on the generation table (no key / no app are NULL there, not 0)."""
        q = Q()
        for dimension, values in self.items:
            if dimension in ("api_key", "app"):
                ids = [v for v in values if v]
                match = Q(**{f"{dimension}_id__in": ids}) if ids else Q(pk__in=[])
                if 0 in values:
                    match |= Q(**{f"{dimension}_id__isnull": True})
                q &= match
            elif dimension == "tag":
                q &= _any_tag(values)
            else:
                q &= Q(**{f"{FILTER_COLUMNS[dimension]}__in": values})
        return q


def _any_tag(tags: tuple[str, ...]) -> Q:
    """Rows whose ",a,b," tags hold ",tag," for one of `tags`: by position (strpos), exact (a LIKE
    would need its wildcards escaped)."""
    q = Q()
    for tag in tags:
        q |= Q(GreaterThan(StrIndex("tags", Value(f",{tag},")), 0))
    return q


def filters_parse(params) -> Filters:
    """The filters of a query string (a QueryDict, or a dict of lists); ParamError names every unusable value.

    Ids must be 64-bit whole numbers (0: none, for api_key and app); a user is at most 128
    characters; a tag at most 64 and without a comma; each dimension takes at most MAX_VALUES values.
    """
    items, problems = [], []
    for dimension in FILTER_DIMENSIONS:
        raw = params.getlist(dimension) if hasattr(params, "getlist") else list(params.get(dimension, ()))
        values = []
        for value in dict.fromkeys(raw):
            if dimension in _TEXT_LIMITS:
                text = value.strip() if dimension == "tag" else value
                if len(text) > _TEXT_LIMITS[dimension] or (dimension == "tag" and ("," in text or not text)):
                    problems.append(f"{dimension}: not a {dimension} this account can have ({value[:40]!r}).")
                    continue
                values.append(text)
                continue
            try:
                number = int64_param(value, name=dimension)
            except ParamError as error:
                problems.append(str(error))
                continue
            if number is None or (number == 0 and dimension in ("model", "provider")) or number < 0:
                problems.append(f"{dimension}: not an id ({value[:40]!r}).")
                continue
            values.append(number)
        if len(values) > MAX_VALUES:
            problems.append(f"{dimension}: at most {MAX_VALUES} values.")
        elif values:
            items.append((dimension, tuple(values)))
    if problems:
        raise ParamError(" ".join(problems))
    return Filters(tuple(items))
