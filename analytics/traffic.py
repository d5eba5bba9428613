"""Realistic routed-traffic logs over the real catalog, for the demo, the tests and the benchmarks.

Popularity of models, apps and accounts follows power laws; accounts concentrate on a few
favourite models, keys and apps, as real ones do; each request goes to a provider that has an
endpoint for its model and costs exactly that endpoint's price; arrivals follow weekday and
hour-of-day seasonality with growth; token counts are drawn from real traces
(`analytics/data/realdata/`). Vectorized with numpy and written in blocks, so memory stays flat
apart from one timestamp per record.
"""
from __future__ import annotations

import csv
import gzip
import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import orjson

from marketplace.models import Endpoint

DATA = Path(__file__).resolve().parent / "data" / "realdata" / "token_counts.csv.gz"
BLOCK = 100_000
EXPLORE_SHARE = 0.12
PRICE_SCALE = 10**15  # prices have at most 15 decimal places
UNIT_DIVISOR = 10**5  # 1e-15 USD -> 1e-10 USD (core.money units)
CATEGORIES = ("cli-agent", "programming-app", "chat", "roleplay", "writing", "translation", "data-analysis",
              "marketing", "education", "research")
FAMOUS_AUTHORS = {"anthropic", "openai", "google", "deepseek", "x-ai", "qwen", "meta-llama", "mistralai",
                  "moonshotai", "z-ai"}
REASONING_HINTS = ("r1", "reason", "think", "o1", "o3", "o4", "gpt-5", "grok-4", "qwq")
WORDS = ("nova", "pixel", "quill", "atlas", "orbit", "ember", "cobalt", "lumen", "vertex", "sable", "tidal", "pine",
         "rune", "echo", "flux", "harbor", "iris", "juniper", "kite", "lattice", "maple", "nimbus", "onyx", "prism",
         "quartz", "raven", "sage", "tempo", "umber", "vista", "willow", "zephyr", "delta", "forge", "glyph", "helix")
KINDS = ("Code", "Chat", "Writer", "Agent", "Studio", "Pilot", "Notes", "Lab", "Desk", "Bot")
HOSTILE_NAME = "<img src=x onerror=alert(1)>"
ALNUM = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8)


class EmptyCatalog(Exception):
    pass


@dataclass(frozen=True)
class TrafficSummary:
    records: int
    accounts: int
    apps: int
    models: int
    providers: int
    seconds: float


@dataclass
class _Model:
    slug: str
    providers: list[str]
    prices: np.ndarray  # per endpoint: prompt, completion, cache_read in 1e-15 USD per token
    provider_weights: np.ndarray
    reasoning: bool

    def __post_init__(self):
        self.slug_json = orjson.dumps(self.slug).decode()
        self.providers_json = [orjson.dumps(p).decode() for p in self.providers]


def _catalog(rng: np.random.Generator) -> list[_Model]:
    """Listed models with endpoints, most popular first (famous labs favoured)."""
    by_model: dict[str, list] = {}
    rows = (Endpoint.objects.filter(model__listed=True)
            .values_list("model__slug", "model__author__slug", "provider__name", "prompt_price", "completion_price",
                         "cache_read_price").order_by("model__slug", "provider__name"))
    authors = {}
    for slug, author, provider, prompt, completion, cache_read in rows:
        authors[slug] = author
        by_model.setdefault(slug, []).append((provider, prompt, completion, cache_read))
    if not by_model:
        raise EmptyCatalog("the catalog is empty: run `python manage.py catalog_sync` first")
    slugs = sorted(by_model)
    boost = np.array([6.0 if authors[s] in FAMOUS_AUTHORS and ":" not in s else 1.0 for s in slugs])
    order = np.argsort(-(rng.random(len(slugs)) * boost), kind="stable")
    models = []
    for index in order:
        slug = slugs[index]
        endpoints = by_model[slug]
        scale = Decimal(PRICE_SCALE)
        prices = np.array([[int(p * scale), int(c * scale), int((r if r is not None else p) * scale)]
                           for _, p, c, r in endpoints], dtype=np.int64)
        weights = rng.pareto(1.5, len(endpoints)) + 0.2
        models.append(_Model(slug, [e[0] for e in endpoints], prices, weights / weights.sum(),
                             any(h in slug.lower() for h in REASONING_HINTS)))
    return models


def _zipf(n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


def _token_pairs() -> np.ndarray:
    with gzip.open(DATA, "rt") as handle:
        reader = csv.reader(handle)
        next(reader)
        return np.array([(int(p), int(c)) for _, p, c in reader], dtype=np.int64)


def _hex(rng: np.random.Generator, n: int) -> str:
    return "".join(f"{b:02x}" for b in rng.integers(0, 256, n))


@dataclass
class _Account:
    id: str
    keys: list[str]
    models: np.ndarray  # indexes into the model list
    model_weights: np.ndarray
    apps: np.ndarray  # indexes into the app list
    app_weights: np.ndarray
    no_app_share: float


def _apps(rng: np.random.Generator, count: int, hostile: bool) -> list[tuple[str, str, str]]:
    """(origin, name, categories) per app; names and origins are JSON-encoded strings."""
    apps, seen = [], set()
    while len(apps) < count:
        word = WORDS[rng.integers(len(WORDS))]
        second = WORDS[rng.integers(len(WORDS))]
        kind = KINDS[rng.integers(len(KINDS))]
        host = f"{word}{second}.{('ai', 'dev', 'app', 'io', 'com')[rng.integers(5)]}"
        if host in seen:
            host = f"{word}-{second}-{len(apps)}.dev"
        seen.add(host)
        categories = list(dict.fromkeys(CATEGORIES[i] for i in rng.integers(0, len(CATEGORIES), 1 + rng.integers(2))))
        apps.append((f"https://{host}/", f"{word.title()}{second.title()} {kind}", ",".join(categories)))
    if hostile and apps:
        origin, _, categories = apps[min(5, len(apps) - 1)]
        apps[min(5, len(apps) - 1)] = (origin, HOSTILE_NAME, categories)
    return [tuple(orjson.dumps(v).decode() for v in app) for app in apps]


def _accounts(rng: np.random.Generator, count: int, model_weights: np.ndarray, app_weights: np.ndarray
              ) -> list[_Account]:
    accounts = []
    for _ in range(count):
        n_models = int(min(len(model_weights), rng.integers(6, 30)))
        models = rng.choice(len(model_weights), n_models, replace=False, p=model_weights)
        weights = model_weights[models] * rng.lognormal(0.0, 0.8, n_models)
        n_apps = int(min(len(app_weights), rng.integers(1, 8)))
        apps = rng.choice(len(app_weights), n_apps, replace=False, p=app_weights)
        app_w = app_weights[apps] * (rng.pareto(1.2, n_apps) + 0.3)
        accounts.append(_Account(
            id=f"acct_{_hex(rng, 4)}", keys=[f"key_{_hex(rng, 6)}" for _ in range(int(rng.integers(1, 7)))],
            models=models, model_weights=weights / weights.sum(), apps=apps, app_weights=app_w / app_w.sum(),
            no_app_share=float(rng.uniform(0.05, 0.3))))
    return accounts


def _timestamps(rng: np.random.Generator, events: int, days: int, end: datetime) -> np.ndarray:
    """Millisecond epochs over the window, with weekday, hour-of-day and growth, sorted."""
    hours = days * 24
    end_hour = end.replace(minute=0, second=0, microsecond=0)
    start = end_hour - timedelta(hours=hours)
    naive = start.astimezone(UTC).replace(tzinfo=None)  # numpy datetimes are naive UTC
    starts = np.array([naive + timedelta(hours=h) for h in range(hours)], dtype="datetime64[ms]")
    hour_of_day = (starts.astype("datetime64[h]").astype(np.int64)) % 24
    weekday = (starts.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 0 = Monday
    daily = 0.55 + 0.45 * np.sin((hour_of_day - 8) / 24 * 2 * np.pi) ** 2 * (hour_of_day >= 6)
    weekly = np.where(weekday >= 5, 0.7, 1.0)
    growth = np.linspace(0.75, 1.25, hours)
    weights = daily * weekly * growth
    chosen = rng.choice(hours, events, p=weights / weights.sum())
    ms = starts.astype(np.int64)[chosen] + rng.integers(0, 3_600_000, events)
    now_ms = int(end.timestamp() * 1000)
    ms = np.minimum(ms, now_ms)
    ms.sort()
    return ms


def _money(units: int) -> str:
    """Integer 1e-10 USD as an exact JSON number."""
    whole, frac = divmod(units, 10**10)
    return f"{whole}.{frac:010d}".rstrip("0").rstrip(".") if frac else str(whole)


def traffic_generate(*, events: int, out: Path, seed: int = 1, days: int = 30, end: datetime | None = None,
                     accounts: int = 12, apps: int = 250, hostile_app: bool = False) -> TrafficSummary:
    """Write `events` openrouter-format records to `out` (gzip when it ends in .gz)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    end = end or datetime.now(tz=UTC)
    models = _catalog(rng)
    model_weights = _zipf(len(models), 0.95)
    app_list = _apps(rng, apps, hostile_app)
    app_weights = _zipf(len(app_list), 0.9) if app_list else np.array([])
    account_list = _accounts(rng, accounts, model_weights, app_weights) if app_list else []
    account_weights = _zipf(len(account_list), 0.8)
    pairs = _token_pairs()
    stamps = _timestamps(rng, events, days, end)
    all_providers = sorted({p for m in models for p in m.providers})
    provider_speed = {p: (float(rng.uniform(150, 1200)), float(rng.uniform(25, 250))) for p in all_providers}

    out.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if str(out).endswith(".gz") else open
    used_models, used_providers = set(), set()
    with opener(out, "wt", encoding="utf-8", newline="\n") as handle:
        for block_start in range(0, events, BLOCK):
            n = min(BLOCK, events - block_start)
            ms = stamps[block_start:block_start + n]
            lines = _block(rng, n, ms, models, model_weights, account_list, account_weights, app_list, pairs,
                           all_providers, provider_speed, used_models, used_providers)
            handle.write(lines)
    return TrafficSummary(records=events, accounts=len(account_list), apps=len(app_list), models=len(used_models),
                          providers=len(used_providers), seconds=time.perf_counter() - started)


def _block(rng, n, ms, models, model_weights, accounts, account_weights, apps, pairs, all_providers,
           provider_speed, used_models, used_providers) -> str:
    account_idx = rng.choice(len(accounts), n, p=account_weights)
    model_idx = np.empty(n, dtype=np.int64)
    app_idx = np.full(n, -1, dtype=np.int64)
    key_idx = np.empty(n, dtype=np.int64)
    for a, account in enumerate(accounts):
        chosen = np.flatnonzero(account_idx == a)
        if not len(chosen):
            continue
        model_idx[chosen] = rng.choice(account.models, len(chosen), p=account.model_weights)
        # Accounts mostly stay with their favourites and sometimes try anything in the catalog.
        exploring = chosen[rng.random(len(chosen)) < EXPLORE_SHARE]
        model_idx[exploring] = rng.choice(len(models), len(exploring), p=model_weights)
        key_idx[chosen] = rng.integers(0, len(account.keys), len(chosen))
        with_app = chosen[rng.random(len(chosen)) >= account.no_app_share]
        if len(account.apps) and len(with_app):
            app_idx[with_app] = rng.choice(account.apps, len(with_app), p=account.app_weights)
    endpoint_idx = np.zeros(n, dtype=np.int64)
    for m in np.unique(model_idx):
        chosen = np.flatnonzero(model_idx == m)
        model = models[m]
        used_models.add(model.slug)
        if len(model.providers) > 1:
            endpoint_idx[chosen] = rng.choice(len(model.providers), len(chosen), p=model.provider_weights)
    token_idx = rng.integers(0, len(pairs), n)
    prompt = pairs[token_idx, 0].copy()
    completion = pairs[token_idx, 1].copy()
    u = rng.random((n, 8))
    status = np.where(u[:, 0] < 0.02, np.array([429, 500, 502, 503])[rng.integers(0, 4, n)], 200)
    fallback = (u[:, 1] < 0.05) & (status == 200)
    no_cost = u[:, 2] < 0.03
    byok = u[:, 3] < 0.02
    wrapped = u[:, 4] < 0.1
    cached_share = np.where(u[:, 5] < 0.3, rng.uniform(0.2, 0.9, n), 0.0)
    cancelled = u[:, 6] < 0.01
    streamed = u[:, 7] < 0.8
    failed = status != 200
    prompt[failed] = 0
    completion[failed] = 0
    cached = (prompt * cached_share).astype(np.int64)
    noise_latency = rng.lognormal(0.0, 0.45, n)
    noise_speed = rng.lognormal(0.0, 0.35, n)
    reasoning_share = rng.uniform(0.3, 0.8, n)
    other_idx = rng.integers(0, len(all_providers), n)
    bad_status = np.array([429, 500, 502, 503])[rng.integers(0, 4, n)]
    ids = ALNUM[rng.integers(0, len(ALNUM), (n, 20))].tobytes().decode()
    seconds = (ms // 1000).tolist()
    stamps = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms").tolist()

    out = io.StringIO()
    write = out.write
    half = UNIT_DIVISOR // 2
    for i in range(n):
        account = accounts[account_idx[i]]
        model = models[model_idx[i]]
        e = int(endpoint_idx[i])
        provider = model.providers[e]
        p, c, cch = int(prompt[i]), int(completion[i]), int(cached[i])
        reasoning = int(c * reasoning_share[i]) if model.reasoning and c else 0
        price = model.prices[e]
        femto = (p - cch) * int(price[0]) + cch * int(price[2]) + c * int(price[1])
        units, rest = divmod(femto, UNIT_DIVISOR)
        if rest > half or (rest == half and units % 2):
            units += 1
        base_latency, speed = provider_speed[provider]
        latency = int(base_latency * noise_latency[i])
        gen_time = int(c / (speed * noise_speed[i]) * 1000) + 1 if c else int(50 * noise_latency[i])
        code = int(status[i])
        provider_json = model.providers_json[e]
        attempts = f'{{"provider_name":{provider_json},"status":{code},"latency":{latency}}}'
        if fallback[i]:
            other = all_providers[other_idx[i]]
            if other == provider and len(model.providers) > 1:
                other = model.providers[(e + 1) % len(model.providers)]
            used_providers.add(other)
            attempts = (f'{{"provider_name":{orjson.dumps(other).decode()},"status":{bad_status[i]},'
                        f'"latency":{latency // 3}}},' + attempts)
        used_providers.add(provider)
        app_part = ""
        if app_idx[i] >= 0:
            origin, name, categories = apps[app_idx[i]]
            app_part = f'"origin":{origin},"app_name":{name},"app_categories":{categories},'
        cost_part = "" if no_cost[i] else f'"total_cost":{_money(units)},'
        ok = code == 200
        finish = '"stop"' if ok else "null"
        record = (
            f'{{"id":"gen-{seconds[i]}-{ids[i * 20:i * 20 + 20]}","created_at":"{stamps[i]}Z",'
            f'"model":{model.slug_json},"provider_name":{provider_json},{app_part}'
            f'"streamed":{"true" if streamed[i] else "false"},"cancelled":{"true" if cancelled[i] else "false"},'
            f'"latency":{latency if ok else "null"},"generation_time":{gen_time if ok else "null"},'
            f'"tokens_prompt":{p},"tokens_completion":{c},"native_tokens_reasoning":{reasoning},'
            f'"native_tokens_cached":{cch},"is_byok":{"true" if byok[i] else "false"},'
            f'"finish_reason":{finish},{cost_part}"status":{code},'
            f'"provider_responses":[{attempts}],"account":"{account.id}",'
            f'"api_key":"{account.keys[key_idx[i]]}"}}'
        )
        write(f'{{"data":{record}}}\n' if wrapped[i] else record + "\n")
    return out.getvalue()
