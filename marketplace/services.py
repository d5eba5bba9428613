"""Catalog writes: registration of what traffic names (idempotent, concurrency-safe, bulk)."""
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.utils.text import slugify

from .models import App, AppCategory, Author, Model, Provider


def _author_name(slug: str) -> str:
    return KNOWN_AUTHORS.get(slug, slug.replace("-", " ").title())


KNOWN_AUTHORS = {
    "openai": "OpenAI", "anthropic": "Anthropic", "google": "Google", "meta-llama": "Meta", "deepseek": "DeepSeek",
    "mistralai": "Mistral AI", "qwen": "Qwen", "x-ai": "xAI", "moonshotai": "Moonshot AI", "z-ai": "Z.ai",
    "cohere": "Cohere", "nvidia": "NVIDIA", "microsoft": "Microsoft", "amazon": "Amazon", "minimax": "MiniMax",
    "perplexity": "Perplexity", "ai21": "AI21", "nousresearch": "Nous Research", "01-ai": "01.AI",
    "thudm": "THUDM", "baidu": "Baidu", "bytedance": "ByteDance", "tencent": "Tencent", "ibm-granite": "IBM",
    "inflection": "Inflection", "liquid": "Liquid", "arcee-ai": "Arcee AI", "openrouter": "OpenRouter",
}


def authors_register(*, slugs: Iterable[str]) -> dict[str, int]:
    """Return author ids by slug, creating the unknown ones."""
    wanted = set(slugs)
    found = dict(Author.objects.filter(slug__in=wanted).values_list("slug", "pk"))
    missing = wanted - found.keys()
    if missing:
        Author.objects.bulk_create([Author(slug=s, name=_author_name(s)) for s in sorted(missing)],
                                   ignore_conflicts=True)
        found.update(Author.objects.filter(slug__in=missing).values_list("slug", "pk"))
    return found


def _split_slug(slug: str) -> tuple[str, str]:
    if "/" in slug:
        author, name = slug.split("/", 1)
        author = slugify(author)[:100] or "unknown"
        return author, name
    return "unknown", slug


def models_register(*, slugs: Iterable[str]) -> dict[str, int]:
    """Return model ids by slug; unknown slugs become unlisted models awaiting staff review."""
    wanted = set(slugs)
    if not wanted:
        return {}
    found = dict(Model.objects.filter(slug__in=wanted).values_list("slug", "pk"))
    missing = wanted - found.keys()
    if missing:
        parts = {slug: _split_slug(slug) for slug in missing}
        author_ids = authors_register(slugs={author for author, _ in parts.values()})
        Model.objects.bulk_create([
            Model(slug=slug, author_id=author_ids[author], route_name=name, name=name, listed=False)
            for slug, (author, name) in sorted(parts.items())], ignore_conflicts=True)
        found.update(Model.objects.filter(slug__in=missing).values_list("slug", "pk"))
    return found


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
