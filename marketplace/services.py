"""Catalog writes: `catalog_sync` from genai-prices, and registration of what traffic names.

Registration is bulk, idempotent and safe when two workers register the same names at once
(`bulk_create(ignore_conflicts=True)`, then select).
"""
import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from genai_prices.data_snapshot import DataSnapshot

from core.bulk import ids_by_key

from .catalog_report import KindReport, PriceChange, PriceSet, Status, SyncReport
from .genai_catalog import author_name as _author_name
from .genai_catalog import catalog_entries
from .models import App, AppCategory, Author, Endpoint, EndpointPrice, Model, PendingPriceChange, Provider
from .price_use import PriceInterval, PriceUse, price_use_count


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


def _sync_rows(existing: dict, wanted: dict, fields: tuple[str, ...], make, report: KindReport) -> list:
    """Create missing rows and update changed fields; returns rows to bulk_create and to bulk_update."""
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


def catalog_sync(*, snapshot: DataSnapshot | None = None, source: str = "", dry_run: bool = False) -> SyncReport:
    """Load or refresh models, providers, endpoints and prices from genai-prices (offline, idempotent).

    `snapshot`: genai-prices data to read (default: the snapshot genai-prices has in use). Never
    deletes: what genai-prices no longer lists is kept and reported, models first seen in traffic and
    staff edits to `listed` stay as they are. Never moves a price already used for billing: such a
    change becomes a PendingPriceChange (see marketplace/README.md). `dry_run`: the same report, and
    everything rolled back.
    """
    with transaction.atomic():
        report = _catalog_sync(list(catalog_entries(snapshot=snapshot)))
        report.source, report.dry_run = source, dry_run
        if dry_run:
            transaction.set_rollback(True)
    return report


def _catalog_sync(entries: list) -> SyncReport:
    report = SyncReport()
    now = timezone.now()

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
    report.new_models = sorted(m.slug for m in create)
    report.removed_models = sorted(Model.objects.filter(from_catalog=True).exclude(slug__in=models)
                                   .values_list("slug", flat=True))
    Model.objects.bulk_create(create, batch_size=500)
    Model.objects.bulk_update(update, list(model_fields), batch_size=500)
    model_ids = dict(Model.objects.filter(slug__in=models).values_list("slug", "pk"))

    # Endpoints: what genai-prices says of each, except its price, which the history below decides.
    endpoints, sources, names, currents = {}, {}, {}, {}
    for e in entries:
        for ep in e.endpoints:
            key = (model_ids[e.slug], provider_ids[ep.provider_name])
            endpoints[key] = {"context_length": ep.context_length,
                              "genai_prices_ref": f"{ep.genai_provider_id}:{ep.genai_ref}"[:200]}
            sources[key] = {p.valid_from: PriceSet(p.prompt, p.completion, p.cache_read, p.reasoning)
                            for p in ep.prices}
            names[key] = (e.slug, ep.provider_name)
            currents[key] = sources[key][ep.current.valid_from]
    endpoint_fields = ("context_length", "genai_prices_ref")
    existing_endpoints = {(x.model_id, x.provider_id): x for x in Endpoint.objects.all()}
    create, update = _sync_rows(
        existing_endpoints, endpoints, endpoint_fields,
        lambda key, v: Endpoint(model_id=key[0], provider_id=key[1], **v, **_price_fields(currents[key])),
        report.endpoints)
    report.new_endpoints = sorted("{} @ {}".format(*names[(x.model_id, x.provider_id)]) for x in create)
    report.removed_endpoints = sorted(
        f"{model} @ {provider}" for model_id, provider_id, model, provider in Endpoint.objects.exclude(
            genai_prices_ref="").values_list("model_id", "provider_id", "model__slug", "provider__name")
        if (model_id, provider_id) not in endpoints)
    new_keys = {(x.model_id, x.provider_id) for x in create}
    Endpoint.objects.bulk_create(create, batch_size=500)
    Endpoint.objects.bulk_update(update, list(endpoint_fields), batch_size=500)

    _prices_sync(report=report, sources=sources, names=names, new_keys=new_keys, now=now)
    return report


@dataclass
class _Candidate:
    """A start whose price genai-prices changed on an existing endpoint, before its use is known."""

    endpoint: Endpoint
    valid_from: datetime
    old: PriceSet
    new: PriceSet
    interval: PriceInterval


def _prices_sync(*, report: SyncReport, sources: dict, names: dict, new_keys: set, now: datetime) -> None:
    """Bring every endpoint's price history to genai-prices' except where the old price was billed.

    Per endpoint, the new history has every start Tokengrid has and every start genai-prices gives
    (genai-prices' price where it gives one). Where a start's new price differs from the price in
    force there before, the interval from that start to the next start is checked for catalog-priced
    requests (one aggregate query for all endpoints): unused, the new price is written (a start after
    now is a forward change); used, the old price stays in force there (written at that start, so the
    change is one row for the repricing to rewrite) and a PendingPriceChange records the change.
    """
    endpoints = {(x.model_id, x.provider_id): x for x in Endpoint.objects.all()}
    rows: dict[int, dict[datetime, EndpointPrice]] = {}
    for row in EndpointPrice.objects.filter(endpoint__in=[endpoints[k] for k in sources]):
        rows.setdefault(row.endpoint_id, {})[row.valid_from] = row

    plans: dict[tuple, dict[datetime, PriceSet]] = {}  # the history to write, before the held-back changes
    candidates: list[_Candidate] = []
    for key, source in sources.items():
        endpoint = endpoints[key]
        have = rows.get(endpoint.pk, {})
        if key in new_keys:
            plans[key] = dict(source)
            continue
        old_starts = sorted(have)
        old_prices = [_price_set(have[s]) for s in old_starts]
        current = PriceSet(endpoint.prompt_price, endpoint.completion_price, endpoint.cache_read_price,
                           endpoint.reasoning_price)
        starts = sorted(set(have) | set(source))
        plan = {}
        for i, start in enumerate(starts):
            old = old_prices[max(bisect.bisect_right(old_starts, start) - 1, 0)] if old_starts else current
            new = source[start] if start in source else _price_set(have[start])
            plan[start] = new
            if new != old:
                candidates.append(_Candidate(endpoint, start, old, new, PriceInterval(
                    key[0], key[1], None if i == 0 else start, starts[i + 1] if i + 1 < len(starts) else None)))
        plans[key] = plan

    use = price_use_count(intervals=[c.interval for c in candidates])
    known = {(p.endpoint_id, p.valid_from): p for p in PendingPriceChange.objects.filter(
        endpoint__in=[c.endpoint for c in candidates]).exclude(status=PendingPriceChange.Status.APPLIED)
        .order_by("status", "detected_at")}  # a pending change wins over an older dismissed one
    new_pending, renewed = [], []
    for i, c in enumerate(candidates):
        key = (c.endpoint.model_id, c.endpoint.provider_id)
        used = use.get(i)
        earlier = known.get((c.endpoint.pk, c.valid_from))
        if earlier is not None and earlier.status == PendingPriceChange.Status.DISMISSED and _new_price(earlier) == c.new:
            plans[key][c.valid_from] = c.old  # staff kept the old price: not raised again
            continue
        if used is None:
            report.price_changes.append(PriceChange(*names[key], c.valid_from, c.old, c.new, Status.APPLIED,
                                                    future=c.valid_from > now))
            continue
        plans[key][c.valid_from] = c.old  # billed: the old price stays in force until a reprice
        pending = earlier if earlier is not None and earlier.status == PendingPriceChange.Status.PENDING else None
        already = pending is not None and _new_price(pending) == c.new
        report.price_changes.append(PriceChange(*names[key], c.valid_from, c.old, c.new, Status.PENDING,
                                                future=c.valid_from > now, requests=used.requests,
                                                billed_since=used.first, already_pending=already))
        values = _pending_values(c, used)
        if pending is None:
            new_pending.append(PendingPriceChange(endpoint=c.endpoint, valid_from=c.valid_from, detected_at=now,
                                                  **values))
        else:
            for name, value in values.items():
                setattr(pending, name, value)
            if not already:
                pending.detected_at = now
            renewed.append(pending)
    PendingPriceChange.objects.bulk_create(new_pending)
    PendingPriceChange.objects.bulk_update(renewed, [*_pending_values_fields(), "detected_at"])

    to_create, to_update, current_update = [], [], []
    for key, plan in plans.items():
        endpoint = endpoints[key]
        have = rows.get(endpoint.pk, {})
        for start, price in plan.items():
            row = have.get(start)
            if row is None:
                to_create.append(EndpointPrice(endpoint=endpoint, valid_from=start, **_price_fields(price)))
                report.prices.added += 1
            elif _price_set(row) != price:
                for name, value in _price_fields(price).items():
                    setattr(row, name, value)
                to_update.append(row)
                report.prices.changed += 1
            else:
                report.prices.unchanged += 1
        starts = sorted(plan)
        in_force = plan[starts[max(bisect.bisect_right(starts, now) - 1, 0)]]
        if PriceSet(endpoint.prompt_price, endpoint.completion_price, endpoint.cache_read_price,
                    endpoint.reasoning_price) != in_force:
            for name, value in _price_fields(in_force).items():
                setattr(endpoint, name, value)
            current_update.append(endpoint)
    EndpointPrice.objects.bulk_create(to_create, batch_size=1000)
    EndpointPrice.objects.bulk_update(to_update, PRICE_FIELDS, batch_size=500)
    Endpoint.objects.bulk_update(current_update, PRICE_FIELDS, batch_size=500)
    report.price_changes.sort(key=lambda c: (c.model, c.provider, c.valid_from))


def _price_set(row) -> PriceSet:
    return PriceSet(row.prompt_price, row.completion_price, row.cache_read_price, row.reasoning_price)


PRICE_FIELDS = ["prompt_price", "completion_price", "cache_read_price", "reasoning_price"]


def _price_fields(price: PriceSet) -> dict:
    return dict(zip(PRICE_FIELDS, (price.prompt, price.completion, price.cache_read, price.reasoning), strict=True))


def _new_price(pending: PendingPriceChange) -> PriceSet:
    return PriceSet(pending.new_prompt_price, pending.new_completion_price, pending.new_cache_read_price,
                    pending.new_reasoning_price)


def _pending_values(c: _Candidate, used: PriceUse) -> dict:
    values = {"reprice_from": c.interval.start, "reprice_until": c.interval.end, "requests": used.requests,
              "billed_since": used.first}
    for prefix, price in (("old", c.old), ("new", c.new)):
        values.update({f"{prefix}_{name}": value for name, value in _price_fields(price).items()})
    return values


def _pending_values_fields() -> list[str]:
    return ["reprice_from", "reprice_until", "requests", "billed_since",
            *(f"{prefix}_{name}" for prefix in ("old", "new") for name in PRICE_FIELDS)]
