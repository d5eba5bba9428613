"""catalog_sync as an operation: what it reports, and that it never moves a price already billed.

Each test writes a small genai-prices snapshot (genai-prices' JSON format, two models) whose every
figure is chosen here, so the expected report is computed by hand.
"""
import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from analytics.catalog_use import catalog_price_use
from analytics.models import Generation
from marketplace import services
from marketplace.catalog_report import PriceChange, PriceSet, Status
from marketplace.genai_catalog import snapshot_load
from marketplace.models import Endpoint, EndpointPrice, Model, PendingPriceChange
from marketplace.price_use import PriceInterval
from tests.analytics.conftest import record, run_batch, write_jsonl
from tests.conftest import NOW

pytestmark = pytest.mark.django_db

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # genai-prices' undated price starts here
JUNE = datetime(2026, 6, 1, tzinfo=UTC)
SONNET, ALPHA = "anthropic/claude-sonnet-4", "acme/alpha"

# Claude Sonnet 4 at Anthropic: $3 / $15 per 1M (cache read $0.30), then $2 / $10 from 2026-06-01.
# Acme Alpha: served by no listed provider, so first-party at "Acme" at OpenRouter's $1 / $2.
SNAPSHOT = {"genai_prices_version": "test", "providers": [
    {"id": "anthropic", "name": "Anthropic", "api_pattern": "https://api\\.anthropic\\.com", "models": [
        {"id": "claude-sonnet-4", "match": {"equals": "claude-sonnet-4"}, "name": "Claude Sonnet 4",
         "context_window": 200000, "prices": [
             {"prices": {"input_mtok": "3", "cache_read_mtok": "0.3", "output_mtok": "15"}},
             {"constraint": {"start_date": "2026-06-01"},
              "prices": {"input_mtok": "2", "cache_read_mtok": "0.2", "output_mtok": "10"}}]}]},
    {"id": "openrouter", "name": "OpenRouter", "api_pattern": "https://openrouter\\.ai", "models": [
        {"id": SONNET, "match": {"equals": SONNET}, "name": "Anthropic: Claude Sonnet 4",
         "prices": {"input_mtok": "3", "output_mtok": "15"}},
        {"id": ALPHA, "match": {"equals": ALPHA}, "name": "Acme: Alpha", "context_window": 32000,
         "prices": {"input_mtok": "1", "output_mtok": "2"}}]},
]}


def _sonnet(first: dict, *dated: dict) -> list[dict]:
    """Sonnet's price points: `first` from the start, any `dated` ones, then the June price."""
    return [{"prices": first}, *dated, {"constraint": {"start_date": "2026-06-01"},
                                        "prices": {"input_mtok": "2", "cache_read_mtok": "0.2", "output_mtok": "10"}}]


def _models(data: dict, provider: str) -> list[dict]:
    return next(p for p in data["providers"] if p["id"] == provider)["models"]


def _write(tmp_path: Path, data: dict, name: str = "snapshot.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _sync(tmp_path: Path, data: dict = SNAPSHOT, **options) -> services.SyncReport:
    return services.catalog_sync(snapshot=snapshot_load(path=_write(tmp_path, data)), **options)


def _command(tmp_path: Path, data: dict, *args: str) -> str:
    out = StringIO()
    call_command("catalog_sync", "--snapshot", str(_write(tmp_path, data, "cmd.json")), *args, stdout=out)
    return out.getvalue()


def _changed(**prices_by_model) -> dict:
    """SNAPSHOT with the openrouter or anthropic prices of the models given replaced."""
    data = copy.deepcopy(SNAPSHOT)
    for key, prices in prices_by_model.items():
        provider, model_id = {"alpha": ("openrouter", ALPHA), "sonnet": ("anthropic", "claude-sonnet-4")}[key]
        next(m for m in _models(data, provider) if m["id"] == model_id)["prices"] = prices
    return data


def _history(slug: str) -> list[tuple]:
    return list(EndpointPrice.objects.filter(endpoint__model__slug=slug).order_by("valid_from").values_list(
        "valid_from", "prompt_price", "completion_price", "cache_read_price"))


def _ingest(tmp_path: Path, name: str, rows: list[dict]) -> None:
    batch = run_batch(write_jsonl(tmp_path / f"{name}.jsonl", rows))
    assert batch.accepted == len(rows)


def _sonnet_request(id_: str, at: datetime, **fields) -> dict:
    """A request without total_cost: Tokengrid prices it from the catalog (cost_source CATALOG)."""
    return record(id=id_, model=SONNET, provider_name="Anthropic", created_at=at.isoformat().replace("+00:00", "Z"),
                  total_cost=..., **fields)


def test_a_sync_into_an_empty_catalog_reports_the_snapshots_counts_and_a_second_changes_nothing(tmp_path):
    first = _sync(tmp_path)

    assert first.counts() == {"authors": {"added": 2, "changed": 0, "unchanged": 0},
                              "models": {"added": 2, "changed": 0, "unchanged": 0},
                              "providers": {"added": 2, "changed": 0, "unchanged": 0},
                              "endpoints": {"added": 2, "changed": 0, "unchanged": 0},
                              "prices": {"added": 3, "changed": 0, "unchanged": 0}}
    assert first.new_models == [ALPHA, SONNET]
    assert first.new_endpoints == [f"{ALPHA} @ Acme", f"{SONNET} @ Anthropic"]
    assert first.price_changes == []
    assert _history(SONNET) == [(EPOCH, Decimal("0.000003"), Decimal("0.000015"), Decimal("0.0000003")),
                                (JUNE, Decimal("0.000002"), Decimal("0.00001"), Decimal("0.0000002"))]
    sonnet = Endpoint.objects.get(model__slug=SONNET)
    assert (sonnet.prompt_price, sonnet.completion_price) == (Decimal("0.000002"), Decimal("0.00001"))  # in force

    second = _sync(tmp_path)
    assert not second.changed_anything
    assert second.counts()["prices"] == {"added": 0, "changed": 0, "unchanged": 3}
    assert (second.new_models, second.new_endpoints, second.price_changes) == ([], [], [])


def test_a_changed_price_no_request_used_is_applied_and_reported_old_to_new(tmp_path):
    _sync(tmp_path)

    report = _sync(tmp_path, _changed(alpha={"input_mtok": "0.8", "cache_read_mtok": "0.1", "output_mtok": "2"}))

    assert report.price_changes == [PriceChange(
        ALPHA, "Acme", EPOCH, PriceSet(Decimal("0.000001"), Decimal("0.000002"), None, None),
        PriceSet(Decimal("0.0000008"), Decimal("0.000002"), Decimal("0.0000001"), None), Status.APPLIED)]
    assert report.counts()["prices"] == {"added": 0, "changed": 1, "unchanged": 2}
    assert _history(ALPHA) == [(EPOCH, Decimal("0.0000008"), Decimal("0.000002"), Decimal("0.0000001"))]
    alpha = Endpoint.objects.get(model__slug=ALPHA)
    assert (alpha.prompt_price, alpha.cache_read_price) == (Decimal("0.0000008"), Decimal("0.0000001"))
    assert not PendingPriceChange.objects.exists()


def test_a_price_billed_by_catalog_priced_requests_is_not_moved_but_recorded_as_pending(tmp_path):
    _sync(tmp_path)
    _ingest(tmp_path, "billed", [
        _sonnet_request("c1", datetime(2026, 2, 3, 10, 15, tzinfo=UTC)),
        _sonnet_request("c2", datetime(2026, 5, 31, 23, 59, tzinfo=UTC)),
        _sonnet_request("old", datetime(2026, 4, 1, tzinfo=UTC)),
        _sonnet_request("june", datetime(2026, 6, 2, tzinfo=UTC)),  # the June price's interval, not the first's
        record(id="gw", model=SONNET, provider_name="Anthropic", created_at="2026-03-01T00:00:00Z",
               total_cost=0.5),  # the gateway's cost: no catalog price was used
    ])
    assert dict(Generation.objects.values_list("id", "cost_source")) == {
        "c1": 2, "c2": 2, "old": 2, "june": 2, "gw": 1}

    # genai-prices now says the first Sonnet price was $2.5 prompt.
    changed = _changed(sonnet=_sonnet({"input_mtok": "2.5", "cache_read_mtok": "0.3", "output_mtok": "15"}))
    text = _command(tmp_path, changed)

    assert (f"{SONNET} @ Anthropic, valid from 2000-01-01: prompt 3 → 2.5: needs a reprice: 3 requests priced "
            "with the old price since 2026-02-03 10:15 UTC; recorded as pending, not applied") in text
    assert "price changes (1, USD per 1M tokens; 1 need a reprice):" in text
    assert _history(SONNET)[0] == (EPOCH, Decimal("0.000003"), Decimal("0.000015"), Decimal("0.0000003"))
    pending = PendingPriceChange.objects.get()
    assert (pending.endpoint.model.slug, pending.valid_from, pending.reprice_from, pending.reprice_until) == (
        SONNET, EPOCH, None, JUNE)
    assert (pending.old_prompt_price, pending.new_prompt_price, pending.new_completion_price) == (
        Decimal("0.000003"), Decimal("0.0000025"), Decimal("0.000015"))
    assert (pending.requests, pending.billed_since, pending.status) == (
        3, datetime(2026, 2, 3, 10, 15, tzinfo=UTC), PendingPriceChange.Status.PENDING)

    # Run again: the same change is still pending, once.
    again = _sync(tmp_path, changed)
    assert [(c.status, c.requests, c.already_pending) for c in again.price_changes] == [(Status.PENDING, 3, True)]
    assert not again.changed_anything
    assert PendingPriceChange.objects.count() == 1
    assert _history(SONNET)[0][1] == Decimal("0.000003")


def test_a_new_start_inside_a_billed_interval_counts_only_the_requests_after_it(tmp_path):
    _sync(tmp_path)
    _ingest(tmp_path, "split", [_sonnet_request("feb", datetime(2026, 2, 10, tzinfo=UTC)),
                                _sonnet_request("apr", datetime(2026, 4, 10, tzinfo=UTC))])
    changed = _changed(sonnet=_sonnet({"input_mtok": "3", "cache_read_mtok": "0.3", "output_mtok": "15"},
                                     {"constraint": {"start_date": "2026-03-01"},
                                      "prices": {"input_mtok": "2.8", "cache_read_mtok": "0.3", "output_mtok": "15"}}))

    report = _sync(tmp_path, changed)

    march = datetime(2026, 3, 1, tzinfo=UTC)
    assert [(c.valid_from, c.status, c.requests) for c in report.price_changes] == [(march, Status.PENDING, 1)]
    pending = PendingPriceChange.objects.get()
    assert (pending.reprice_from, pending.reprice_until, pending.billed_since) == (
        march, JUNE, datetime(2026, 4, 10, tzinfo=UTC))
    # The start is kept at the price billed there, so the repricing rewrites one row.
    assert [row[:2] for row in _history(SONNET)] == [(EPOCH, Decimal("0.000003")), (march, Decimal("0.000003")),
                                                     (JUNE, Decimal("0.000002"))]


def test_requests_priced_by_the_gateway_do_not_hold_back_a_price_change(tmp_path):
    _sync(tmp_path)
    _ingest(tmp_path, "gateway", [record(id=f"g{i}", model=ALPHA, provider_name="Acme", total_cost=0.01,
                                         created_at=f"2026-0{i}-01T00:00:00Z") for i in (1, 2, 3)])
    assert set(Generation.objects.values_list("cost_source", flat=True)) == {Generation.CostSource.GATEWAY}

    report = _sync(tmp_path, _changed(alpha={"input_mtok": "1.5", "output_mtok": "2"}))

    assert [(c.model, c.status, c.requests) for c in report.price_changes] == [(ALPHA, Status.APPLIED, 0)]
    assert _history(ALPHA)[0][1] == Decimal("0.0000015")


def test_a_future_price_is_added_as_a_new_row_and_the_price_in_force_stays(tmp_path):
    _sync(tmp_path)
    _ingest(tmp_path, "now", [record(id="a1", model=ALPHA, provider_name="Acme", total_cost=...,
                                     created_at=(NOW - timedelta(days=1)).isoformat().replace("+00:00", "Z"))])
    start = (NOW + timedelta(days=30)).date()
    future = _changed(alpha=[{"prices": {"input_mtok": "1", "output_mtok": "2"}},
                             {"constraint": {"start_date": start.isoformat()},
                              "prices": {"input_mtok": "0.5", "output_mtok": "1"}}])

    text = _command(tmp_path, future)

    valid_from = datetime(start.year, start.month, start.day, tzinfo=UTC)
    assert (f"{ALPHA} @ Acme, valid from {start:%Y-%m-%d} (future): prompt 1 → 0.5, completion 2 → 1: "
            "added as a new price") in text
    assert "prices: 1 added, 0 changed, 3 unchanged" in text
    assert [row[:3] for row in _history(ALPHA)] == [(EPOCH, Decimal("0.000001"), Decimal("0.000002")),
                                                    (valid_from, Decimal("0.0000005"), Decimal("0.000001"))]
    assert Endpoint.objects.get(model__slug=ALPHA).prompt_price == Decimal("0.000001")
    assert not PendingPriceChange.objects.exists()


def test_what_genai_prices_no_longer_lists_is_reported_and_kept(tmp_path):
    _sync(tmp_path)
    data = copy.deepcopy(SNAPSHOT)
    _models(data, "openrouter")[:] = [m for m in _models(data, "openrouter") if m["id"] != ALPHA]

    text = _command(tmp_path, data)

    assert "models no longer in genai-prices (1; kept, not deleted): acme/alpha" in text
    assert "endpoints no longer in genai-prices (1; kept, not deleted): acme/alpha @ Acme" in text
    assert Model.objects.filter(slug=ALPHA).exists()
    assert len(_history(ALPHA)) == 1


def test_dry_run_shows_the_report_and_writes_nothing(tmp_path):
    text = _command(tmp_path, SNAPSHOT, "--dry-run")
    assert "models: 2 added, 0 changed, 0 unchanged" in text
    assert "dry run: nothing was written" in text
    assert not Model.objects.exists()

    _sync(tmp_path)
    _ingest(tmp_path, "billed", [_sonnet_request("c1", datetime(2026, 2, 3, tzinfo=UTC))])
    before = (_history(SONNET), _history(ALPHA))
    changed = _changed(alpha={"input_mtok": "9", "output_mtok": "2"},
                       sonnet=_sonnet({"input_mtok": "4", "cache_read_mtok": "0.3", "output_mtok": "15"}))
    text = _command(tmp_path, changed, "--dry-run")

    assert f"{ALPHA} @ Acme, valid from 2000-01-01: prompt 1 → 9: would be applied" in text
    assert (f"{SONNET} @ Anthropic, valid from 2000-01-01: prompt 3 → 4: needs a reprice: 1 request priced with "
            "the old price since 2026-02-03 00:00 UTC; would be recorded as pending") in text
    assert (_history(SONNET), _history(ALPHA)) == before
    assert not PendingPriceChange.objects.exists()


def test_json_output_parses_and_carries_exact_prices_per_million(tmp_path):
    _sync(tmp_path)
    _ingest(tmp_path, "billed", [_sonnet_request("c1", datetime(2026, 2, 3, tzinfo=UTC)),
                                 _sonnet_request("c2", datetime(2026, 2, 4, tzinfo=UTC))])
    changed = _changed(sonnet=_sonnet({"input_mtok": "3", "cache_read_mtok": "0.25", "output_mtok": "15.125"}))

    report = json.loads(_command(tmp_path, changed, "--json"))

    assert report["counts"]["prices"] == {"added": 0, "changed": 0, "unchanged": 3}
    assert report["pending_price_changes"] == 1
    [change] = report["price_changes"]
    assert change["old_per_million_usd"] == {"prompt": "3", "completion": "15", "cache_read": "0.3",
                                             "reasoning": None}
    assert change["new_per_million_usd"] == {"prompt": "3", "completion": "15.125", "cache_read": "0.25",
                                             "reasoning": None}
    assert (change["model"], change["status"], change["requests_priced_with_old_price"], change["valid_from"]) == (
        SONNET, "pending", 2, "2000-01-01T00:00:00+00:00")
    assert change["billed_since"] == "2026-02-03T00:00:00+00:00"


def test_billed_requests_are_counted_for_every_interval_in_one_query(tmp_path, django_assert_num_queries):
    _sync(tmp_path)
    alpha, sonnet = (Endpoint.objects.get(model__slug=s) for s in (ALPHA, SONNET))
    _ingest(tmp_path, "mixed", [
        _sonnet_request("s1", datetime(2026, 1, 5, tzinfo=UTC)), _sonnet_request("s2", datetime(2026, 7, 5, tzinfo=UTC)),
        _sonnet_request("s3", datetime(2026, 7, 6, tzinfo=UTC)),
        record(id="a1", model=ALPHA, provider_name="Acme", total_cost=..., created_at="2026-03-03T00:00:00Z")])
    intervals = [PriceInterval(sonnet.model_id, sonnet.provider_id, None, JUNE),
                 PriceInterval(sonnet.model_id, sonnet.provider_id, JUNE, None),
                 PriceInterval(alpha.model_id, alpha.provider_id, datetime(2026, 4, 1, tzinfo=UTC), None)]

    with django_assert_num_queries(1):
        use = catalog_price_use(intervals)

    assert {i: (u.requests, u.first, u.last) for i, u in use.items()} == {
        0: (1, datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC)),
        1: (2, datetime(2026, 7, 5, tzinfo=UTC), datetime(2026, 7, 6, tzinfo=UTC))}


def test_the_suite_reads_the_pinned_snapshot_not_the_installed_release():
    from genai_prices import data_snapshot

    from tests.conftest import PINNED_SNAPSHOT

    pinned = json.loads(PINNED_SNAPSHOT.read_text())
    assert pinned["genai_prices_version"] == "0.2.3"
    in_use = data_snapshot.get_snapshot()
    assert in_use is data_snapshot._custom_snapshot  # set by the session fixture in tests/conftest.py
    assert [p.id for p in in_use.providers] == [p["id"] for p in pinned["providers"]]


def test_a_dismissed_change_is_not_raised_again(tmp_path):
    _sync(tmp_path)
    _ingest(tmp_path, "billed", [_sonnet_request("c1", datetime(2026, 2, 3, tzinfo=UTC))])
    changed = _changed(sonnet=_sonnet({"input_mtok": "4", "cache_read_mtok": "0.3", "output_mtok": "15"}))
    _sync(tmp_path, changed)
    PendingPriceChange.objects.update(status=PendingPriceChange.Status.DISMISSED)

    report = _sync(tmp_path, changed)

    assert report.price_changes == []
    assert PendingPriceChange.objects.get().status == PendingPriceChange.Status.DISMISSED
    assert _history(SONNET)[0][1] == Decimal("0.000003")


def test_without_a_counter_of_billed_requests_a_change_is_refused_not_guessed(tmp_path, monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from marketplace import price_use

    _sync(tmp_path)
    monkeypatch.setattr(price_use, "_counter", None)
    with pytest.raises(ImproperlyConfigured, match="no counter of billed generations"):
        _sync(tmp_path, _changed(alpha={"input_mtok": "9", "output_mtok": "2"}))
    assert _history(ALPHA)[0][1] == Decimal("0.000001")
