"""Hostile input end to end: one file mixing every kind of malformed record with good ones, ingested
through the real chunk path (small chunks, so rejects and good rows share and straddle chunks).

Each bad record is rejected with its reason and line and kept raw; every good record beside it is
kept; a 10 MB line does not hold more memory than a few times its size. The ingest API caps the
decompressed size of a gzip body, and a refused upload leaves no file behind.
"""
import gzip
import json
import tracemalloc

import pytest

from analytics.ingest.formats import parse_lines
from analytics.models import Generation, IngestBatch, Reject
from tests.analytics.conftest import record, run_batch

GOOD = record(created_at="2026-03-02T10:00:00Z")


def _line(**fields) -> bytes:
    return json.dumps({k: v for k, v in {**GOOD, **fields}.items() if v is not ...}).encode()


def _raw(text: str) -> bytes:
    return text.encode()


# (line bytes, reason); every one sits between two good records in the file.
HOSTILE = [
    (b'{"id": "truncated", "created_at": "2026-03-02T10:00:00Z", "model": ', "invalid_json"),
    (_line(id="wrong-type-1", tokens_prompt="100"), "type:tokens_prompt"),
    (_line(id="wrong-type-2", total_cost={"usd": 1}), "type:total_cost"),
    (_line(id="wrong-type-3", is_byok="maybe"), "type:is_byok"),
    (_line(id=12345), "type:id"),
    (b"[1, 2, 3]", "type:record"),
    (b'"just a string"', "type:record"),
    (_raw(json.dumps(GOOD).replace('"total_cost": 0.001', '"total_cost": NaN')), "invalid_json"),
    (_raw(json.dumps(GOOD).replace('"total_cost": 0.001', '"total_cost": Infinity')), "invalid_json"),
    (_raw(json.dumps(GOOD).replace('"total_cost": 0.001', '"total_cost": -Infinity')), "invalid_json"),
    (_raw(json.dumps(GOOD).replace('"total_cost": 0.001', '"total_cost": 1e400')), "invalid_json"),
    (_line(id="nan-text", total_cost="NaN"), "type:total_cost"),
    (_line(id="negative-tokens", tokens_completion=-5), "negative:tokens_completion"),
    (_line(id="negative-cost", total_cost=-0.01), "negative:total_cost"),
    (_line(id="enormous-int", tokens_prompt=10**30), "out_of_range:tokens_prompt"),
    (_line(id="enormous-float", tokens_prompt=1e20), "out_of_range:tokens_prompt"),
    (_line(id="enormous-cost", total_cost=1e12), "out_of_range:total_cost"),
    (_line(id="enormous-latency", latency=10**30), "out_of_range:latency"),
    (b'{"id": "' + b"x" * 10_000_000 + b'"}', "too_large"),  # a 10 MB line
    (b'{"id": "bad-utf8-\xff\xfe", "model": "x/y"}', "invalid_utf8"),
    (b'{"id": "raw-control-\x01", "created_at": "2026-03-02T10:00:00Z"}', "invalid_json"),
    (b'{"id": "raw-nul-\x00", "created_at": "2026-03-02T10:00:00Z"}', "invalid_json"),
    (b'{"id": "lone-surrogate-\\ud800", "model": "x/y"}', "invalid_json"),
    (b'{"id": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "invalid_json"),  # deeper than msgspec allows
    (_line(id="nul-model", model="lab/\u0000m"), "nul_character"),  # PostgreSQL text cannot hold a NUL
    (_line(id="nul-provider", provider_responses=[{"provider_name": "P\u0000", "status": 200}]), "nul_character"),
    (_line(id="future", created_at="2999-01-01T00:00:00Z"), "out_of_range:created_at"),
    (_line(id="past", created_at="1970-01-01T00:00:00Z"), "out_of_range:created_at"),
    (_line(id="year-one", created_at="0001-01-01T00:00:00Z"), "out_of_range:created_at"),
    (_line(id="epoch-number", created_at=1767322000), "bad_timestamp"),
    (_line(id="bad-offset", created_at="2026-03-02T10:00:00+99:00"), "bad_timestamp"),
    (_line(id="i" * 10_000), "too_long:id"),
    (_line(id="long-account", account="a" * 10_000), "too_long:account"),
    (_line(id="long-key", api_key="k" * 10_000), "too_long:api_key"),
    (_line(id="long-model", model="m" * 10_000), "too_long:model"),
    (_line(id="long-provider", provider_name="p" * 10_000), "too_long:provider_name"),
    (_line(id="long-origin", origin="https://" + "o" * 10_000), "too_long:origin"),
    (_line(id=...), "missing:id"),
    (_line(id="no-model", model=...), "missing:model"),
]


def _corpus(tmp_path):
    """The file: BOM first, CRLF on every third line, blank lines; good records around each hostile one."""
    lines, good_ids, expected = [], [], []
    for n, (hostile, reason) in enumerate(HOSTILE):
        good_id = f"good-{n}"
        # Good records may carry control characters (escaped, valid JSON) in their text fields.
        lines.append(_line(id=good_id, finish_reason="stop\u0007" if n % 2 else "stop", app_name="tab\there"))
        good_ids.append(good_id)
        lines.append(hostile)
        expected.append((len(lines), reason))
        if n % 5 == 0:
            lines.append(b"")  # blank: skipped, not a reject
    lines.append(_line(id="good-last"))
    good_ids.append("good-last")
    body = b"".join(line + (b"\r\n" if i % 3 == 0 else b"\n") for i, line in enumerate(lines))
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + body)
    return path, good_ids, expected


@pytest.mark.django_db
def test_a_hostile_corpus_rejects_each_bad_record_with_its_reason_and_line_and_keeps_the_good(tmp_path, settings):
    settings.INGEST_CHUNK_LINES = 7
    path, good_ids, expected = _corpus(tmp_path)

    tracemalloc.start()
    try:
        batch = run_batch(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert batch.status == IngestBatch.Status.DONE, batch.error
    assert (batch.accepted, batch.rejected, batch.duplicates) == (len(good_ids), len(HOSTILE), 0)
    assert batch.chunks_total > 10  # rejects and good rows straddle many chunks
    assert sorted(Generation.objects.values_list("id", flat=True)) == sorted(good_ids)
    assert list(Reject.objects.order_by("line").values_list("line", "reason")) == expected
    for reject in Reject.objects.all():
        assert 0 < len(reject.raw) <= 2048
    assert Reject.objects.get(reason="too_large").raw == '{"id": "' + "x" * 2040
    assert Reject.objects.get(reason="type:id").raw == _line(id=12345).decode()
    assert Generation.objects.get(id="good-1").finish_reason == "stop\u0007"
    # The 10 MB line is read once, not copied over and over: memory stays a few times its size.
    assert peak < 40 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


@pytest.fixture
def _uploads_removed():
    """Remove what a test's uploads leave in the ingest folder."""
    from analytics.ingest.files import ingest_dir as _ingest_dir

    before = set(_ingest_dir().iterdir())
    yield
    for path in set(_ingest_dir().iterdir()) - before:
        path.unlink(missing_ok=True)


@pytest.mark.django_db
@pytest.mark.usefixtures("_uploads_removed")
def test_a_gzip_bomb_through_the_api_gets_413_and_no_batch(client, settings):
    settings.INGEST_TOKEN = "bomb-token"
    settings.INGEST_MAX_DECOMPRESSED_BYTES = 1024 * 1024
    bomb = gzip.compress(b"0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB in about 64 KiB
    assert len(bomb) < 100_000

    response = client.post("/api/v1/ingest?wait=0", data=bomb, content_type="application/x-ndjson",
                           HTTP_AUTHORIZATION="Bearer bomb-token", HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 413
    assert response.json()["detail"] == "decompressed body exceeds the limit of 1048576 bytes"
    assert not IngestBatch.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("_uploads_removed")
def test_a_refused_upload_leaves_no_file_behind(client, settings):
    from analytics.ingest.files import ingest_dir as _ingest_dir

    settings.INGEST_TOKEN = "bomb-token"
    settings.INGEST_MAX_DECOMPRESSED_BYTES = 64 * 1024
    before = set(_ingest_dir().iterdir())
    bomb = gzip.compress(b"0" * (1024 * 1024))

    response = client.post("/api/v1/ingest?wait=0", data=bomb, content_type="application/x-ndjson",
                           HTTP_AUTHORIZATION="Bearer bomb-token", HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 413
    assert set(_ingest_dir().iterdir()) == before


def test_deeply_nested_json_is_rejected_not_raised():
    line = b'{"id": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    [rejected] = parse_lines("openrouter", [(1, line)])
    assert rejected.reason == "invalid_json"


@pytest.mark.django_db
def test_a_nul_escape_in_a_text_field_is_rejected_and_its_chunk_kept(tmp_path):
    path = tmp_path / "nul.jsonl"
    path.write_bytes(b"\n".join([_line(id="good-a"), _line(id="nul", model="lab/\u0000m"), _line(id="good-b")]))

    batch = run_batch(path)

    assert batch.status == IngestBatch.Status.DONE, batch.error
    assert sorted(Generation.objects.values_list("id", flat=True)) == ["good-a", "good-b"]
    assert (Reject.objects.get().line, Reject.objects.get().reason) == (2, "nul_character")


def test_the_future_follows_a_clock_set_back_and_forward_at_once():
    """`created_at` may be at most a day ahead of now; "now" is cached for a second, but a clock moved
    (a fake clock, an NTP step) is seen at once: a stale "now" from before a jump must not refuse today's
    records, nor accept ones beyond the new now's day of slack."""
    from datetime import UTC, datetime

    import time_machine

    def parsed(created_at: str):
        [one] = parse_lines("openrouter", [(1, json.dumps(record(created_at=created_at)).encode())])
        return getattr(one, "reason", None) or one.created_at

    with time_machine.travel(datetime(2026, 11, 1, 12, tzinfo=UTC), tick=False):
        assert parsed("2026-11-02T11:00:00Z") == datetime(2026, 11, 2, 11, tzinfo=UTC)
        with time_machine.travel(datetime(2026, 12, 3, 12, tzinfo=UTC), tick=False):
            assert parsed("2026-12-03T11:30:00Z") == datetime(2026, 12, 3, 11, 30, tzinfo=UTC)
        with time_machine.travel(datetime(2026, 10, 1, 12, tzinfo=UTC), tick=False):
            assert parsed("2026-11-01T11:00:00Z") == "out_of_range:created_at"
