"""Merge providers and models that traffic made beside the catalog's into the catalog's (data migration 0017).

Before ingestion resolved gateway names (marketplace.names), a LiteLLM provider id became a second
provider (`openai`, slug `openai-2`, beside `OpenAI`) and a bare model name an unlisted model of an
`unknown` author (`gpt-4o` beside `openai/gpt-4o`); catalog_sync itself made `Z.ai` beside `Z.AI`.
`names_merge` moves every generation and rollup row of such a duplicate onto the catalog's row
(rollup rows that meet one already there are added into it, by each rollup's own key) and deletes
the duplicate. Set-based: a few statements per duplicate, whatever the traffic.

It takes an app registry so the migration runs it on its historical models; the tests run it on the
real ones.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, models
from genai_prices import data_snapshot

from marketplace.names import CatalogNames, provider_duplicates

# The tables keyed by a model and a provider (or a model alone) whose other columns all add up.
ROLLUPS = {"provider": ("EndpointHour", "EndpointDay", "EndpointHistogram", "AccountDay", "AccountHour"),
           "model": ("EndpointHour", "EndpointDay", "EndpointHistogram", "AccountDay", "AccountHour", "AppDay")}


@dataclass(frozen=True)
class Merged:
    kind: str  # "provider" or "model"
    old: str
    new: str
    generations: int = 0
    rollup_rows: int = 0  # rows of the duplicate, moved or added into the catalog row's
    endpoints: int = 0  # endpoints moved to the catalog's row
    skipped: str = ""  # why nothing moved

    def __str__(self) -> str:
        if self.skipped:
            return f"{self.kind} {self.old!r} left as it is ({self.skipped})"
        return (f"{self.kind} {self.old!r} merged into {self.new!r}: {self.generations} generations, "
                f"{self.rollup_rows} rollup rows, {self.endpoints} endpoints")


def names_merge(*, apps) -> list[Merged]:
    """Merge every duplicate provider, then every traffic-made model the catalog resolves, into the catalog's."""
    provider_model = apps.get_model("marketplace", "Provider")
    rows = list(provider_model.objects.values_list("pk", "name", "genai_prices_id"))
    ids = {name: pk for pk, name, _ in rows}
    duplicates = provider_duplicates(providers=[(name, gid) for _, name, gid in rows],
                                     genai=data_snapshot.get_snapshot().providers)
    report = [_merge(apps, "provider", ids[old], ids[new], old, new) for old, new in sorted(duplicates.items())]

    model_model = apps.get_model("marketplace", "Model")
    names = CatalogNames.load(provider_model=provider_model, endpoint_model=apps.get_model("marketplace", "Endpoint"),
                              model_model=model_model)
    traffic_models = dict(model_model.objects.filter(from_catalog=False).values_list("pk", "slug"))
    provider_names = dict(provider_model.objects.values_list("pk", "name"))
    seen: dict[int, set[str]] = {}
    for model_id, provider_id in apps.get_model("analytics", "EndpointDay").objects.filter(
            model_id__in=list(traffic_models)).values_list("model_id", "provider_id").distinct():
        slug = traffic_models[model_id]
        seen.setdefault(model_id, set()).add(names.resolve(slug, provider_names.get(provider_id, "unknown"))[0])
    slugs = dict(model_model.objects.values_list("slug", "pk"))
    for model_id, targets in sorted(seen.items()):
        old = traffic_models[model_id]
        if len(targets) == 1 and (new := next(iter(targets))) != old and new in slugs:
            report.append(_merge(apps, "model", model_id, slugs[new], old, new))
    return report


def _merge(apps, kind: str, old_id: int, new_id: int, old: str, new: str) -> Merged:
    endpoint_model = apps.get_model("marketplace", "Endpoint")
    other = "provider" if kind == "model" else "model"
    mine = list(endpoint_model.objects.filter(**{f"{kind}_id": old_id}).values_list("pk", f"{other}_id"))
    taken = set(endpoint_model.objects.filter(**{f"{kind}_id": new_id}).values_list(f"{other}_id", flat=True))
    clashing = [pk for pk, other_id in mine if other_id in taken]
    if clashing and _prices_used(apps, clashing):
        return Merged(kind, old, new, skipped="both have an endpoint whose prices billed requests")
    endpoint_model.objects.filter(pk__in=clashing).delete()  # unused: the catalog row's endpoint stays
    moved = endpoint_model.objects.filter(**{f"{kind}_id": old_id}).update(**{f"{kind}_id": new_id})

    generations = apps.get_model("analytics", "Generation").objects.filter(
        **{f"{kind}_id": old_id}).update(**{f"{kind}_id": new_id})
    rollup_rows = sum(_rollup_merge(apps.get_model("analytics", name), f"{kind}_id", old_id, new_id)
                      for name in ROLLUPS[kind])
    apps.get_model("analytics", "Reprice").objects.filter(**{f"{kind}_id": old_id}).update(**{f"{kind}_id": new_id})
    if kind == "provider":
        provider_model = apps.get_model("marketplace", "Provider")
        provider_model.objects.filter(prices_as_id=old_id).update(prices_as_id=new_id)
        provider_model.objects.filter(pk=old_id).delete()
    else:
        apps.get_model("analytics", "ModelWeek").objects.filter(model_id__in=[old_id, new_id]).delete()  # rebuilt hourly
        apps.get_model("marketplace", "Model").objects.filter(pk=old_id).delete()
    return Merged(kind, old, new, generations=generations, rollup_rows=rollup_rows, endpoints=moved)


def _prices_used(apps, endpoint_ids: list[int]) -> bool:
    price_ids = list(apps.get_model("marketplace", "EndpointPrice").objects.filter(
        endpoint_id__in=endpoint_ids).values_list("pk", flat=True))
    return bool(price_ids) and (
        apps.get_model("analytics", "Generation").objects.filter(price_id__in=price_ids).exists()
        or apps.get_model("analytics", "Reprice").objects.filter(price_id__in=price_ids).exists())


def _rollup_merge(model, column: str, old_id: int, new_id: int) -> int:
    """Add the old id's rows into the new id's, by the table's unique key; return how many rows moved."""
    meta = model._meta
    if isinstance(meta.pk, models.CompositePrimaryKey):  # the account rollups: their key is the primary key
        key_fields = meta.pk.field_names
    else:
        [key] = [c for c in meta.constraints if getattr(c, "fields", None)]
        key_fields = key.fields
    keys = [meta.get_field(name).column for name in key_fields]
    sums = [f.column for f in meta.concrete_fields if not f.primary_key and f.column not in keys]
    table = meta.db_table
    select = ", ".join("%s" if c == column else c for c in keys)
    updates = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in sums)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({', '.join(keys + sums)})"  # noqa: S608 - names from the models
                       f" SELECT {select}, {', '.join(sums)} FROM {table} WHERE {column} = %s"
                       f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}", [new_id, old_id])
        cursor.execute(f"DELETE FROM {table} WHERE {column} = %s", [old_id])  # noqa: S608
        return cursor.rowcount
