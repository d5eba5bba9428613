"""Realistic routed-traffic logs over the real catalog, for the demo, the tests and the benchmarks.

(Longer than 400 lines on purpose: one vectorized generator whose stages share the catalog, taste,
account and time arrays of a block; cut apart, each piece would take half a dozen of them.)

The traffic is shaped like a router's, at any number of accounts (`accounts=12` for the demo,
`accounts=100_000` for the benchmarks):

- accounts: Zipf popularity (exponent 1.07) over `accounts`; at 100,000 accounts about 70,000
  of them appear in 1M records, the busiest sends about a tenth of the traffic and most send
  only a handful of requests;
- keys: 1–4 per account (half have one; an account expecting 1,000 requests or more has 2–4), the
  first used most;
- end users (`user`, `user_<12 hex>`): an account's number of users grows with its expected
  request count r (`1 + r ** 0.7 / 2`, log-normal noise, 1 to 5,000), so the busiest accounts have
  thousands and the small ones one to a few; within an account users are skewed (the first few
  send most); 30 % of the accounts that are not busy never send a user, the others send it on
  50–100 % of their requests. A user's id is a hash of (account, user number, seed), so no table
  of users is kept;
- sessions and tags (drawn from a generator of their own, so the other fields are the same bytes
  as before they existed): half the accounts name a session on their users' requests (one per
  user and half hour, `sess_<10 hex>`); 40 % of the accounts tag 60–100 % of their requests with
  an environment (`prod` 80 %, `staging`, `dev`) and one of their 1–4 features (`chat`, `rag`, …);
- apps: Zipf popularity over `apps`; each account uses 1–7 of them (drawn by popularity, the
  first used most) and calls 5–30 % of its requests without one;
- models: Zipf popularity over the catalog (famous labs favoured). Accounts concentrate on a few
  favourites through *taste profiles*: up to 256 profiles, each 6–30 models drawn by popularity
  with log-normal preferences; the busiest accounts get a profile each, the rest share them at
  random; 12 % of requests explore the whole catalog by popularity instead;
- providers: each model is served by the providers that have an endpoint for it, weighted by a
  Pareto draw per endpoint; a request costs exactly that endpoint's price (half-even to 1e-10 USD);
- time: weekday and hour-of-day seasonality with growth; token counts from real traces
  (`analytics/data/realdata/`). Three orders of the same content:
  - a backfill (the default): `events` records over `days` days, written in time order;
  - shuffled (`shuffle=True`): the same timestamps scattered at random through the file, the worst
    case for the rollups (every chunk touches every hour of the month);
  - a live stream (`live_hours=H`, `events = rate × H × 3600`): what a router emits over the last H
    hours, in time order. Arrivals are a Poisson process: the count of each second of the window is
    drawn (multinomial, optionally weighted by the hour-of-day shape with `diurnal=True`) and the
    arrivals fall uniformly within their second, so gaps are exponential and timestamps never
    decrease. The stream is drawn a block at a time: memory does not grow with the record count.

Everything is drawn with numpy over blocks of 100k records from per-account arrays (popularity,
offsets of keys and apps, user counts, profile) and per-endpoint arrays, so the cost per record
does not depend on the number of accounts and memory stays flat apart from one timestamp per
record (a backfill) or one count per second of the window (a live stream). The same `seed` writes
the same bytes.

(Longer than 400 lines: one generator whose three orders, the month, the shuffled month and the
live stream, share every draw of accounts, keys, users, apps and routes; split, the files would
no longer be byte-identical for a seed.)
"""
from __future__ import annotations

import csv
import gzip
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import orjson

from marketplace.models import Endpoint

DATA = Path(__file__).resolve().parent.parent / "data" / "realdata" / "token_counts.csv.gz"
BLOCK = 100_000
LIVE_SEGMENT_MS = 1_000  # a live stream's arrivals are counted per second, then placed in it
EXPLORE_SHARE = 0.12
ACCOUNT_EXPONENT = 1.07
TASTES = 256
KEY_SHARES = (0.5, 0.28, 0.14, 0.08)  # accounts with 1, 2, 3, 4 keys
BUSY_REQUESTS = 1_000  # expected requests from which an account has 2-4 keys
MAX_USERS = 5_000
USER_BITS = 13  # an account's user number fits in 13 bits (MAX_USERS < 8192)
NO_USER_ACCOUNTS = 0.3
TAG_ENVS = ("prod", "staging", "dev")
TAG_ENV_CDF = np.cumsum((0.8, 0.15, 0.05))
TAG_FEATURES = ("chat", "agent", "rag", "search", "summarize", "translate", "eval", "batch", "support",
                "code-review", "extract", "classify")
TAGGED_ACCOUNTS = 0.4
SESSION_ACCOUNTS = 0.5
SESSION_MS = 30 * 60 * 1000
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
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
BOOL = ("false", "true")
FINISH = ("null", '"stop"')


class EmptyCatalog(Exception):
    pass


@dataclass(frozen=True)
class TrafficSummary:
    records: int
    accounts: int  # configured
    apps: int  # configured
    models: int  # seen in the file, as the next ones
    providers: int
    seconds: float
    accounts_seen: int = 0
    keys_seen: int = 0
    users_seen: int = 0
    apps_seen: int = 0


@dataclass
class _Model:
    slug: str
    providers: list[str]
    prices: np.ndarray  # per endpoint: prompt, completion, cache_read in 1e-15 USD per token
    provider_weights: np.ndarray
    reasoning: bool


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


@dataclass
class _Endpoints:
    """The catalog flattened: endpoints model by model, with per-model offsets and per-endpoint columns."""
    start: np.ndarray  # per model: index of its first endpoint
    cdf: np.ndarray  # models × most endpoints: cumulative provider weights (padded with 2.0)
    provider: np.ndarray  # per endpoint: index into `providers`
    count: np.ndarray  # per model: its number of endpoints
    prices: np.ndarray  # per endpoint × (prompt, completion, cache read), 1e-15 USD per token
    reasoning: np.ndarray  # per model
    head: list[str]  # per endpoint: '"model":…,"provider_name":…,'
    provider_json: list[str]  # per provider
    providers: list[str]


def _endpoints(models: list[_Model]) -> _Endpoints:
    providers = sorted({p for m in models for p in m.providers})
    position = {p: i for i, p in enumerate(providers)}
    count = np.array([len(m.providers) for m in models], dtype=np.int64)
    provider_json = [orjson.dumps(p).decode() for p in providers]
    head = []
    for m in models:
        slug = orjson.dumps(m.slug).decode()
        head.extend(f'"model":{slug},"provider_name":{provider_json[position[p]]},' for p in m.providers)
    return _Endpoints(start=np.concatenate(([0], np.cumsum(count)[:-1])),
                      cdf=_cdf_table([m.provider_weights for m in models]),
                      provider=np.array([position[p] for m in models for p in m.providers], dtype=np.int64),
                      count=count, prices=np.concatenate([m.prices for m in models]),
                      reasoning=np.array([m.reasoning for m in models]), head=head, provider_json=provider_json,
                      providers=providers)


def _cdf(weights: np.ndarray) -> np.ndarray:
    """Cumulative shares ending at exactly 1.0, for `np.searchsorted(cdf, u, side="right")` with u in [0, 1)."""
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return cdf


def _cdf_table(rows: list[np.ndarray]) -> np.ndarray:
    """One cumulative row per weight vector, padded to the longest with 2.0 (never reached)."""
    table = np.full((len(rows), max(len(r) for r in rows)), 2.0)
    for i, weights in enumerate(rows):
        table[i, :len(weights)] = _cdf(weights)
    return table


def _pick(table: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per record, the column of its row `rows[i]` of a cumulative `table` that `u[i]` falls in."""
    picked = np.zeros(len(rows), dtype=np.int64)
    for column in range(table.shape[1] - 1):  # the last column holds 1.0 or 2.0: never passed
        picked += table[rows, column] <= u
    return picked


def _zipf(n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


def _token_pairs() -> np.ndarray:
    with gzip.open(DATA, "rt") as handle:
        reader = csv.reader(handle)
        next(reader)
        return np.array([(int(p), int(c)) for _, p, c in reader], dtype=np.int64)


def _hex(values: np.ndarray, digits: int) -> str:
    """The low `digits` hex digits of each value, concatenated: value i is at [i * digits:(i + 1) * digits]."""
    shifts = np.arange(digits - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    return HEX[(values.astype(np.uint64)[:, None] >> shifts) & np.uint64(15)].tobytes().decode()


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a fixed, well-spread bijection of uint64."""
    x = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _unique_ids(rng: np.random.Generator, prefix: str, count: int) -> list[str]:
    """`count` distinct ids `<prefix><12 hex>`."""
    while True:
        values = rng.integers(0, 2**48, count, dtype=np.int64)
        if len(np.unique(values)) == count:
            break
    digits = _hex(values, 12)
    return [f"{prefix}{digits[i * 12:i * 12 + 12]}" for i in range(count)]


def _apps(rng: np.random.Generator, count: int, hostile: bool) -> list[str]:
    """Per app, its JSON fields '"origin":…,"app_name":…,"app_categories":…,'."""
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
    dumps = orjson.dumps
    return [f'"origin":{dumps(o).decode()},"app_name":{dumps(n).decode()},"app_categories":{dumps(c).decode()},'
            for o, n, c in apps]


@dataclass
class _Tastes:
    """Taste profiles: a few favourite models each, with the account's preference among them."""
    models: np.ndarray  # profiles × most favourites: model indexes (padded with 0, never picked)
    cdf: np.ndarray  # the same shape: cumulative preference (padded with 2.0)


def _tastes(rng: np.random.Generator, count: int, model_weights: np.ndarray) -> _Tastes:
    favourites, preferences = [], []
    for _ in range(count):
        n_models = int(min(len(model_weights), rng.integers(6, 30)))
        models = rng.choice(len(model_weights), n_models, replace=False, p=model_weights)
        favourites.append(models)
        preferences.append(model_weights[models] * rng.lognormal(0.0, 0.8, n_models))
    table = np.zeros((count, max(len(f) for f in favourites)), dtype=np.int64)
    for i, models in enumerate(favourites):
        table[i, :len(models)] = models
    return _Tastes(models=table, cdf=_cdf_table(preferences))


@dataclass
class _Accounts:
    """Per-account columns (index = popularity rank); keys and apps as flat lists with offsets."""
    cdf: np.ndarray  # cumulative Zipf popularity
    taste: np.ndarray  # index of the account's taste profile
    key_start: np.ndarray
    key_count: np.ndarray
    tail: list[str]  # per key: '"account":"…","api_key":"…"'
    app_start: np.ndarray
    app_count: np.ndarray
    apps: np.ndarray  # flat: app indexes
    no_app_share: np.ndarray
    users: np.ndarray  # number of end users
    user_share: np.ndarray  # share of requests that name a user
    user_salt: np.uint64


def _accounts(rng: np.random.Generator, count: int, events: int, tastes: int, app_cdf: np.ndarray | None
              ) -> _Accounts:
    weights = _zipf(count, ACCOUNT_EXPONENT)
    ids = _unique_ids(rng, "acct_", count)
    expected = events * weights
    key_count = rng.choice(len(KEY_SHARES), count, p=KEY_SHARES) + 1
    busy = expected >= BUSY_REQUESTS  # a busy account runs several keys
    key_count[busy] = np.maximum(key_count[busy], rng.integers(2, len(KEY_SHARES) + 1, int(busy.sum())))
    keys = _unique_ids(rng, "key_", int(key_count.sum()))
    owner = np.repeat(np.arange(count), key_count).tolist()
    tail = [f'"account":"{ids[a]}","api_key":"{key}"' for a, key in zip(owner, keys, strict=True)]
    # The busiest accounts have a taste of their own; the rest share the profiles.
    taste = np.concatenate((np.arange(min(count, tastes)), rng.integers(0, tastes, max(0, count - tastes))))
    app_count = rng.integers(1, 8, count)
    apps = (np.searchsorted(app_cdf, rng.random(int(app_count.sum())), side="right") if app_cdf is not None
            else np.zeros(0, dtype=np.int64))
    users = np.clip(np.rint(rng.lognormal(0.0, 0.5, count) * (1 + expected ** 0.7 / 2)), 1, MAX_USERS
                    ).astype(np.int64)
    user_share = np.where((rng.random(count) < NO_USER_ACCOUNTS) & ~busy, 0.0, rng.uniform(0.5, 1.0, count))
    return _Accounts(
        cdf=_cdf(weights), taste=taste, key_start=np.concatenate(([0], np.cumsum(key_count)[:-1])),
        key_count=key_count, tail=tail, app_start=np.concatenate(([0], np.cumsum(app_count)[:-1])),
        app_count=app_count, apps=apps,
        no_app_share=rng.uniform(0.05, 0.3, count) if app_cdf is not None else np.ones(count),
        users=users, user_share=user_share, user_salt=np.uint64(rng.integers(0, 2**63)))


def _timestamps(rng: np.random.Generator, events: int, days: int, end: datetime) -> np.ndarray:
    """Millisecond epochs over the window, with weekday, hour-of-day and growth, sorted."""
    hours = days * 24
    end_hour = end.replace(minute=0, second=0, microsecond=0)
    start = end_hour - timedelta(hours=hours)
    naive = start.astimezone(UTC).replace(tzinfo=None)  # numpy datetimes are naive UTC
    starts = np.array([naive + timedelta(hours=h) for h in range(hours)], dtype="datetime64[ms]")
    hour_of_day = (starts.astype("datetime64[h]").astype(np.int64)) % 24
    weekday = (starts.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 0 = Monday
    daily = _daily(hour_of_day)
    weekly = np.where(weekday >= 5, 0.7, 1.0)
    growth = np.linspace(0.75, 1.25, hours)
    weights = daily * weekly * growth
    chosen = rng.choice(hours, events, p=weights / weights.sum())
    ms = starts.astype(np.int64)[chosen] + rng.integers(0, 3_600_000, events)
    now_ms = int(end.timestamp() * 1000)
    ms = np.minimum(ms, now_ms)
    ms.sort()
    return ms


def _daily(hour_of_day: np.ndarray) -> np.ndarray:
    """The hour-of-day shape of traffic: quiet at night, busiest in the afternoon (UTC)."""
    return 0.55 + 0.45 * np.sin((hour_of_day - 8) / 24 * 2 * np.pi) ** 2 * (hour_of_day >= 6)


def live_timestamps(rng: np.random.Generator, events: int, hours: float, end: datetime, diurnal: bool
                     ) -> Iterator[np.ndarray]:
    """Millisecond epochs of `events` Poisson arrivals over the `hours` before `end`, in blocks, in order."""
    end_ms = int(end.timestamp() * 1000)
    start_ms = end_ms - round(hours * 3_600_000)
    starts = np.arange(start_ms, end_ms, LIVE_SEGMENT_MS, dtype=np.int64)
    lengths = np.minimum(starts + LIVE_SEGMENT_MS, end_ms) - starts
    weights = lengths * (_daily((starts // 3_600_000) % 24) if diurnal else 1.0)
    # Given their number, a Poisson process's arrivals are independent and uniform over the window
    # (with density proportional to the rate): a multinomial count per second, uniform within it.
    counts = rng.multinomial(events, weights / weights.sum())
    ends = np.cumsum(counts)
    first = 0
    while first < len(counts):
        # The seconds whose arrivals fill about a block (at least one second, however busy).
        done = int(ends[first - 1]) if first else 0
        last = max(first + 1, int(np.searchsorted(ends, done + BLOCK, side="right")))
        block = counts[first:last]
        ms = np.repeat(starts[first:last], block) + (
            rng.random(int(block.sum())) * np.repeat(lengths[first:last], block)).astype(np.int64)
        ms.sort()  # the seconds are disjoint and in order: sorting the block orders the stream
        if len(ms):
            yield ms
        first = last


def _money(units: int) -> str:
    """Integer 1e-10 USD as an exact JSON number."""
    whole, frac = divmod(units, 10**10)
    return f"{whole}.{frac:010d}".rstrip("0").rstrip(".") if frac else str(whole)


@dataclass(frozen=True)
class _Labels:
    """Per account: the share of requests it tags, its features, whether it names sessions."""
    tag_share: np.ndarray
    feature_start: np.ndarray
    feature_count: np.ndarray
    features: np.ndarray  # flat: TAG_FEATURES indexes
    sessions: np.ndarray
    salt: np.uint64
    # per (environment, feature): ',"tags":["feature","env"]'
    tags_json: tuple[str, ...] = tuple(
        f',"tags":{orjson.dumps([feature, env]).decode()}' for env in TAG_ENVS for feature in TAG_FEATURES)


def _labels(rng: np.random.Generator, count: int) -> _Labels:
    feature_count = rng.integers(1, 5, count)
    return _Labels(
        tag_share=np.where(rng.random(count) < TAGGED_ACCOUNTS, rng.uniform(0.6, 1.0, count), 0.0),
        feature_start=np.concatenate(([0], np.cumsum(feature_count)[:-1])), feature_count=feature_count,
        features=rng.integers(0, len(TAG_FEATURES), int(feature_count.sum())),
        sessions=rng.random(count) < SESSION_ACCOUNTS, salt=np.uint64(rng.integers(0, 2**63)))


@dataclass
class _Seen:
    """What the file used, for the summary."""
    accounts: np.ndarray
    keys: np.ndarray
    apps: np.ndarray
    models: np.ndarray
    providers: np.ndarray
    users: list[np.ndarray]


def traffic_generate(*, events: int, out: Path, seed: int = 1, days: int = 30, end: datetime | None = None,
                     accounts: int = 12, apps: int = 250, hostile_app: bool = False, shuffle: bool = False,
                     live_hours: float | None = None, diurnal: bool = False) -> TrafficSummary:
    """Write `events` openrouter-format records to `out` (gzip when it ends in .gz).

    `live_hours` writes a live stream over that many hours instead of a backfill over `days`
    (`diurnal` shapes its rate by the hour of day); `shuffle` scatters a backfill's timestamps.
    """
    if live_hours is not None and (shuffle or round(live_hours * 3_600_000) < 1):
        raise ValueError("a live stream needs live_hours > 0 and is in time order (no shuffle)")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    end = end or datetime.now(tz=UTC)
    models = _catalog(rng)
    model_weights = _zipf(len(models), 0.95)
    endpoints = _endpoints(models)
    app_list = _apps(rng, apps, hostile_app)
    app_cdf = _cdf(_zipf(len(app_list), 0.9)) if app_list else None
    tastes = _tastes(rng, min(accounts, TASTES), model_weights)
    account_cols = _accounts(rng, accounts, events, len(tastes.models), app_cdf)
    pairs = _token_pairs()
    if live_hours is None:
        stamps = _timestamps(rng, events, days, end)
        if shuffle:  # a generator of its own: the other fields stay the bytes of the ordered month
            np.random.default_rng([seed, 2]).shuffle(stamps)
        blocks: Iterator[np.ndarray] = (stamps[i:i + BLOCK] for i in range(0, events, BLOCK))
    else:
        blocks = live_timestamps(np.random.default_rng([seed, 3]), events, live_hours, end, diurnal)
    speed = np.array([(rng.uniform(150, 1200), rng.uniform(25, 250)) for _ in endpoints.providers])
    label_rng = np.random.default_rng([seed, 1])
    labels = _labels(label_rng, accounts)
    seen = _Seen(accounts=np.zeros(accounts, bool), keys=np.zeros(len(account_cols.tail), bool),
                 apps=np.zeros(len(app_list), bool), models=np.zeros(len(models), bool),
                 providers=np.zeros(len(endpoints.providers), bool), users=[])

    out.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if str(out).endswith(".gz") else open
    with opener(out, "wt", encoding="utf-8", newline="\n") as handle:
        for ms in blocks:
            handle.write(_block(rng, ms, _cdf(model_weights), endpoints, tastes, account_cols, app_list, pairs,
                                speed, seen, label_rng, labels))
    users = np.unique(np.concatenate(seen.users)) if seen.users else []
    return TrafficSummary(records=events, accounts=accounts, apps=len(app_list), models=int(seen.models.sum()),
                          providers=int(seen.providers.sum()), seconds=time.perf_counter() - started,
                          accounts_seen=int(seen.accounts.sum()), keys_seen=int(seen.keys.sum()),
                          users_seen=len(users), apps_seen=int(seen.apps.sum()))


def _block(rng: np.random.Generator, ms: np.ndarray, model_cdf: np.ndarray, endpoints: _Endpoints,
           tastes: _Tastes, accounts: _Accounts, apps: list[str], pairs: np.ndarray, speed: np.ndarray,
           seen: _Seen, label_rng: np.random.Generator, labels: _Labels) -> str:
    """One block of records as JSON lines; every draw is a whole-block numpy operation."""
    n = len(ms)
    account = np.searchsorted(accounts.cdf, rng.random(n), side="right")
    # Accounts mostly stay with their favourites and sometimes try anything in the catalog.
    taste = accounts.taste[account]
    model = tastes.models[taste, _pick(tastes.cdf, taste, rng.random(n))]
    exploring = np.flatnonzero(rng.random(n) < EXPLORE_SHARE)
    model[exploring] = np.searchsorted(model_cdf, rng.random(len(exploring)), side="right")
    local = _pick(endpoints.cdf, model, rng.random(n))
    endpoint = endpoints.start[model] + local
    provider = endpoints.provider[endpoint]
    key = accounts.key_start[account] + (accounts.key_count[account] * rng.random(n) ** 2).astype(np.int64)
    app = (accounts.apps[accounts.app_start[account] + (accounts.app_count[account] * rng.random(n) ** 2
                                                         ).astype(np.int64)]
           if len(apps) else np.zeros(n, dtype=np.int64))
    with_app = (rng.random(n) >= accounts.no_app_share[account]) & (len(apps) > 0)
    with_user = rng.random(n) < accounts.user_share[account]
    user = (account.astype(np.uint64) << np.uint64(USER_BITS)) | (
        accounts.users[account] * rng.random(n) ** 3).astype(np.uint64)
    user_hex = _hex(_mix(user ^ accounts.user_salt), 12)

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
    ok = status == 200
    prompt[~ok] = 0
    completion[~ok] = 0
    cached = (prompt * cached_share).astype(np.int64)
    noise_latency = rng.lognormal(0.0, 0.45, n)
    noise_speed = rng.lognormal(0.0, 0.35, n)
    reasoning = np.where(endpoints.reasoning[model] & (completion > 0),
                         (completion * rng.uniform(0.3, 0.8, n)).astype(np.int64), 0)
    other = rng.integers(0, len(endpoints.providers), n)
    bad_status = np.array([429, 500, 502, 503])[rng.integers(0, 4, n)]
    ids = ALNUM[rng.integers(0, len(ALNUM), (n, 20))].tobytes().decode()

    # Cost in integers: 1e-15 USD, then half-even to 1e-10 USD (fits int64 with the catalog's prices;
    # Python integers otherwise).
    price = endpoints.prices[endpoint]
    exact = int(price.max(initial=0)) * int(pairs.max(initial=0)) * 2 < 2**62
    columns = (prompt - cached, cached, completion) if exact else (
        (prompt - cached).astype(object), cached.astype(object), completion.astype(object))
    femto = columns[0] * price[:, 0] + columns[1] * price[:, 2] + columns[2] * price[:, 1]
    units, rest = femto // UNIT_DIVISOR, femto % UNIT_DIVISOR
    half = UNIT_DIVISOR // 2
    units = units + ((rest > half) | ((rest == half) & (units % 2 == 1)))
    latency = (speed[provider, 0] * noise_latency).astype(np.int64)
    generation_time = np.where(completion > 0,
                               (completion / (speed[provider, 1] * noise_speed) * 1000).astype(np.int64) + 1,
                               (50 * noise_latency).astype(np.int64))
    # A fallback attempt failed at another provider first (another endpoint of the model when it has one).
    same = (other == provider) & (endpoints.count[model] > 1)
    other[same] = endpoints.provider[endpoints.start[model[same]] + (local[same] + 1) % endpoints.count[model[same]]]

    seen.accounts[account] = True
    seen.keys[key] = True
    seen.apps[app[with_app]] = True
    seen.models[model] = True
    seen.providers[provider] = True
    seen.providers[other[fallback]] = True
    seen.users.append(np.unique(user[with_user]))

    with_tags = label_rng.random(n) < labels.tag_share[account]
    env = np.minimum(np.searchsorted(TAG_ENV_CDF, label_rng.random(n), side="right"), len(TAG_ENVS) - 1)
    feature = labels.features[labels.feature_start[account] + (labels.feature_count[account]
                                                               * label_rng.random(n) ** 2).astype(np.int64)]
    tag_set = (env * len(TAG_FEATURES) + feature).tolist()
    with_session = (with_user & labels.sessions[account]).tolist()
    session_hex = _hex(_mix(user ^ ((ms // SESSION_MS).astype(np.uint64) << np.uint64(40)) ^ labels.salt), 10)
    tags_json = labels.tags_json

    head, tail, provider_json = endpoints.head, accounts.tail, endpoints.provider_json
    lines: list[str] = []
    write = lines.append
    seconds = (ms // 1000).tolist()
    stamps = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms").tolist()
    rows = zip(seconds, stamps, endpoint.tolist(), provider.tolist(), key.tolist(), app.tolist(), with_app.tolist(),
               with_user.tolist(), streamed.tolist(), cancelled.tolist(), latency.tolist(), generation_time.tolist(),
               prompt.tolist(), completion.tolist(), reasoning.tolist(), cached.tolist(), byok.tolist(),
               no_cost.tolist(), units.tolist(), status.tolist(), fallback.tolist(), other.tolist(),
               bad_status.tolist(), wrapped.tolist(), with_tags.tolist(), tag_set, with_session, strict=True)
    for i, (second, stamp, e, p, k, a, has_app, has_user, stream, cancel, lat, gen, prm, cmp, rsn, cch, own_key,
            free, cost, code, fell_back, alt, bad, wrap, has_tags, tag_at, has_session) in enumerate(rows):
        attempts = f'{{"provider_name":{provider_json[p]},"status":{code},"latency":{lat}}}'
        if fell_back:
            attempts = f'{{"provider_name":{provider_json[alt]},"status":{bad},"latency":{lat // 3}}},' + attempts
        success = code == 200
        app_part = apps[a] if has_app else ""
        cost_part = "" if free else f'"total_cost":{_money(cost)},'
        user_part = f',"user":"user_{user_hex[i * 12:i * 12 + 12]}"' if has_user else ""
        if has_session:
            user_part += f',"session_id":"sess_{session_hex[i * 10:i * 10 + 10]}"'
        if has_tags:
            user_part += tags_json[tag_at]
        record = (
            f'{{"id":"gen-{second}-{ids[i * 20:i * 20 + 20]}","created_at":"{stamp}Z",{head[e]}{app_part}'
            f'"streamed":{BOOL[stream]},"cancelled":{BOOL[cancel]},'
            f'"latency":{lat if success else "null"},"generation_time":{gen if success else "null"},'
            f'"tokens_prompt":{prm},"tokens_completion":{cmp},"native_tokens_reasoning":{rsn},'
            f'"native_tokens_cached":{cch},"is_byok":{BOOL[own_key]},"finish_reason":{FINISH[success]},'
            f'{cost_part}"status":{code},"provider_responses":[{attempts}],{tail[k]}{user_part}}}'
        )
        write(f'{{"data":{record}}}' if wrap else record)
    lines.append("")
    return "\n".join(lines)
