"""The ways in: the ingest command, the ingest API and the operator pages."""
import gzip

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from analytics.models import IngestBatch
from tests.analytics.conftest import record, run_batch, write_jsonl

pytestmark = pytest.mark.django_db
TOKEN = "s3cret-ingest-token"
# The real OpenRouter record of docs/formats.md (wrapper and provider_responses shortened there).
OPENROUTER_EXAMPLE = (
    '{"data":{"id":"gen-1771967973-0hZ8J5kY7qLMOKbPx0u3","created_at":"2026-02-24T21:19:33.705Z",'
    '"model":"meta-llama/llama-4-scout-17b-16e-instruct","provider_name":"DeepInfra",'
    '"origin":"https://github.com/wvanderp/Trick-question-bench","app_id":2872617,"streamed":true,"cancelled":true,'
    '"latency":1016,"generation_time":2940,"tokens_prompt":65,"tokens_completion":116,"native_tokens_prompt":64,'
    '"native_tokens_completion":98,"native_tokens_reasoning":0,"native_tokens_cached":0,"is_byok":false,'
    '"finish_reason":null,"total_cost":0.00003452,"provider_responses":[{"provider_name":"DeepInfra","status":200,'
    '"latency":420}],"account":"acct_7f3a","api_key":"key_91c2"}}')


def test_the_command_exits_non_zero_for_an_unreadable_file(tmp_path):
    with pytest.raises(CommandError, match="1 unreadable file"):
        call_command("ingest", str(tmp_path / "nope.jsonl"))
    assert not IngestBatch.objects.exists()


def test_the_command_queues_each_file(tmp_path, capsys):
    path = write_jsonl(tmp_path / "a.jsonl", [record()])

    call_command("ingest", str(path))

    batch = IngestBatch.objects.get()
    assert f"a.jsonl: queued as batch {batch.pk}" in capsys.readouterr().out
    assert batch.status == IngestBatch.Status.QUEUED


@pytest.fixture
def ingest_token(settings):
    settings.INGEST_TOKEN = TOKEN
    return TOKEN


def _post(client, body: bytes, token: str | None = TOKEN, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post("/api/v1/ingest?wait=0", data=body, content_type="application/x-ndjson", **headers, **extra)


def test_the_api_needs_the_token(client, ingest_token):
    body = b'{"id": "x"}\n'
    assert _post(client, body, token=None).status_code == 401
    assert _post(client, body, token="wrong").status_code == 401
    assert not IngestBatch.objects.exists()


def test_the_api_refuses_a_body_over_the_limit_with_413(client, ingest_token, settings):
    settings.INGEST_MAX_BODY_BYTES = 100
    response = _post(client, b"x" * 101)
    assert response.status_code == 413
    assert response.json()["detail"] == "body of 101 bytes exceeds the limit of 100 bytes"


def test_the_api_caps_the_decompressed_size(client, ingest_token, settings):
    settings.INGEST_MAX_DECOMPRESSED_BYTES = 10_000
    bomb = gzip.compress(b"\n" * 1_000_000)
    response = _post(client, bomb, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert response.json()["detail"] == "decompressed body exceeds the limit of 10000 bytes"


def test_the_api_queues_a_batch_and_answers_its_id(client, ingest_token):
    body = b"".join(f'{{"id": "g{i}", "created_at": "2026-01-01T00:00:00Z", "account": "a", "model": "x/y", '
                    f'"tokens_prompt": 1, "tokens_completion": 2}}\n'.encode() for i in range(3))
    response = _post(client, gzip.compress(body), HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 202
    batch = IngestBatch.objects.get()
    assert response.json()["batch_id"] == batch.pk
    assert (batch.source, batch.status) == ("api", "queued")
    status = client.get(f"/api/v1/ingest/{batch.pk}", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert status.json()["status"] == "queued"


def test_ops_pages_are_for_staff_only(client, django_user_model):
    user = django_user_model.objects.create_user("member", password="pw-member-1")
    client.force_login(user)
    response = client.get("/ops/ingest/")
    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


def test_staff_see_batches_and_download_neutralized_rejects(client, admin_user, tmp_path):
    batch = run_batch(write_jsonl(tmp_path / "bad.jsonl", [record(), "=cmd|' /C calc'!A0", "@SUM(1+1)"]))
    client.force_login(admin_user)

    page = client.get("/ops/ingest/").content.decode()
    assert "bad.jsonl" in page
    assert ">2<" in page.replace("</a>", "<")

    response = client.get(f"/ops/ingest/{batch.pk}/rejects.csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "batch,line,reason,raw"
    assert lines[1] == f"{batch.pk},2,invalid_json,'=cmd|' /C calc'!A0"
    assert lines[2] == f"{batch.pk},3,invalid_json,'@SUM(1+1)"


def test_staff_can_upload_a_file(client, admin_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(admin_user)
    upload = SimpleUploadedFile("upload.jsonl", b'{"id": "u1"}\n')
    response = client.post("/ops/ingest/", {"file": upload, "format": "auto"})

    batch = IngestBatch.objects.get()
    assert response.status_code == 302
    assert response.url == f"/ops/ingest/{batch.pk}/"
    assert batch.source == "upload.jsonl"


def test_rankings_version_moves_at_most_once_a_minute(monkeypatch):
    from django.core.cache import cache

    from analytics.rankings.tasks import rollup_rankings_refresh

    cache.clear()
    later = []
    monkeypatch.setattr(rollup_rankings_refresh, "apply_async", lambda **kw: later.append(kw["countdown"]))
    rollup_rankings_refresh.run()
    rollup_rankings_refresh.run()
    rollup_rankings_refresh.run()
    assert cache.get("rankings:version") == 1
    assert later == [41]  # one catch-up run, so the last chunk is not left out
    cache.delete("rankings:bumped")  # 41 s later
    rollup_rankings_refresh.run()
    assert cache.get("rankings:version") == 2


def test_ingest_lag_runs_from_queued_to_the_rankings(client, tmp_path, monkeypatch, admin_user):
    from datetime import timedelta

    from django.core.cache import cache

    from analytics.models import IngestBatch
    from analytics.rankings.tasks import rollup_rankings_refresh
    from tests.analytics.conftest import record, run_batch, write_jsonl

    batch = run_batch(write_jsonl(tmp_path / "lag.jsonl", [record(id="lag-1")]))
    IngestBatch.objects.filter(pk=batch.pk).update(created_at=batch.created_at - timedelta(seconds=90))
    client.force_login(admin_user)
    assert "pending" in client.get("/ops/ingest/").content.decode()
    cache.clear()
    monkeypatch.setattr("analytics.rankings.tasks.rankings_prewarm", lambda: 0)
    rollup_rankings_refresh.run()
    batch.refresh_from_db()
    assert 90 <= batch.lag_seconds < 120
    page = client.get("/ops/ingest/").content.decode()
    assert f"<strong>{batch.lag_seconds:.1f} s</strong>" in page


def test_stalled_batches_are_queued_again_once_per_idle_period(tmp_path, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from analytics import ingest
    from analytics.ingest import tasks
    from analytics.models import IngestBatch, IngestChunk
    from tests.analytics.conftest import record, write_jsonl

    queued = []
    monkeypatch.setattr(tasks.ingest_chunk, "delay", lambda batch_id, index: queued.append((batch_id, index)))
    path = write_jsonl(tmp_path / "stall.jsonl", [record(id=f"s{i}") for i in range(5)])
    stalled = ingest.batch_queue(path=path, source="stall.jsonl", fmt="auto")
    ingest.batch_split(batch_id=stalled.pk)  # chunks queued; the broker then "loses" them
    fresh = ingest.batch_queue(path=path, source="fresh.jsonl", fmt="auto")
    long_ago = timezone.now() - timedelta(minutes=30)
    IngestBatch.objects.filter(pk=stalled.pk).update(created_at=long_ago, started_at=long_ago)
    queued.clear()

    assert ingest.batches_stalled_requeue(idle_seconds=600) == [stalled.pk]
    chunks = list(IngestChunk.objects.filter(batch_id=stalled.pk).values_list("index", flat=True))
    assert queued == [(stalled.pk, i) for i in chunks]
    assert fresh.pk not in [b for b, _ in queued]  # queued a moment ago: not stalled
    assert ingest.batches_stalled_requeue(idle_seconds=600) == []  # not twice in one idle period
