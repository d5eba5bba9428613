"""generate_traffic: realistic, deterministic, priced exactly from the catalog."""
import gzip
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from marketplace.models import Author, Endpoint, Model, Provider

pytestmark = pytest.mark.django_db
END = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def small_catalog():
    """Three models, four endpoints, hand-chosen prices (per token)."""
    acme = Author.objects.create(slug="acme", name="Acme")
    fast, slow = Provider.objects.create(slug="fast", name="Fast"), Provider.objects.create(slug="slow", name="Slow")
    prices = {}
    for name, endpoints in (("one", [(fast, "0.000001", "0.000002", "0.0000001")]),
                            ("two", [(fast, "0.000003", "0.000015", None), (slow, "0.0000025", "0.00001", None)]),
                            ("three", [(slow, "0.00000015", "0.0000006", None)])):
        model = Model.objects.create(slug=f"acme/{name}", author=acme, route_name=name, name=name.title())
        for provider, prompt, completion, cache in endpoints:
            Endpoint.objects.create(model=model, provider=provider, prompt_price=Decimal(prompt),
                                    completion_price=Decimal(completion),
                                    cache_read_price=Decimal(cache) if cache else None)
            prices[(model.slug, provider.name)] = (Decimal(prompt), Decimal(completion),
                                                   Decimal(cache) if cache else Decimal(prompt))
    return prices


def _records(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        for line in handle:
            obj = orjson.loads(line)
            yield obj.get("data", obj)


def test_the_same_seed_writes_the_same_bytes(small_catalog, tmp_path):
    for name in ("a", "b"):
        call_command("generate_traffic", "--events", "3000", "--out", str(tmp_path / f"{name}.jsonl"), "--seed", "4",
                     "--end", END.isoformat())
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    call_command("generate_traffic", "--events", "3000", "--out", str(tmp_path / "c.jsonl"), "--seed", "5",
                 "--end", END.isoformat())
    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "c.jsonl").read_bytes()


def test_records_are_valid_priced_and_realistic(small_catalog, tmp_path):
    path = tmp_path / "t.jsonl.gz"
    call_command("generate_traffic", "--events", "20000", "--out", str(path), "--days", "7", "--end", END.isoformat(),
                 "--accounts", "5", "--apps", "20")
    records = list(_records(path))

    assert len(records) == 20000
    assert len({r["id"] for r in records}) == 20000
    for field in ("id", "created_at", "account", "model", "tokens_prompt", "tokens_completion"):
        assert all(field in r for r in records), field
    times = [datetime.fromisoformat(r["created_at"]) for r in records]
    assert END - timedelta(days=7) <= min(times) <= max(times) <= END
    assert {(r["model"], r["provider_name"]) for r in records} <= set(small_catalog)
    assert len({r["account"] for r in records}) == 5

    # Every cost is the endpoint's price, exactly, rounded half-even to 1e-10 USD.
    priced = [r for r in records if "total_cost" in r]
    for r in priced[:2000]:
        prompt, completion, cache = small_catalog[(r["model"], r["provider_name"])]
        cached = r["native_tokens_cached"]
        expected = ((r["tokens_prompt"] - cached) * prompt + cached * cache + r["tokens_completion"] * completion)
        assert Decimal(repr(r["total_cost"])) == expected.quantize(Decimal("1e-10"), rounding=ROUND_HALF_EVEN), r

    share = Counter()
    for r in records:
        share["no_cost"] += "total_cost" not in r
        share["byok"] += r["is_byok"]
        share["failed"] += r["status"] != 200
        share["fallback"] += len(r["provider_responses"]) > 1
        share["cached"] += r["native_tokens_cached"] > 0
        share["app"] += "origin" in r
    assert 0.02 < share["no_cost"] / 20000 < 0.04
    assert 0.01 < share["byok"] / 20000 < 0.03
    assert 0.01 < share["failed"] / 20000 < 0.03
    assert 0.03 < share["fallback"] / 20000 < 0.07
    assert 0.2 < share["cached"] / 20000 < 0.4
    assert share["app"] / 20000 > 0.6
    # Power law: the busiest account sends several times the traffic of the quietest.
    per_account = Counter(r["account"] for r in records).most_common()
    assert per_account[0][1] > 3 * per_account[-1][1]


def test_the_hostile_app_option_names_an_app_with_markup(small_catalog, tmp_path):
    path = tmp_path / "h.jsonl"
    call_command("generate_traffic", "--events", "5000", "--out", str(path), "--hostile-app", "--apps", "10")
    assert any(r.get("app_name") == "<img src=x onerror=alert(1)>" for r in _records(path))


def test_an_empty_catalog_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match=r"the catalog is empty: run `python manage.py catalog_sync` first"):
        call_command("generate_traffic", "--events", "10", "--out", str(tmp_path / "x.jsonl"))


def test_generated_traffic_ingests_without_rejects(small_catalog, tmp_path):
    from .conftest import run_batch

    path = tmp_path / "t.jsonl"
    call_command("generate_traffic", "--events", "3000", "--out", str(path), "--end", END.isoformat())
    batch = run_batch(path)
    assert (batch.accepted, batch.rejected, batch.duplicates) == (3000, 0, 0)
