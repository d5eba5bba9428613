"""Write the pinned genai-prices snapshot the tests load: tests/marketplace/data/genai_prices_snapshot.json.

    .venv/bin/python scripts/genai_prices_snapshot.py [--out FILE]

It serializes the data bundled with the installed genai-prices (the version pinned in
requirements.lock) into genai-prices' own published JSON format (the `data.json` its UpdatePrices
fetches), trimmed to what Tokengrid reads: every provider and model with its match rules, context
window and prices; without usage extractors, pricing URLs and price comments, and with a model's
description only on the `openrouter` provider (the catalog's model descriptions come from there).
`marketplace.genai_catalog.snapshot_load` reads it back. Run it again after upgrading genai-prices
on purpose, and commit the file with the tests it changes: no test reads the installed release.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import date, time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "marketplace" / "data" / "genai_prices_snapshot.json"
DROP = {"extractors", "pricing_urls", "price_comments"}


def raw(value, *, keep_description: bool = False):
    """A genai-prices object as the JSON genai-prices publishes (None fields left out)."""
    from genai_prices import types

    if isinstance(value, types.ModelPrice):
        return {k: raw(v) for k, v in vars(value).items() if v is not None and not k.startswith("_")}
    if isinstance(value, types.ClauseOr):
        return {"or": [raw(c) for c in value.or_]}
    if isinstance(value, types.ClauseAnd):
        return {"and": [raw(c) for c in value.and_]}
    if dataclasses.is_dataclass(value):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if v is None or f.name in DROP or (f.name == "description" and not keep_description):
                continue
            out[f.name] = ([raw(m, keep_description=keep_description) for m in v] if f.name == "models"
                           else raw(v))
        return out
    if isinstance(value, list):
        return [raw(v) for v in value]
    if isinstance(value, dict):
        return {k: raw(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | time):
        return value.isoformat()
    return value


def _lines(version: str, payload: list[dict]) -> str:
    """JSON with one model a line, so a diff of the file reads as the models that changed."""
    def dump(value) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    providers = []
    for provider in payload:
        head = dump({k: v for k, v in provider.items() if k != "models"})[:-1]
        models = ",\n".join(dump(m) for m in provider.get("models", []))
        providers.append(f'{head},"models":[\n{models}]}}')
    return f'{{"genai_prices_version":{dump(version)},"providers":[\n' + ",\n".join(providers) + "]}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import genai_prices
    from genai_prices import data_snapshot, types

    providers = data_snapshot.get_snapshot().providers
    payload = [raw(p, keep_description=p.id == "openrouter") for p in providers]
    # The same parser genai-prices' UpdatePrices uses for its published data.json must read it back whole.
    assert types._providers_from_raw(json.loads(json.dumps(payload))) is not None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(_lines(genai_prices.__version__, payload), encoding="utf-8")
    text = args.out.read_text(encoding="utf-8")
    models = sum(len(p["models"]) for p in payload)
    print(f"{args.out.relative_to(ROOT)}: genai-prices {genai_prices.__version__}, {len(payload)} providers, "
          f"{models} models, {len(text):,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
