"""bench/freshness.py's pure helpers: reading the pages' figures, cutting the stream, the percentiles.

The page readers run on pages the real views render from fixture traffic with hand-computed totals,
so a template change that moves a figure fails here, not silently in the benchmark (a sample that
never "shows" would read as staleness).
"""
import importlib.util
import sys
from pathlib import Path

import orjson
import pytest

from billing.models import Account, Membership
from tests.analytics.conftest import account_traffic
from tests.analytics.rankings.conftest import leaderboard_traffic
from tests.billing.factories import member_of

_PATH = Path(__file__).resolve().parents[2] / "bench" / "freshness.py"
_spec = importlib.util.spec_from_file_location("bench_freshness", _PATH)
freshness = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = freshness  # its dataclasses look their module up while it loads
_spec.loader.exec_module(freshness)

START_MS = 1_796_000_000_000  # 2026-11-29T23:33:20Z


def _line(ms_after: int, generation_id: str, account: str, model: str, prompt: int, completion: int,
          status: int = 200, wrapped: bool = False) -> bytes:
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp((START_MS + ms_after) / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    record = {"id": generation_id, "created_at": stamp, "account": account, "model": model,
              "tokens_prompt": prompt, "tokens_completion": completion, "status": status}
    return orjson.dumps({"data": record} if wrapped else record) + b"\n"


def test_exact_int_reads_plain_grouped_and_compact_counts():
    assert freshness.exact_int("987") == 987
    assert freshness.exact_int(" 12,345 ") == 12345
    assert freshness.exact_int('<span class="exact" title="1,234,567">1.2M</span>') == 1234567
    assert freshness.exact_int('<a href="/account/generations/?start=2026-11-01">42</a>') == 42
    assert freshness.exact_int("—") is None
    assert freshness.exact_int("") is None


def test_percentile_is_nearest_rank_and_a_miss_ranks_above_everything():
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert freshness.percentile(values, 50) == 3.0
    assert freshness.percentile(values, 99) == 5.0
    assert freshness.percentile(values, 20) == 1.0
    assert freshness.percentile([*values, None], 50) == 3.0  # rank 3 of 6
    assert freshness.percentile([*values, None], 99) is None  # rank 6 of 6: the miss
    assert freshness.percentile([], 50) is None
    assert freshness.percentile([float(v) for v in range(1, 101)], 99) == 99.0


def test_plan_cuts_bodies_by_interval_and_samples_with_running_thresholds():
    lines = [
        _line(100, "g1", "acct_a", "lab/alpha", 10, 5),
        _line(900, "g2", "acct_b", "lab/alpha", 20, 0, wrapped=True),
        _line(1500, "g3", "acct_a", "lab/alpha", 7, 3),
        b"\n",
        # nothing in the third second: an empty body, handed over on time all the same
        _line(3200, "g4", "acct_a", "lab/alpha", 0, 0, status=429),  # failed, no tokens: never a sample
        _line(3300, "g5", "acct_b", "lab/alpha", 1, 1),
    ]
    plan = freshness.plan_stream(lambda: lines, start_ms=START_MS, interval_ms=1000, seed=3)
    sizes = [len(line) for line in lines]
    assert plan.bodies == [(0, sizes[0] + sizes[1], 2), (sizes[0] + sizes[1], sum(sizes[:4]), 1),
                           (sum(sizes[:4]), sum(sizes[:4]), 0), (sum(sizes[:4]), sum(sizes), 2)]
    assert [s.index for s in plan.samples] == [0, 1, 3]
    first, second, fourth = plan.samples
    assert first.id in ("g1", "g2")
    # Thresholds are the running totals at the end of the sample's body (one chunk), whichever record it is.
    assert first.account_requests == 1
    assert first.model_tokens == 35
    assert (second.id, second.account, second.account_requests, second.model, second.model_tokens) == (
        "g3", "acct_a", 2, "lab/alpha", 45)
    assert (fourth.id, fourth.account_requests, fourth.model_tokens) == ("g5", 2, 47)
    assert plan.account_totals == {"acct_a": 3, "acct_b": 2}
    assert plan.model_totals == {"lab/alpha": 47}


def test_plan_samples_only_among_the_busiest_models_so_far(monkeypatch):
    monkeypatch.setattr(freshness, "RANKED_MODELS", 1)
    lines = [_line(10, "a1", "acct_a", "lab/alpha", 100, 0), _line(20, "b1", "acct_a", "lab/beta", 1, 0),
             *[_line(1000 + i, f"x{i}", "acct_a", "lab/beta", 1, 0) for i in range(20)],
             _line(1500, "a2", "acct_a", "lab/alpha", 1, 0)]
    plan = freshness.plan_stream(lambda: lines, start_ms=START_MS, interval_ms=1000)
    assert plan.samples[1].id == "a2"  # beta is not among the 1 busiest after the first second


def test_plan_samples_every_given_seconds_with_thresholds_at_the_end_of_their_chunk():
    # One body of 2 s cut into chunks of 2 lines; a sample per second: the first is in chunk 0 or 1.
    lines = [_line(100, "s1", "acct_a", "lab/alpha", 1, 0), _line(200, "s2", "acct_a", "lab/alpha", 2, 0),
             _line(300, "s3", "acct_a", "lab/alpha", 4, 0), _line(1100, "s4", "acct_b", "lab/alpha", 8, 0),
             _line(1200, "s5", "acct_a", "lab/alpha", 16, 0)]
    plan = freshness.plan_stream(lambda: lines, start_ms=START_MS, interval_ms=2000, sample_ms=1000, chunk_lines=2,
                                 seed=5)
    assert plan.bodies == [(0, sum(len(line) for line in lines), 5)]
    first, second = plan.samples
    assert (first.index, second.index) == (0, 0)
    expected = {"s1": (0, 2, 3), "s2": (0, 2, 3), "s3": (1, 3, 15), "s4": (1, 1, 15), "s5": (2, 4, 31)}
    for sample in (first, second):
        assert (sample.chunk, sample.account_requests, sample.model_tokens) == expected[sample.id]
    assert first.id in ("s1", "s2", "s3")
    assert second.id in ("s4", "s5")


def test_summary_counts_misses_and_prints_them_past_the_timeout():
    samples = [freshness.Sample(i, f"g{i}", "a", "m", 1, 1) for i in range(4)]
    for sample, seconds in zip(samples, (1.0, 2.0, 3.0, None), strict=True):
        sample.shown = {page: seconds for page in freshness.PAGES}
    samples[0].shown["log"] = None
    pages = freshness.summary(samples, timeout=180)
    assert pages["overview"] == {"samples": 4, "shown": 3, "missed": 1, "p50_s": 2.0, "p99_s": ">180", "max_s": ">180"}
    assert pages["log"]["missed"] == 2
    assert pages["log"]["p50_s"] == 3.0


def test_task_seconds_adds_up_a_workers_log():
    log = ("[2026-12-07 17:45:10,001: INFO/MainProcess] Task analytics.ingest.tasks.ingest_chunk[ab-1] succeeded"
           " in 0.5s: {'accepted': 3}\n"
           "[2026-12-07 17:45:11,001: INFO/MainProcess] Task analytics.ingest.tasks.ingest_chunk[ab-2] succeeded"
           " in 1.25s: {'accepted': 2}\n"
           "[2026-12-07 17:45:12,001: INFO/MainProcess] Task analytics.rankings.tasks.rollup_rankings_refresh[c-3]"
           " succeeded in 6.0s: None\n")
    assert freshness.task_seconds(log) == {"analytics.ingest.tasks.ingest_chunk": (2, 1.75),
                                           "analytics.rankings.tasks.rollup_rankings_refresh": (1, 6.0)}


@pytest.mark.django_db
def test_the_account_pages_read_as_the_benchmark_reads_them(client, tmp_path):
    traffic = account_traffic(tmp_path)
    client.force_login(member_of(traffic["a"], Membership.Role.VIEWER, "viewer"))
    # Account A: r1, r2, r3 and r5 in the last 30 days (r4 is 40 days old).
    assert freshness.overview_requests(client.get("/account/").content.decode()) == 4
    assert freshness.explorer_requests(client.get("/account/activity/").content.decode()) == 4
    assert freshness.log_shows(client.get("/account/generations/", {"id": "r2"}).content.decode(), "r2")
    # Account B's generation: the search box echoes its id, yet no row shows it.
    page = client.get("/account/generations/", {"id": "b1"}).content.decode()
    assert 'value="b1"' in page
    assert not freshness.log_shows(page, "b1")


@pytest.mark.django_db
def test_an_account_without_traffic_reads_zero(client, tmp_path):
    account_traffic(tmp_path)  # other accounts' traffic is not this one's
    empty = Account.objects.create(external_id="acct_empty")
    client.force_login(member_of(empty, Membership.Role.VIEWER, "nobody"))
    assert freshness.overview_requests(client.get("/account/").content.decode()) == 0
    assert freshness.explorer_requests(client.get("/account/activity/").content.decode()) == 0


@pytest.mark.django_db
def test_the_public_leaderboard_reads_as_the_benchmark_reads_it(client, tmp_path):
    leaderboard_traffic(tmp_path)
    # The week by tokens (the page's default): alpha 1,500 + 1,000, beta 300 + 600; hidden is unlisted.
    page = client.get("/rankings/").content.decode()
    assert freshness.ranking_tokens(page) == {"/models/lab/alpha/": 2500, "/models/lab/beta/": 900}
