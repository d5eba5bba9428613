"""Capability leaderboards on hand-built traffic: tool calls, images, long prompts, reasoning and cache shares."""
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from analytics.rankings.capabilities import capability_ranking
from analytics.rankings.leaderboards import window_parse
from marketplace.models import Model
from tests.analytics.conftest import record, run_batch, write_jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture
def used(tmp_path, clock):
    cache.clear()
    now = timezone.now()
    this_week, last_week = ((now - timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ") for d in (1, 9))
    n = iter(range(10_000))

    def req(model, when=this_week, **fields):
        return record(id=f"c{next(n)}", model=f"lab/{model}", created_at=when, **fields)

    rows = [
        # a: 3 tool calls of 4 requests; 2 images; prompts past 32k (two) and 128k (one);
        #    completion 4 x 100 of which 2 x 50 reasoning; prompt cached 1,000 of 180,200
        *(req("a", finish_reason="tool_calls", tokens_completion=100) for _ in range(3)),
        req("a", num_media_prompt=2, tokens_completion=100, native_tokens_reasoning=50),
        req("a", tokens_prompt=40_000, tokens_completion=0, native_tokens_cached=1_000, finish_reason="stop"),
        req("a", tokens_prompt=140_000, tokens_completion=0, finish_reason="stop"),
        req("a", tokens_completion=0, native_tokens_reasoning=0),
        req("a", tokens_completion=0, native_tokens_reasoning=0, tokens_prompt=32_768),  # not past 32k
        # b: 5 tool calls; completion 5 x 50, 200 of it reasoning; half its prompt cached
        *(req("b", finish_reason="tool_calls", native_tokens_cached=50,
              native_tokens_reasoning=40) for _ in range(5)),
        # c: 1 tool call and 5 images, 1,000 completion tokens without reasoning
        req("c", finish_reason="tool_calls", num_media_prompt=5, tokens_completion=1_000),
        # d: one request, all reasoning, but below the share floor
        req("d", tokens_prompt=1, tokens_completion=1, native_tokens_reasoning=1, native_tokens_cached=1),
        # the week before: a 1 tool call, b 10
        req("a", last_week, finish_reason="tool_calls"),
        *(req("b", last_week, finish_reason="tool_calls") for _ in range(10)),
    ]
    run_batch(write_jsonl(tmp_path / "cap.jsonl", rows))
    Model.objects.update(listed=True)
    return window_parse("week")


def _ranked(capability, window):
    return [(r.slug, r.value, r.base, r.previous, r.change) for r in capability_ranking(capability=capability,
                                                                                          window=window)]


def test_counts_rank_by_volume_with_change_against_the_week_before(used):
    assert _ranked("tool_calls", used) == [("lab/b", 5, 5, 10, -0.5), ("lab/a", 3, 8, 1, 2.0),
                                           ("lab/c", 1, 1, 0, None)]
    assert _ranked("images", used) == [("lab/c", 5, 1, 0, None), ("lab/a", 2, 8, 0, None)]
    assert _ranked("long_32k", used) == [("lab/a", 2, 8, 0, None)]
    assert _ranked("long_128k", used) == [("lab/a", 1, 8, 0, None)]
    [top] = capability_ranking(capability="tool_calls", window=used, limit=1)
    assert (top.share, top.rate) == (pytest.approx(5 / 9), 1.0)


def test_shares_rank_by_rate_among_models_above_the_floor(used):
    reasoning = capability_ranking(capability="reasoning", window=used)
    # b 200 / 250 = 0.8, a 50 / 400 = 0.125; d's 1 / 1 holds 1 of 1,651 completion tokens (< 0.1%): left out
    assert [(r.slug, r.value, r.base) for r in reasoning] == [("lab/b", 200, 250), ("lab/a", 50, 400)]
    assert [r.rate for r in reasoning] == [0.8, 0.125]
    cache_hits = capability_ranking(capability="cache", window=used)
    # b 250 / 500 = 0.5; a 1,000 / 213,268 prompt tokens; d's 1 / 1 prompt token is below the floor
    assert [(r.slug, r.value, r.base) for r in cache_hits] == [("lab/b", 250, 500), ("lab/a", 1_000, 213_268)]


def test_the_rankings_page_and_the_api_show_each_capability(client, used):
    page = client.get("/rankings/?window=week").content.decode()
    for label in ("Tool calls", "Images", "Long context &gt; 32k", "Long context &gt; 128k", "Reasoning",
                  "Cache hits"):
        assert f"<h3>{label}</h3>" in page, label
    body = client.get("/api/v1/rankings/capabilities", {"capability": "reasoning", "window": "week"}).json()
    assert (body["capability"], body["ranked_by"], body["window"]) == ("reasoning", "share", "week")
    assert [(r["slug"], r["value"], r["base"], r["rate"]) for r in body["results"]] == [
        ("lab/b", 200, 250, 0.8), ("lab/a", 50, 400, 0.125)]
    tools = client.get("/api/v1/rankings/capabilities", {"capability": "tool_calls", "limit": 1}).json()
    assert tools["results"] == [{"rank": 1, "slug": "lab/b", "name": tools["results"][0]["name"], "value": 5,
                                 "base": 5, "rate": 1.0, "previous": 10, "change": -0.5, "share": 0.555556}]
    refused = client.get("/api/v1/rankings/capabilities", {"capability": "vision"})
    assert (refused.status_code, list(refused.json())) == (400, ["capability"])
    assert client.get("/api/v1/rankings/capabilities").status_code == 400
