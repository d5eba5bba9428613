"""Read genai-prices' bundled data (offline) into the catalog Tokengrid keeps.

genai-prices' `openrouter` provider lists the routed `author/name[:variant]` slugs with
OpenRouter's prices; the other providers list their own model ids with match rules. A model is
served by every provider one of whose models matches its name by genai-prices' own rules (the
`match` clauses); a model no provider matches is served first-party, by a provider named after
its author, at OpenRouter's price.

The data is genai-prices' bundled snapshot (`data_snapshot.get_snapshot()`, which honours
`data_snapshot.set_custom_snapshot`), or a snapshot file in genai-prices' published JSON format
read by `snapshot_load` (the tests pin one: tests/marketplace/data/, made by
scripts/genai_prices_snapshot.py).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from django.utils.text import slugify
from genai_prices import data_snapshot, types

PER_TOKEN = Decimal(1_000_000)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

# genai-prices provider id -> the name a router shows (None: not an inference provider, or a
# Hugging Face route to a provider that is listed on its own).
PROVIDER_NAMES: dict[str, str | None] = {
    "anthropic": "Anthropic", "openai": "OpenAI", "google": "Google Vertex", "together": "Together",
    "fireworks": "Fireworks", "groq": "Groq", "deepseek": "DeepSeek", "mistral": "Mistral", "novita": "Novita",
    "cerebras": "Cerebras", "aws": "Amazon Bedrock", "azure": "Azure", "x-ai": "xAI", "baseten": "Baseten",
    "cloudflare": "Cloudflare", "cohere": "Cohere", "databricks": "Databricks", "doubleword": "Doubleword",
    "modal": "Modal", "moonshotai": "Moonshot AI", "perplexity": "Perplexity", "quicksilverpro": "QuicksilverPro",
    "zai": "Z.AI", "zhipuai": "Zhipu AI", "arcee": "Arcee AI", "avian": "Avian", "minimax": "MiniMax",
    "meta": "Meta", "ovhcloud": "OVHcloud", "huggingface_nebius": "Nebius", "huggingface_hyperbolic": "Hyperbolic",
    "huggingface_nscale": "Nscale", "huggingface_sambanova": "SambaNova", "huggingface_publicai": "Public AI",
    "huggingface_ovhcloud": None, "huggingface_novita": None, "huggingface_together": None,
    "huggingface_fireworks-ai": None, "huggingface_groq": None, "huggingface_cerebras": None,
    "openrouter": None, "openai-decisions": None, "github-copilot": None, "cursor": None, "elevenlabs": None,
    "voyageai": None, "typesafe": None,
}

AUTHOR_NAMES = {
    "openai": "OpenAI", "anthropic": "Anthropic", "google": "Google", "meta-llama": "Meta", "deepseek": "DeepSeek",
    "mistralai": "Mistral AI", "qwen": "Qwen", "x-ai": "xAI", "moonshotai": "Moonshot AI", "z-ai": "Z.ai",
    "cohere": "Cohere", "nvidia": "NVIDIA", "microsoft": "Microsoft", "amazon": "Amazon", "minimax": "MiniMax",
    "perplexity": "Perplexity", "ai21": "AI21", "nousresearch": "Nous Research", "01-ai": "01.AI",
    "thudm": "THUDM", "baidu": "Baidu", "bytedance": "ByteDance", "tencent": "Tencent", "ibm-granite": "IBM",
    "inflection": "Inflection", "liquid": "Liquid", "arcee-ai": "Arcee AI", "openrouter": "OpenRouter",
    "alibaba": "Alibaba", "allenai": "Ai2", "inception": "Inception", "stepfun-ai": "StepFun",
    "sao10k": "Sao10K", "thedrummer": "TheDrummer", "gryphe": "Gryphe", "neversleep": "NeverSleep",
}


def author_name(slug: str) -> str:
    """A lab's display name from its slug."""
    return AUTHOR_NAMES.get(slug, slug.replace("-", " ").replace("_", " ").title())


def name_key(name: str) -> str:
    """A provider name without case and punctuation: `Z.ai`, `Z.AI` and `zai` are one provider."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


_SERVING_BY_KEY = {name_key(name): name for name in PROVIDER_NAMES.values() if name}


def first_party_name(author: str) -> str:
    """The provider that serves an author's own models: the inference provider of the same name when
    there is one (the lab `z-ai`, "Z.ai", is genai-prices' provider "Z.AI"), else the author's name."""
    name = author_name(author)
    return _SERVING_BY_KEY.get(name_key(name), name)


@dataclass(frozen=True)
class PricePoint:
    valid_from: datetime
    prompt: Decimal
    completion: Decimal
    cache_read: Decimal | None
    reasoning: Decimal | None


@dataclass
class EndpointEntry:
    provider_name: str
    genai_provider_id: str
    genai_ref: str
    context_length: int | None
    prices: list[PricePoint]  # oldest first; the last one in force today is current

    @property
    def current(self) -> PricePoint:
        today = datetime.now(tz=UTC)
        in_force = [p for p in self.prices if p.valid_from <= today]
        return in_force[-1] if in_force else self.prices[0]


@dataclass
class ModelEntry:
    slug: str
    author: str
    route_name: str
    name: str
    description: str
    context_length: int | None
    endpoints: list[EndpointEntry] = field(default_factory=list)


def _per_token(value) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, types.TieredPrices):
        value = value.base
    return (Decimal(value) / PER_TOKEN).normalize()


def _points(prices) -> list[PricePoint]:
    """Price points from a ModelPrice or a list of ConditionalPrice (start-date constraints only)."""
    items = prices if isinstance(prices, list) else [types.ConditionalPrice(prices=prices)]
    points = []
    for item in items:
        constraint = item.constraint
        if isinstance(constraint, types.TimeOfDateConstraint):
            continue  # off-peak discounts are not a price change over time
        start = EPOCH
        if isinstance(constraint, types.StartDateConstraint):
            start = datetime.combine(constraint.start_date, datetime.min.time(), tzinfo=UTC)
        price = item.prices
        prompt = _per_token(getattr(price, "input_mtok", None))
        completion = _per_token(getattr(price, "output_mtok", None))
        if prompt is None and completion is None:
            continue  # not a token-priced model (audio, embeddings by request, ...)
        reasoning = _per_token(getattr(price, "output_reasoning_mtok", None))
        points.append(PricePoint(start, prompt or Decimal(0), completion or Decimal(0),
                                 _per_token(getattr(price, "cache_read_mtok", None)),
                                 reasoning if reasoning != completion else None))
    points.sort(key=lambda p: p.valid_from)
    return points


def _display_name(route: str) -> str:
    """`deepcoder-14b-preview:free` -> `Deepcoder 14B Preview (free)`."""
    base, _, variant = route.partition(":")
    words = [w.upper() if w[:-1].isdigit() and w[-1:] in "bmk" else w.capitalize() for w in base.split("-")]
    return " ".join(words) + (f" ({variant})" if variant else "")


def _matches(provider: types.Provider, candidates: tuple[str, ...]) -> types.ModelInfo | None:
    """genai-prices' own rule: the provider's first model whose match clause accepts the name."""
    for model in provider.models:
        if any(model.match.is_match(candidate) for candidate in candidates):
            return model
    return None


def snapshot_load(*, path: Path) -> data_snapshot.DataSnapshot:
    """Read a snapshot file: genai-prices' published JSON (a list of providers, or {"providers": [...]}).

    It is parsed by genai-prices' own reader of that format, the one its UpdatePrices applies to the
    data.json it fetches (a private name: requirements.lock pins the release, and the tests load the
    pinned file through it).
    """
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    raw = payload["providers"] if isinstance(payload, dict) else payload
    return data_snapshot.DataSnapshot(providers=types._providers_from_raw(raw), from_auto_update=False)


def catalog_entries(*, snapshot: data_snapshot.DataSnapshot | None = None) -> Iterator[ModelEntry]:
    """Every routed model of genai-prices with its endpoints and price history (default: the snapshot in use)."""
    providers = {p.id: p for p in (snapshot or data_snapshot.get_snapshot()).providers}
    serving = [(providers[pid], name) for pid, name in PROVIDER_NAMES.items() if name and pid in providers]
    for info in providers["openrouter"].models:
        if "/" not in info.id or info.id.startswith("~"):
            continue  # legacy aliases without an author, and router aliases such as `~vendor/latest`
        author, route = info.id.split("/", 1)
        author = slugify(author)[:100] or "unknown"
        base_route = route.split(":", 1)[0]
        entry = ModelEntry(slug=info.id, author=author, route_name=route, name=info.name or _display_name(route),
                           description=info.description or "", context_length=info.context_window)
        free = route.endswith(":free")
        if not free:
            for provider, name in serving:
                matched = _matches(provider, (base_route, info.id.split(":", 1)[0]))
                if matched is None:
                    continue
                points = _points(matched.prices)
                if points:
                    entry.endpoints.append(EndpointEntry(name, provider.id, matched.id,
                                                         matched.context_window or info.context_window, points))
        if entry.context_length is None:
            entry.context_length = max((ep.context_length or 0 for ep in entry.endpoints), default=0) or None
        if not entry.endpoints:
            points = _points(info.prices) or [PricePoint(EPOCH, Decimal(0), Decimal(0), None, None)]
            entry.endpoints.append(EndpointEntry(first_party_name(author), "openrouter", info.id, info.context_window,
                                                 points))
        yield entry
