"""generate_traffic: realistic, deterministic, priced exactly from the catalog, at a router's cardinality."""
import gzip
import hashlib
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from analytics.demo.traffic import ACCOUNT_EXPONENT
from billing.models import Account
from tests.marketplace.factories import AuthorFactory, EndpointFactory, ModelFactory, ProviderFactory

pytestmark = pytest.mark.django_db
END = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def small_catalog():
    """Three models, four endpoints, hand-chosen prices (per token)."""
    return _small_catalog()


def _small_catalog():
    acme = AuthorFactory(slug="acme", name="Acme")
    fast, slow = ProviderFactory(slug="fast", name="Fast"), ProviderFactory(slug="slow", name="Slow")
    prices = {}
    for name, endpoints in (("one", [(fast, "0.000001", "0.000002", "0.0000001")]),
                            ("two", [(fast, "0.000003", "0.000015", None), (slow, "0.0000025", "0.00001", None)]),
                            ("three", [(slow, "0.00000015", "0.0000006", None)])):
        model = ModelFactory(author=acme, route_name=name, name=name.title())
        for provider, prompt, completion, cache in endpoints:
            EndpointFactory(model=model, provider=provider, prompt_price=Decimal(prompt),
                            completion_price=Decimal(completion), cache_read_price=Decimal(cache) if cache else None)
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
    from tests.analytics.conftest import run_batch

    path = tmp_path / "t.jsonl"
    call_command("generate_traffic", "--events", "3000", "--out", str(path), "--end", END.isoformat())
    batch = run_batch(path)
    assert (batch.accepted, batch.rejected, batch.duplicates) == (3000, 0, 0)


# ---------------------------------------------------------------- a router's cardinality

ROUTER_ACCOUNTS, ROUTER_EVENTS = 2000, 50_000


def _expected_distinct(accounts: int, events: int) -> tuple[float, float]:
    """Mean and standard deviation of the number of distinct accounts among `events` Zipf draws."""
    weights = 1.0 / np.arange(1, accounts + 1) ** ACCOUNT_EXPONENT
    seen = 1 - (1 - weights / weights.sum()) ** events
    return seen.sum(), np.sqrt((seen * (1 - seen)).sum())


@pytest.fixture(scope="module")
def router_traffic(django_db_setup, django_db_blocker, tmp_path_factory):
    """50k records over 2000 accounts and 500 apps on the small catalog (made once for the module)."""
    from django.db import transaction

    path = tmp_path_factory.mktemp("router") / "router.jsonl"
    with django_db_blocker.unblock(), transaction.atomic():
        catalog = {model for model, _ in _small_catalog()}
        call_command("generate_traffic", "--events", str(ROUTER_EVENTS), "--out", str(path), "--seed", "3",
                     "--end", END.isoformat(), "--accounts", str(ROUTER_ACCOUNTS), "--apps", "500")
        transaction.set_rollback(True)
    return path, catalog, list(_records(path))


def test_account_popularity_reaches_a_routers_spread():
    # The shape wanted: at 100k accounts, 60-75k of them appear in 1M records.
    mean, _ = _expected_distinct(100_000, 1_000_000)
    assert 60_000 < mean < 75_000


def test_accounts_are_zipf_popular(router_traffic):
    _, _, records = router_traffic
    per_account = Counter(r["account"] for r in records)
    mean, sd = _expected_distinct(ROUTER_ACCOUNTS, ROUTER_EVENTS)  # about 1950 ± 7: 2000 if uniform
    assert mean - 5 * sd < len(per_account) < mean + 5 * sd
    assert len(per_account) < ROUTER_ACCOUNTS - 20
    # The busiest sends its Zipf share (about 15 %), the median account a handful.
    weights = 1.0 / np.arange(1, ROUTER_ACCOUNTS + 1) ** ACCOUNT_EXPONENT
    top = weights[0] / weights.sum()
    counts = sorted(per_account.values(), reverse=True)
    assert 0.9 * top < counts[0] / ROUTER_EVENTS < 1.1 * top
    assert counts[len(counts) // 2] < 15


def test_every_account_has_one_to_four_keys_of_its_own(router_traffic):
    _, _, records = router_traffic
    keys, owners = defaultdict(set), defaultdict(set)
    for r in records:
        keys[r["account"]].add(r["api_key"])
        owners[r["api_key"]].add(r["account"])
    per_account = Counter(len(k) for k in keys.values())
    assert set(per_account) <= {1, 2, 3, 4}
    assert per_account[1] > len(keys) / 2  # most have one
    assert per_account[3] + per_account[4] > 20
    assert all(len(o) == 1 for o in owners.values())
    busiest = Counter(r["account"] for r in records).most_common(1)[0][0]
    assert len(keys[busiest]) >= 2


def test_end_users_many_for_busy_accounts_a_few_for_small_ones(router_traffic):
    _, _, records = router_traffic
    with_user = [r for r in records if "user" in r]
    share = len(with_user) / len(records)
    assert 0.5 < share < 0.9
    assert all(re.fullmatch(r"user_[0-9a-f]{12}", r["user"]) for r in with_user)
    users = defaultdict(set)
    for r in with_user:
        users[r["account"]].add(r["user"])
    per_account = Counter(r["account"] for r in records)
    busiest = per_account.most_common(1)[0][0]
    assert 100 < len(users[busiest]) <= 5000
    # An account of 10-50 requests has a few users: they repeat.
    small = sorted(len(users[a]) for a, n in per_account.items() if 10 <= n <= 50 and a in users)
    assert len(small) > 50
    assert small[len(small) // 2] <= 6
    assert max(len(u) for u in users.values()) == len(users[busiest])
    # A share of the accounts never names a user.
    assert 0.15 < 1 - len(users) / len(per_account) < 0.45


def test_apps_on_most_requests_but_not_all(router_traffic):
    _, catalog, records = router_traffic
    with_app = [r for r in records if "origin" in r]
    share = len(with_app) / len(records)
    assert 0.7 < share < 0.95
    assert all(r["app_name"] and r["app_categories"] for r in with_app)
    assert len({r["origin"] for r in with_app}) > 300  # of 500
    assert {r["model"] for r in records} == catalog


def test_router_traffic_ingests_without_rejects(router_traffic, small_catalog):
    from tests.analytics.conftest import run_batch

    path, _, _ = router_traffic
    batch = run_batch(path)
    assert (batch.accepted, batch.rejected, batch.duplicates) == (ROUTER_EVENTS, 0, 0)
    assert Account.objects.count() == len({r["account"] for r in router_traffic[2]})


def test_the_same_seed_writes_the_same_bytes_at_many_accounts(small_catalog, tmp_path):
    def generate(name: str, seed: str) -> bytes:
        call_command("generate_traffic", "--events", "20000", "--out", str(tmp_path / name), "--seed", seed,
                     "--end", END.isoformat(), "--accounts", "5000", "--apps", "2000")
        return (tmp_path / name).read_bytes()

    first = generate("a.jsonl", "9")
    assert generate("b.jsonl", "9") == first
    assert generate("c.jsonl", "10") != first


# ---------------------------------------------------------------- the month (unchanged) and a live stream

# sha256 of files written before the live stream existed (commit 8fecddf), on the small catalog: a
# file written without --live must stay byte for byte what the benchmarks and the demo measured.
MONTH_SHA256 = {
    ("--events", "3000", "--seed", "4"): "5d64f47aea355f4ad76762ede29caa6660cb76a9b697243480cb9c450747774b",
    ("--events", "20000", "--seed", "9", "--days", "7", "--accounts", "5000", "--apps", "300"):
        "db9d7cc384d7470a5bf3d0a8e8dba1c9a308b5bcf7f06d24b80f33cd9c1edbdb",
}


@pytest.mark.parametrize("options", list(MONTH_SHA256))
def test_without_live_the_file_is_byte_identical_to_before(small_catalog, tmp_path, options):
    path = tmp_path / "m.jsonl"
    call_command("generate_traffic", *options, "--out", str(path), "--end", END.isoformat())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == MONTH_SHA256[options]


def _stamps(path) -> list[datetime]:
    return [datetime.fromisoformat(r["created_at"]) for r in _records(path)]


def test_a_live_stream_is_in_time_order_at_its_rate_over_its_hours(small_catalog, tmp_path):
    path = tmp_path / "live.jsonl"
    call_command("generate_traffic", "--live", "--rate", "5", "--hours", "0.2", "--out", str(path),
                 "--end", END.isoformat(), "--accounts", "40", "--seed", "6")
    records = list(_records(path))
    times = [datetime.fromisoformat(r["created_at"]) for r in records]

    assert len(records) == 5 * 0.2 * 3600 == 3600
    assert all(later >= earlier for earlier, later in zip(times, times[1:], strict=False))
    # The window is the 12 minutes before --end; at 5 requests/s the first and last fall within
    # seconds of its edges.
    assert END - timedelta(hours=0.2) <= times[0] < END - timedelta(hours=0.2) + timedelta(seconds=10)
    assert END - timedelta(seconds=10) < times[-1] < END
    # Poisson arrivals: exponential gaps (mean 200 ms, standard deviation as large as the mean).
    gaps = np.diff([t.timestamp() for t in times])
    assert 0.19 < gaps.mean() < 0.21
    assert 0.9 < gaps.std() / gaps.mean() < 1.1
    # The same router-shaped content: 40 Zipf-popular accounts, the busiest with its share.
    per_account = Counter(r["account"] for r in records)
    mean, sd = _expected_distinct(40, 3600)
    assert mean - 5 * sd < len(per_account) <= 40
    weights = 1.0 / np.arange(1, 41) ** ACCOUNT_EXPONENT
    assert 0.85 < per_account.most_common(1)[0][1] / 3600 / (weights[0] / weights.sum()) < 1.15
    assert len({r["id"] for r in records}) == 3600


def test_a_live_streams_count_is_rate_times_hours_rounded(small_catalog, tmp_path):
    for rate, hours, expected in (("2.5", "0.01", 90), ("0.7", "0.001", 3)):  # 90 and 2.52
        path = tmp_path / f"live-{rate}.jsonl"
        call_command("generate_traffic", "--live", "--rate", rate, "--hours", hours, "--out", str(path),
                     "--end", END.isoformat())
        assert len(_stamps(path)) == expected


def test_a_diurnal_live_stream_is_quiet_at_night(small_catalog, tmp_path):
    path = tmp_path / "day.jsonl"
    call_command("generate_traffic", "--live", "--rate", "0.2", "--hours", "24", "--diurnal", "--out", str(path),
                 "--end", END.isoformat())
    per_hour = Counter(t.hour for t in _stamps(path))
    assert sum(per_hour.values()) == 17280
    # The hour-of-day shape: 0.55 of the peak from midnight to 6 (UTC), the peak at 14:00.
    night = sum(per_hour[h] for h in range(6)) / 6
    assert 0.5 < night / per_hour[14] < 0.62


def test_the_live_stream_is_drawn_a_block_at_a_time():
    from analytics.demo.traffic import BLOCK, live_timestamps

    blocks = list(live_timestamps(np.random.default_rng(1), 250_000, 1.0, END, diurnal=False))
    assert len(blocks) == 3
    assert all(len(b) <= BLOCK + 200 for b in blocks)  # a block ends at a second's end: ~70 arrivals
    stamps = np.concatenate(blocks)
    assert len(stamps) == 250_000
    assert (np.diff(stamps) >= 0).all()
    assert stamps[0] >= END.timestamp() * 1000 - 3_600_000
    assert stamps[-1] < END.timestamp() * 1000


def test_shuffle_scatters_the_months_timestamps_and_keeps_the_rest(small_catalog, tmp_path):
    ordered, shuffled = tmp_path / "o.jsonl", tmp_path / "s.jsonl"
    for path, extra in ((ordered, ()), (shuffled, ("--shuffle",))):
        call_command("generate_traffic", "--events", "3000", "--seed", "4", "--out", str(path),
                     "--end", END.isoformat(), *extra)
    before, after = list(_records(ordered)), list(_records(shuffled))
    assert sorted(r["created_at"] for r in after) == [r["created_at"] for r in before]
    descents = sum(b["created_at"] < a["created_at"] for a, b in zip(after, after[1:], strict=False))
    assert 0.45 < descents / 2999 < 0.55
    assert [(r["account"], r["model"], r["tokens_prompt"]) for r in after] == [
        (r["account"], r["model"], r["tokens_prompt"]) for r in before]


@pytest.mark.parametrize(("options", "message"), [
    (("--live", "--rate", "5", "--hours", "1", "--events", "10"),
     "--live writes --rate × --hours × 3600 records in time order: no --events or --shuffle"),
    (("--live", "--rate", "5", "--hours", "1", "--shuffle"),
     "--live writes --rate × --hours × 3600 records in time order: no --events or --shuffle"),
    (("--live", "--rate", "5"), "--live needs --rate > 0 (requests per second) and --hours > 0"),
    (("--live", "--rate", "0", "--hours", "1"), "--live needs --rate > 0 (requests per second) and --hours > 0"),
    ((), "--events is required (or --live with --rate and --hours)"),
    (("--events", "10", "--rate", "5"), "--rate, --hours and --diurnal go with --live"),
])
def test_live_options_are_checked(tmp_path, options, message):
    with pytest.raises(CommandError) as error:
        call_command("generate_traffic", *options, "--out", str(tmp_path / "x.jsonl"))
    assert str(error.value) == message


def test_a_live_stream_ingests_without_rejects(small_catalog, tmp_path):
    from tests.analytics.conftest import run_batch

    path = tmp_path / "live.jsonl"
    call_command("generate_traffic", "--live", "--rate", "10", "--hours", "0.1", "--out", str(path),
                 "--end", END.isoformat(), "--accounts", "300")
    batch = run_batch(path)
    assert (batch.accepted, batch.rejected, batch.duplicates) == (3600, 0, 0)
