"""Catalog writes: `catalog_sync` from genai-prices, and registration of what traffic names.

Registration is bulk, idempotent and safe when two workers register the same names at once
(`bulk_create(ignore_conflicts=True)`, then select).
"""
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.db import transaction
from django.utils.text import slugify

from core.bulk import ids_by_key

from .genai_catalog import author_name as _author_name
from .genai_catalog import catalog_entries
from .models import App, AppCategory, Author, Endpoint, EndpointPrice, Model, Provider


def authors_register(*, slugs: Iterable[str]) -> dict[str, int]:
    """Return author ids by slug, creating the unknown ones."""
    return ids_by_key(Author, "slug", slugs,
                      lambda missing: [Author(slug=s, name=_author_name(s)) for s in sorted(missing)])


def _split_slug(slug: str) -> tuple[str, str]:
    if "/" in slug:
        author, name = slug.split("/", 1)
        author = slugify(author)[:100] or "unknown"
        return author, name
    return "unknown", slug


def models_register(*, slugs: Iterable[str]) -> dict[str, int]:
    """Return model ids by slug; unknown slugs become unlisted models awaiting staff review."""

    def build(missing: set[str]) -> list[Model]:
        parts = {slug: _split_slug(slug) for slug in missing}
        author_ids = authors_register(slugs={author for author, _ in parts.values()})
        return [Model(slug=slug, author_id=author_ids[author], route_name=name, name=name, listed=False)
                for slug, (author, name) in sorted(parts.items())]

    return ids_by_key(Model, "slug", slugs, build)


def _unique_slug(base: str, taken: set[str], fallback: str) -> str:
    slug = base or fallback
    candidate, n = slug, 2
    while candidate in taken:
        candidate = f"{slug}-{n}"
        n += 1
    taken.add(candidate)
    return candidate


def providers_register(*, names: Iterable[str]) -> dict[str, int]:
    """Return provider ids by display name, creating the unknown ones."""
    wanted = set(names)
    if not wanted:
        return {}
    found = dict(Provider.objects.filter(name__in=wanted).values_list("name", "pk"))
    missing = wanted - found.keys()
    if missing:
        bases = {name: slugify(name)[:90] for name in missing}
        taken = set(Provider.objects.filter(slug__in=[b for b in bases.values() if b]).values_list("slug", flat=True))
        rows = [Provider(name=name, slug=_unique_slug(bases[name], taken, "provider"))
                for name in sorted(missing)]
        Provider.objects.bulk_create(rows, ignore_conflicts=True)
        found.update(Provider.objects.filter(name__in=missing).values_list("name", "pk"))
        if found.keys() < wanted:  # a slug collided with a concurrent insert: register the rest one by one
            for name in wanted - found.keys():
                provider, _ = Provider.objects.get_or_create(
                    name=name, defaults={"slug": _unique_slug(bases[name], taken, "provider")})
                found[name] = provider.pk
    return found


def _app_slug(origin: str) -> str:
    parts = urlsplit(origin if "://" in origin else f"https://{origin}")
    return slugify(f"{parts.netloc} {parts.path}".replace(".", "-").replace("/", " "))[:100] or "app"


def apps_register(*, apps: dict[str, tuple[str, list[str]]]) -> dict[str, int]:
    """Return app ids by origin; a new app takes its name and categories from first sight."""
    if not apps:
        return {}
    found = dict(App.objects.filter(origin__in=apps.keys()).values_list("origin", "pk"))
    missing = set(apps) - found.keys()
    if missing:
        taken = set(App.objects.filter(slug__in=[_app_slug(o) for o in missing]).values_list("slug", flat=True))
        new = []
        for origin in sorted(missing):
            name = (apps[origin][0] or urlsplit(origin).netloc or origin)[:200]
            new.append(App(origin=origin, name=name, slug=_unique_slug(_app_slug(origin), taken, "app")))
        App.objects.bulk_create(new, ignore_conflicts=True)
        created = {a.origin: a for a in App.objects.filter(origin__in=missing).prefetch_related("categories")}
        for origin, app in created.items():
            found[origin] = app.pk
        wanted_categories = {c for o in created for c in apps[o][1]}
        if wanted_categories:
            AppCategory.objects.bulk_create(
                [AppCategory(slug=c, name=c.replace("-", " ").title()) for c in sorted(wanted_categories)],
                ignore_conflicts=True)
            category_ids = dict(AppCategory.objects.filter(slug__in=wanted_categories).values_list("slug", "pk"))
            links = [App.categories.through(app_id=app.pk, appcategory_id=category_ids[c])
                     for origin, app in created.items() if not app.categories.all() for c in apps[origin][1]]
            App.categories.through.objects.bulk_create(links, ignore_conflicts=True)
        if found.keys() < set(apps):
            for origin in set(apps) - found.keys():
                app, _ = App.objects.get_or_create(
                    origin=origin, defaults={"name": apps[origin][0][:200] or origin[:200],
                                             "slug": _unique_slug(_app_slug(origin), taken, "app")})
                found[origin] = app.pk
    return found


@dataclass
class KindReport:
    added: int = 0
    changed: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"{self.added} added, {self.changed} changed, {self.unchanged} unchanged"


@dataclass
class CatalogSyncReport:
    authors: KindReport = field(default_factory=KindReport)
    models: KindReport = field(default_factory=KindReport)
    providers: KindReport = field(default_factory=KindReport)
    endpoints: KindReport = field(default_factory=KindReport)
    prices: KindReport = field(default_factory=KindReport)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {kind: vars(getattr(self, kind)) for kind in ("authors", "models", "providers", "endpoints", "prices")}

    @property
    def changed_anything(self) -> bool:
        return any(r.added or r.changed for r in (self.authors, self.models, self.providers, self.endpoints,
                                                   self.prices))


def _sync_rows(existing: dict, wanted: dict, fields: tuple[str, ...], make, report: KindReport) -> list:
    """Create missing rows and update changed fields; returns rows to bulk_update."""
    to_update, to_create = [], []
    for key, values in wanted.items():
        row = existing.get(key)
        if row is None:
            to_create.append(make(key, values))
            report.added += 1
            continue
        if any(getattr(row, f) != values[f] for f in fields):
            for f in fields:
                setattr(row, f, values[f])
            to_update.append(row)
            report.changed += 1
        else:
            report.unchanged += 1
    return [to_create, to_update]


@transaction.atomic
def catalog_sync() -> CatalogSyncReport:
    """Load or refresh models, providers, endpoints and prices from genai-prices (offline, idempotent).

    Never deletes: models first seen in traffic, and staff edits to `listed`, stay as they are.
    """
    report = CatalogSyncReport()
    entries = list(catalog_entries())

    authors = {e.author: {"name": _author_name(e.author)} for e in entries}
    existing_authors = {a.slug: a for a in Author.objects.filter(slug__in=authors)}
    create, update = _sync_rows(existing_authors, authors, ("name",),
                                lambda slug, v: Author(slug=slug, name=v["name"]), report.authors)
    Author.objects.bulk_create(create)
    Author.objects.bulk_update(update, ["name"])
    author_ids = dict(Author.objects.filter(slug__in=authors).values_list("slug", "pk"))

    providers: dict[str, dict] = {}
    for e in entries:
        for ep in e.endpoints:
            # A first-party endpoint at OpenRouter's price must not relabel a provider genai-prices lists.
            if ep.provider_name not in providers or ep.genai_provider_id != "openrouter":
                providers[ep.provider_name] = {"genai_prices_id": ep.genai_provider_id}
    existing_providers = {p.name: p for p in Provider.objects.filter(name__in=providers)}
    taken = set(Provider.objects.values_list("slug", flat=True))
    create, update = _sync_rows(
        existing_providers, providers, ("genai_prices_id",),
        lambda name, v: Provider(name=name, slug=_unique_slug(slugify(name)[:90], taken, "provider"),
                                 genai_prices_id=v["genai_prices_id"]), report.providers)
    Provider.objects.bulk_create(create)
    Provider.objects.bulk_update(update, ["genai_prices_id"])
    provider_ids = dict(Provider.objects.filter(name__in=providers).values_list("name", "pk"))

    models = {e.slug: {"author_id": author_ids[e.author], "route_name": e.route_name, "name": e.name[:200],
                       "description": e.description, "context_length": e.context_length, "from_catalog": True}
              for e in entries}
    model_fields = ("author_id", "route_name", "name", "description", "context_length", "from_catalog")
    existing_models = {m.slug: m for m in Model.objects.filter(slug__in=models)}
    create, update = _sync_rows(existing_models, models, model_fields,
                                lambda slug, v: Model(slug=slug, listed=True, **v), report.models)
    Model.objects.bulk_create(create, batch_size=500)
    Model.objects.bulk_update(update, list(model_fields), batch_size=500)
    model_ids = dict(Model.objects.filter(slug__in=models).values_list("slug", "pk"))

    endpoints, histories = {}, {}
    for e in entries:
        for ep in e.endpoints:
            key = (model_ids[e.slug], provider_ids[ep.provider_name])
            current = ep.current
            endpoints[key] = {"prompt_price": current.prompt, "completion_price": current.completion,
                              "cache_read_price": current.cache_read, "reasoning_price": current.reasoning,
                              "context_length": ep.context_length,
                              "genai_prices_ref": f"{ep.genai_provider_id}:{ep.genai_ref}"[:200]}
            histories[key] = ep.prices
    endpoint_fields = ("prompt_price", "completion_price", "cache_read_price", "reasoning_price", "context_length",
                       "genai_prices_ref")
    existing_endpoints = {(x.model_id, x.provider_id): x for x in Endpoint.objects.all()}
    create, update = _sync_rows(existing_endpoints, endpoints, endpoint_fields,
                                lambda key, v: Endpoint(model_id=key[0], provider_id=key[1], **v), report.endpoints)
    Endpoint.objects.bulk_create(create, batch_size=500)
    Endpoint.objects.bulk_update(update, list(endpoint_fields), batch_size=500)

    # Price history: one row per price start; a changed price today appends a row from now on.
    endpoint_ids = {(x.model_id, x.provider_id): x.pk for x in Endpoint.objects.all()}
    known = {}
    for row in EndpointPrice.objects.all():
        known.setdefault(row.endpoint_id, {})[row.valid_from] = row
    new_prices, changed_endpoints = [], {x.pk for x in update}
    now = _now()
    for key, points in histories.items():
        endpoint_id = endpoint_ids[key]
        have = known.get(endpoint_id, {})
        for point in points:
            if point.valid_from in have:
                report.prices.unchanged += 1
                continue
            new_prices.append(EndpointPrice(endpoint_id=endpoint_id, valid_from=point.valid_from,
                                            prompt_price=point.prompt, completion_price=point.completion,
                                            cache_read_price=point.cache_read, reasoning_price=point.reasoning))
            report.prices.added += 1
        if endpoint_id in changed_endpoints and have:
            values = endpoints[key]
            latest = have[max(have)]
            if (latest.prompt_price, latest.completion_price) != (values["prompt_price"], values["completion_price"]):
                new_prices.append(EndpointPrice(endpoint_id=endpoint_id, valid_from=now,
                                                prompt_price=values["prompt_price"],
                                                completion_price=values["completion_price"],
                                                cache_read_price=values["cache_read_price"],
                                                reasoning_price=values["reasoning_price"]))
                report.prices.added += 1
    EndpointPrice.objects.bulk_create(new_prices, batch_size=1000, ignore_conflicts=True)
    return report


def _now():
    from django.utils import timezone

    return timezone.now()
