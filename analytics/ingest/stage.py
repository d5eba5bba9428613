"""The stage rows of a chunk: what its records name registered, unpriced records priced, one `StageRow` a row.

The hot loop of ingestion: kept flat, see `stage_rows`.
"""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from analytics import cost_sources, histograms
from billing.accounts import accounts_register, api_keys_name, api_keys_register
from core.id_cache import IdCache, registry_check
from core.money import UNITS_PER_USD
from marketplace.services import apps_register, models_register, providers_register

from . import formats
from .loader import AttemptRow, StageRow
from .prices import catalog_names, price_book

# Plain ints for COPY's smallint column.
GATEWAY, CATALOG, INSURANCE, UNPRICED = (s.value for s in (
    cost_sources.GATEWAY, cost_sources.CATALOG, cost_sources.INSURANCE, cost_sources.UNPRICED))


# Ids of what earlier chunks of this process registered, by the key each register function takes
# (core.id_cache): a chunk sends only the names it is the first to see.
_ACCOUNTS = IdCache("accounts")
_KEYS = IdCache("api keys")  # by (account id, key id)
_KEY_NAMES = IdCache("api key names")  # the name last written or seen, by key id
_MODELS = IdCache("models")
_PROVIDERS = IdCache("providers")
_APPS = IdCache("apps")


def names_resolve(records: list[formats.Record]) -> set[str]:
    """Rename each record's model and provider (and its attempts' providers) to the catalog's; return the
    provider names the records now hold, attempts included (what `providers_register` needs).

    Resolved per distinct pair, a handful a chunk; records are rewritten only when a name changed
    (OpenRouter traffic already names catalog slugs and providers: two set comprehensions, no rewrite).
    """
    names = catalog_names()
    renamed = {pair: new for pair in {(r.model, r.provider_name) for r in records}
               if (new := names.resolve(*pair)) != pair}
    if renamed:
        get = renamed.get
        for r in records:
            new = get((r.model, r.provider_name))
            if new is not None:
                r.model, r.provider_name = new
    attempt_names = {a["provider_name"] for r in records if r.provider_responses for a in r.provider_responses}
    renamed_attempts = {name: new for name in attempt_names if (new := names.provider(name)) != name}
    if renamed_attempts:
        for r in records:
            for attempt in r.provider_responses or ():
                attempt["provider_name"] = renamed_attempts.get(attempt["provider_name"], attempt["provider_name"])
        attempt_names = {renamed_attempts.get(name, name) for name in attempt_names}
    return attempt_names | {r.provider_name for r in records}


def stage_rows(records: list[formats.Record], batch_id: int) -> tuple[list[StageRow], list[AttemptRow]]:
    """Register what the records name, price the unpriced ones, and build stage rows.

    The hot loop of ingestion: kept flat (locals, fast paths for the common single attempt). A row
    is built positionally, by `tuple.__new__` (as fast as the plain tuple it was; the NamedTuple's
    own constructor, by position or keyword, costs the loop 10-50% more): its values are in
    `StageRow`'s field order, which tests/analytics/ingest/test_stage_rows.py checks field by field.
    """
    provider_names = names_resolve(records)
    registry_check()  # the ids cached by earlier chunks are still right (core.id_cache)
    account_ids = _ACCOUNTS.ids({r.account for r in records}, lambda new: accounts_register(external_ids=new))
    key_ids = _KEYS.ids({(account_ids[r.account], r.api_key) for r in records if r.api_key},
                        lambda new: api_keys_register(keys=new))
    key_names = {key_ids[(account_ids[r.account], r.api_key)]: r.api_key_name for r in records if r.api_key_name}
    renamed = {key: name for key, name in key_names.items() if _KEY_NAMES.get(key) != name}
    if renamed:  # only names this process has not written or seen already
        api_keys_name(names=renamed)
        _KEY_NAMES.remember(renamed)
    model_ids = _MODELS.ids({r.model for r in records}, lambda new: models_register(slugs=new))
    provider_ids = _PROVIDERS.ids(provider_names, lambda new: providers_register(names=new))
    apps: dict[str, tuple[str, list[str]]] = {}
    for r in records:
        if r.origin and r.origin not in apps:
            apps[r.origin] = (r.app_name or "", list(r.app_categories))
    app_ids = _APPS.ids(apps, lambda new: apps_register(apps={origin: apps[origin] for origin in new})) if apps else {}
    prices = None

    stage, extra_attempts = [], []
    append, extra = stage.append, extra_attempts.append
    bucket_of = histograms.bucket_of
    new_row = tuple.__new__  # StageRow(...) is a Python call of 37 arguments: slower in this loop
    latency_buckets: dict[int, int] = {}  # latencies are whole ms and repeat: one log per value
    units_per_usd, one = Decimal(UNITS_PER_USD), Decimal(1)
    last_hour_key, hour, day = None, None, None
    for r in records:
        cost = r.total_cost
        status = r.status
        price_id = None
        if cost is not None:
            source = GATEWAY  # a gateway's own cost is taken as it is, whatever the request did
        elif not 200 <= status < 300 or not r.tokens_completion:
            cost, source = None, INSURANCE  # failed, or nothing generated: $0, as OpenRouter bills it
        else:
            prices = prices or price_book()
            # The cost and the price row that made it (provenance, for repricing), in one look-up.
            cost, price_id = prices.priced(model_slug=r.model, provider_name=r.provider_name, created_at=r.created_at,
                                           tokens_prompt=r.tokens_prompt, tokens_completion=r.tokens_completion,
                                           tokens_reasoning=r.tokens_reasoning, tokens_cached=r.tokens_cached)
            source = CATALOG if cost is not None else UNPRICED
        cost_units = int((cost * units_per_usd).quantize(one, rounding=ROUND_HALF_EVEN)) if cost else 0
        account_id = account_ids[r.account]
        provider = r.provider_name
        failed = 0 if 200 <= status < 300 else 1
        created = r.created_at
        hour_key = created.timestamp() // 3600
        if hour_key != last_hour_key:  # records mostly arrive in time order
            last_hour_key, hour = hour_key, created.replace(minute=0, second=0, microsecond=0)
            day = created.date()
        model_id = model_ids[r.model]
        attempts = r.provider_responses
        # An attempt answered 429 is rate-limited, not failed (uptime leaves rate limiting out).
        if not attempts:
            own, own_limited = 1, 1 if status == 429 else 0
            own_failed = failed - own_limited
        elif len(attempts) == 1 and attempts[0]["provider_name"] == provider:
            answer = attempts[0]["status"]
            own, own_limited = 1, 1 if answer == 429 else 0
            own_failed = 0 if 200 <= answer < 300 or own_limited else 1
        else:
            own = own_failed = own_limited = 0
            for attempt in attempts:
                answer = attempt["status"]
                limited = 1 if answer == 429 else 0
                attempt_failed = 0 if 200 <= answer < 300 or limited else 1
                if attempt["provider_name"] == provider:
                    own += 1
                    own_failed += attempt_failed
                    own_limited += limited
                else:
                    extra(AttemptRow(r.id, hour, day, model_id, provider_ids[attempt["provider_name"]],
                                     attempt_failed, limited))
        latency = r.latency
        generation_time = r.generation_time
        completion = r.tokens_completion
        latency_bucket = throughput_bucket = None
        if not failed:
            if latency is not None:
                latency_bucket = latency_buckets.get(latency)
                if latency_bucket is None:
                    latency_bucket = latency_buckets[latency] = bucket_of(latency)
            if generation_time and completion:
                throughput_bucket = bucket_of(completion * 1000 / generation_time)
        append(new_row(StageRow, (
            r.id, created, hour, day, account_id, key_ids[(account_id, r.api_key)] if r.api_key else 0,
            model_id, provider_ids[provider], app_ids[r.origin] if r.origin else 0, batch_id,
            r.tokens_prompt, completion, r.tokens_reasoning, r.tokens_cached,
            cost_units, r.is_byok, latency, generation_time, status,
            r.finish_reason or "", r.streamed, r.cancelled, r.num_media_prompt, r.num_media_completion,
            r.num_search_results, attempts, failed, own, own_failed, latency_bucket, throughput_bucket,
            r.end_user or "", r.session_id or "", r.tags, own_limited, source, price_id,
        )))
    return stage, extra_attempts
