"""Settings come from the environment; production refuses to start unsafely."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import database_url

ROOT = Path(__file__).resolve().parent.parent


def _load_settings(env: dict[str, str], code: str | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_URL",
                                                                        "CELERY_"))}
    clean.update(env)
    code = code or ("import django; django.setup(); from django.conf import settings as s; "
                    "print(s.DATABASES['default']['ENGINE'], s.CACHES['default']['BACKEND'], s.CELERY_BROKER_URL, s.DEBUG)")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean | {"DJANGO_SETTINGS_MODULE": "config.settings"},
                          capture_output=True, text=True, timeout=60)


def test_debug_is_off_unless_the_environment_turns_it_on():
    assert _load_settings({}).stdout.split()[-1] == "False"
    assert _load_settings({"DJANGO_DEBUG": "1"}).stdout.split()[-1] == "True"


def _bare(code: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run Python in the project root as a newcomer's shell would: no DJANGO_* variable at all."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL",
                                                                        "CELERY_"))}
    return subprocess.run([sys.executable, *code], cwd=ROOT, env=clean | (env or {}), capture_output=True,
                          text=True, timeout=120)


def test_without_a_secret_key_production_will_not_serve():
    served = _bare(["-c", "import config.wsgi"], {"DJANGO_ALLOWED_HOSTS": "tokengrid.example"})
    assert served.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off" in served.stderr
    checked = _bare(["manage.py", "check", "--deploy"])
    assert checked.returncode != 0
    assert "(tokengrid.E001) DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off" in checked.stderr


@pytest.fixture
def scratch_database(django_db_blocker):
    """An empty database beside the test database, dropped afterwards: its URL."""
    from django.db import connection

    name = f"{connection.settings_dict['NAME']}_scratch"[:63]
    with django_db_blocker.unblock():
        with connection._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield database_url(name)
        with connection._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_without_a_secret_key_the_command_line_tools_still_run(tmp_path, scratch_database):
    """The public contract's commands work from a bare shell: they sign nothing. (And a fresh
    database migrates from nothing to the last migration.)"""
    env = {"DATABASE_URL": scratch_database, "CELERY_FILESYSTEM_DIR": str(tmp_path / "broker")}
    migrated = _bare(["manage.py", "migrate", "--noinput", "-v", "0"], env)
    assert migrated.returncode == 0, migrated.stderr
    logs = tmp_path / "traffic.jsonl"
    logs.write_text("{}\n")
    queued = _bare(["manage.py", "ingest", str(logs)], env)
    assert queued.returncode == 0, queued.stderr
    assert "queued" in queued.stdout


def test_production_with_secret_key_starts_without_debug():
    result = _load_settings({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 50})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "False"
    served = _bare(["-c", "import config.wsgi"], {"DJANGO_SECRET_KEY": "x" * 50})
    assert served.returncode == 0, served.stderr


def test_embedded_defaults_need_no_server():
    result = _load_settings({})
    assert result.returncode == 0, result.stderr
    engine, cache, broker, debug = result.stdout.split()
    assert engine == "config.embedded_db"  # PostgreSQL, in var/postgres/, started by the first connection
    assert cache == "django.core.cache.backends.filebased.FileBasedCache"  # shared by web and workers
    assert broker == "filesystem://localhost/"


@pytest.mark.parametrize("url", ["sqlite:///var/tokengrid.sqlite3", "mysql://root@127.0.0.1/tokengrid"])
def test_a_database_other_than_postgresql_is_refused_with_the_reason(url):
    result = _load_settings({"DATABASE_URL": url})
    assert result.returncode != 0
    assert f"DATABASE_URL names a {url.split(':')[0]} database: Tokengrid runs on PostgreSQL only" in result.stderr


def test_real_services_come_from_urls():
    result = _load_settings({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
                             "REDIS_URL": "redis://127.0.0.1:6379/1",
                             "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"})
    assert result.returncode == 0, result.stderr
    engine, cache, broker, _ = result.stdout.split()
    assert engine == "django.db.backends.postgresql"
    assert cache == "core.redis_cache.RedisCache"  # Django's, one client per pool
    assert broker == "redis://127.0.0.1:6379/0"


@pytest.mark.django_db
def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_plotly_js_is_served_from_the_installed_package(client):
    import plotly

    response = client.get(f"/assets/plotly-{plotly.__version__}.min.js")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert len(body) > 1_000_000
    assert b"plotly" in body[:2000].lower()
    assert client.get("/assets/plotly-0.0.0.min.js").status_code == 404


def _production(code: list[str]) -> subprocess.CompletedProcess:
    """Run manage.py (or Python) with production settings: DEBUG off, a strong secret key, a real host."""
    import secrets

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
    env = clean | {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
                   "DJANGO_ALLOWED_HOSTS": "tokengrid.example", "DJANGO_SETTINGS_MODULE": "config.settings"}
    return subprocess.run([sys.executable, *code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_production_settings_pass_the_deploy_check_without_a_warning():
    result = _production(["manage.py", "check", "--deploy", "--fail-level", "WARNING"])
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_answers_with_the_security_headers():
    code = ("import django; django.setup(); from django.test import Client; "
            "from django.test.utils import setup_test_environment; setup_test_environment(); "
            "plain = Client().get('/healthz', HTTP_HOST='tokengrid.example'); "
            "r = Client().get('/healthz', secure=True, HTTP_HOST='tokengrid.example'); "
            "print(plain.status_code, plain.headers.get('Location')); "
            "[print(k, '=', r.headers.get(k)) for k in ('Strict-Transport-Security', 'X-Content-Type-Options', "
            "'X-Frame-Options', 'Referrer-Policy', 'Cross-Origin-Opener-Policy')]")
    result = _production(["-c", code])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "301 https://tokengrid.example/healthz"  # plain http goes to https
    assert lines[1:] == ["Strict-Transport-Security = max-age=31536000; includeSubDomains; preload",
                         "X-Content-Type-Options = nosniff", "X-Frame-Options = DENY",
                         "Referrer-Policy = same-origin", "Cross-Origin-Opener-Policy = same-origin"]


def _settings_print(env: dict[str, str], expression: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "INGEST_", "CELERY_"))}
    code = f"import django; django.setup(); from django.conf import settings as s; print({expression})"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=clean | env | {"DJANGO_SETTINGS_MODULE": "config.settings"})


def test_rabbitmq_gets_publisher_confirms_and_every_broker_late_acks_with_prefetch_one():
    expression = ("s.CELERY_BROKER_TRANSPORT_OPTIONS, s.CELERY_TASK_ACKS_LATE, s.CELERY_WORKER_PREFETCH_MULTIPLIER,"
                  " s.CELERY_TASK_REJECT_ON_WORKER_LOST")
    rabbit = _settings_print({"CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"}, expression)
    assert rabbit.stdout.strip() == "{'confirm_publish': True} True 1 True", rabbit.stderr


def test_ingest_files_go_to_postgres_unless_a_bucket_is_named():
    expression = "s.INGEST_STORE, s.STORAGES['ingest']['BACKEND'], s.STORAGES['ingest']['OPTIONS'].get('bucket_name')"
    assert _settings_print({}, expression).stdout.split() == [
        "postgres", "django.core.files.storage.FileSystemStorage", "None"]
    s3 = _settings_print({"INGEST_S3_BUCKET": "logs", "INGEST_S3_ENDPOINT_URL": "http://127.0.0.1:9000"}, expression)
    assert s3.stdout.split() == ["storage", "storages.backends.s3.S3Storage", "logs"], s3.stderr
    wrong = _settings_print({"INGEST_STORE": "disk"}, expression)
    assert "INGEST_STORE is 'disk': expected `postgres` or `storage`" in wrong.stderr
