"""Names that traffic gives, resolved to the catalog's models and providers by genai-prices' own matching.

A gateway other than OpenRouter names a provider by its id (LiteLLM's `openai`, `gemini`, `azure`)
and a model by the provider's bare name (`gpt-4o`, `gemini-2.5-flash`, `claude-haiku-4-5-20251001`).
`CatalogNames.resolve` turns such a pair into the catalog's: the provider through genai-prices'
provider matching (`find_provider_by_id`: ids and its `provider_match` clauses, so `gemini` is
genai-prices' `google`) to the catalog provider made from it; the model through that provider's
model matching (`Provider.find_model`: its `match` clauses and dated-name rules) to the catalog
model whose endpoint at that provider `catalog_sync` built from the same genai-prices model
(`Endpoint.genai_prices_ref`). A name that matches nothing stays as written (staff see it among
the new names on /ops/unpriced/), so it never makes a second provider for one the catalog has.

Pure reads: one `load()` (three queries) per process and refresh; each distinct pair is matched
once and remembered, so a chunk costs a dictionary look-up per distinct pair.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from genai_prices import data_snapshot, types

from .genai_catalog import PROVIDER_NAMES, name_key
from .models import Endpoint, Model, Provider

# A provider id as gateways write it (`openai`, `vertex_ai`, `together_ai`), never a display name
# (`Google AI Studio`): display names are matched to the catalog's exactly, or by `name_key`.
_PROVIDER_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
_MEMO_MAX = 50_000


def genai_provider_by_id(providers: list[types.Provider], provider_id: str) -> types.Provider | None:
    """genai-prices' provider for an id-shaped name (its own `find_provider_by_id`); None for other text."""
    if not _PROVIDER_ID.match(provider_id):
        return None
    return data_snapshot.find_provider_by_id(providers, provider_id)


@dataclass
class CatalogNames:
    """What resolution reads of the catalog, and the pairs already resolved."""

    genai: list[types.Provider]
    providers: set[str]  # catalog provider names
    provider_by_key: dict[str, str]  # name_key -> name, for keys that name one provider only
    genai_id_of: dict[str, str]  # provider name -> its genai-prices id (real providers, not `openrouter`)
    catalog_models: set[str]  # slugs of the models genai-prices lists
    slugs_by_ref: dict[str, list[str]]  # "genai provider id:genai model id" -> catalog model slugs
    slugs_by_model: dict[str, list[str]]  # genai model id -> catalog model slugs, at any provider
    _memo: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, *, provider_model=Provider, endpoint_model=Endpoint, model_model=Model) -> CatalogNames:
        """From the catalog (the models' classes: a migration passes its historical ones)."""
        genai = data_snapshot.get_snapshot().providers
        rows = list(provider_model.objects.values_list("name", "genai_prices_id"))
        keys: dict[str, set[str]] = {}
        for name, _ in rows:
            keys.setdefault(name_key(name), set()).add(name)
        slugs_by_ref: dict[str, list[str]] = {}
        slugs_by_model: dict[str, list[str]] = {}
        for ref, slug in endpoint_model.objects.exclude(genai_prices_ref="").values_list("genai_prices_ref", "model__slug"):
            slugs_by_ref.setdefault(ref, []).append(slug)
            slugs_by_model.setdefault(ref.split(":", 1)[-1], []).append(slug)
        return cls(
            genai=genai, providers={name for name, _ in rows},
            provider_by_key={key: next(iter(names)) for key, names in keys.items() if len(names) == 1},
            genai_id_of={name: gid for name, gid in rows if gid and gid != "openrouter"},
            catalog_models=set(model_model.objects.filter(from_catalog=True).values_list("slug", flat=True)),
            slugs_by_ref=slugs_by_ref, slugs_by_model=slugs_by_model)

    def resolve(self, model: str, provider: str) -> tuple[str, str]:
        """(model slug, provider name) as the catalog names them; what matches nothing, as written."""
        pair = (model, provider)
        resolved = self._memo.get(pair)
        if resolved is None:
            if len(self._memo) > _MEMO_MAX:  # a flood of made-up names must not grow a worker without end
                self._memo.clear()
            catalog_provider, genai_provider = self._provider(provider)
            resolved = self._memo[pair] = (self._model(model, genai_provider), catalog_provider)
        return resolved

    def provider(self, name: str) -> str:
        """The catalog's name of a provider named `name`, or `name` when nothing matches."""
        return self.resolve("", name)[1]

    def _provider(self, name: str) -> tuple[str, types.Provider | None]:
        """The catalog provider's name, and the genai-prices provider its models are matched in.

        A provider genai-prices lists, by its name; then a provider id (`openai`, `gemini`) by
        genai-prices' matching, before any provider traffic once made of that id (`openai`, slug
        `openai-2`, which the data migration merges); then any provider by its name; then one whose
        name differs only in case and punctuation.
        """
        gid = self.genai_id_of.get(name)
        if gid is not None:
            return name, next((p for p in self.genai if p.id == gid), None)
        genai = genai_provider_by_id(self.genai, name)
        if genai is not None and PROVIDER_NAMES.get(genai.id):
            return PROVIDER_NAMES[genai.id], genai
        if name in self.providers:
            return name, genai
        same = self.provider_by_key.get(name_key(name))
        if same is not None and same != name:
            return self._provider(same)
        return name, genai

    def _model(self, model: str, genai: types.Provider | None) -> str:
        if not model or model in self.catalog_models:
            return model
        bare = model
        if "/" in model:
            # `anthropic/claude-sonnet-4-5`: LiteLLM's provider-prefixed name; another `author/name`
            # the catalog does not list stays as written (its author is not a provider to match in).
            prefix, bare = model.split("/", 1)
            genai = genai_provider_by_id(self.genai, prefix)
            if genai is None:
                return model
        if genai is None:
            try:  # no provider (a failure before routing): genai-prices' model-name rules pick one
                genai = data_snapshot.get_snapshot().find_provider(bare.lower(), None, None)
            except LookupError:
                return model
        info = genai.find_model(bare, all_providers=self.genai)  # with the models it borrows (azure: openai's)
        if info is None:
            return model
        # The catalog model built from this genai-prices model at this provider; else at the provider
        # it borrows from; else at any provider (Azure's `gpt-4o` is the catalog's `openai/gpt-4o`, even
        # where the catalog has no Azure endpoint of it).
        slugs = next((found for found in (self.slugs_by_ref.get(f"{pid}:{info.id}") for pid in (
            genai.id, *(genai.fallback_model_providers or ()))) if found), None) or self.slugs_by_model.get(info.id)
        if not slugs:
            return model  # genai-prices knows it, the catalog has no row of it: as written, for staff
        return min(slugs, key=lambda slug: _slug_rank(slug, bare.lower(), info.id))


def provider_duplicates(*, providers: list[tuple[str, str]], genai: list[types.Provider]) -> dict[str, str]:
    """{name: the provider it duplicates} among (name, genai-prices id) of the catalog's providers.

    A provider traffic made of a gateway's provider id (`openai`, slug `openai-2`; `gemini`)
    duplicates the provider genai-prices' matching gives that id; a provider whose name differs only
    in case and punctuation from one genai-prices lists (`Z.ai`, made for the lab `z-ai`, beside
    genai-prices' `Z.AI`) duplicates it. Providers genai-prices lists are never duplicates.
    """
    real = {name for name, gid in providers if gid and gid != "openrouter"}
    by_key: dict[str, set[str]] = {}
    for name in real:
        by_key.setdefault(name_key(name), set()).add(name)
    duplicates = {}
    for name, gid in providers:
        if name in real:
            continue
        target = None
        if not gid and (found := genai_provider_by_id(genai, name)) is not None:
            target = PROVIDER_NAMES.get(found.id)
        if target not in real:
            same = by_key.get(name_key(name), set())
            target = next(iter(same)) if len(same) == 1 else None
        if target is not None and target != name:
            duplicates[name] = target
    return duplicates


def _slug_rank(slug: str, name: str, genai_id: str) -> tuple:
    """Among the catalog models built from one genai-prices model, the one the name means: the same
    route name, else genai-prices' model id, else the plainest (no `:variant`, shortest)."""
    route = slug.split("/", 1)[-1]
    base = route.split(":", 1)[0]
    return (base != name and route != name, base != genai_id, ":" in route, len(slug), slug)
