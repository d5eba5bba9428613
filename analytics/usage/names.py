"""Display names of what an account's usage is sliced by (models, providers, apps, keys; users and
tags are their text), and the one list of filter choices the explorer and the generation log offer."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from analytics.models import AccountDay, Generation
from billing.models import ApiKey
from marketplace.models import App, Model, Provider

from .cache import usage_cached
from .params import DIMENSIONS

NO_TEXT = {"user": "(no user)", "tag": "(no tag)"}



def dimension_names(dimension: str, ids: Iterable, *, account_id: int) -> dict:
    """Display names of model, key, provider or app ids (0 means none); users and tags are their text."""
    if dimension in NO_TEXT:
        return {i: i or NO_TEXT[dimension] for i in ids}
    wanted = {i for i in ids if i}
    names: dict[int, str] = {0: {"api_key": "(no key)", "app": "(no app)"}.get(dimension, "(none)")}
    if not wanted:
        return names
    if dimension == "model":
        names.update(Model.objects.filter(pk__in=wanted).values_list("pk", "slug"))
    elif dimension == "provider":
        names.update(Provider.objects.filter(pk__in=wanted).values_list("pk", "name"))
    elif dimension == "app":
        names.update((pk, name or origin) for pk, name, origin in
                     App.objects.filter(pk__in=wanted).values_list("pk", "name", "origin"))
    elif dimension == "api_key":
        names.update((pk, name or external) for pk, name, external in
                     ApiKey.objects.filter(pk__in=wanted, account_id=account_id)
                     .values_list("pk", "name", "external_id"))
    for missing in wanted - names.keys():
        names[missing] = f"#{missing}"
    return names



@dataclass(frozen=True)
class Names:
    models: dict[int, str]
    providers: dict[int, str]
    apps: dict[int, str]
    keys: dict[int, str]



def names_for(rows: list[Generation], *, account_id: int) -> Names:
    """Display names of the models, providers, apps and keys on a page (four queries at most)."""
    def names(dimension: str, attr: str) -> dict[int, str]:
        return dimension_names(dimension, {getattr(r, attr) for r in rows}, account_id=account_id)

    return Names(models=names("model", "model_id"), providers=names("provider", "provider_id"),
                 apps=names("app", "app_id"), keys=names("api_key", "api_key_id"))



def filter_choices(*, account_id: int) -> dict[str, list[tuple[int, str]]]:
    """What the explorer's and the generation log's id filters offer: the models, providers, keys and apps
    of the account's rollups (0: no key, no app), by name; cached until the account's next chunk. Users
    and tags are typed."""
    dimensions = ("model", "provider", "api_key", "app")

    def compute() -> dict[str, list[tuple[int, str]]]:
        seen = (AccountDay.objects.filter(account_id=account_id).order_by()
                .values_list(*(DIMENSIONS[d] for d in dimensions)).distinct())
        ids = [set(column) for column in zip(*seen, strict=True)] or [set() for _ in dimensions]
        choices = {}
        for dimension, wanted in zip(dimensions, ids, strict=True):
            names = dimension_names(dimension, wanted, account_id=account_id)
            choices[dimension] = sorted(((i, names[i]) for i in wanted), key=lambda item: (item[1].lower(), item[0]))
        return choices
    return usage_cached(account_id, "filter_choices", compute)

