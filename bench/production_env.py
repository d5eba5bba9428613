"""The settings a benchmark's in-process Django runs under: production's (DEBUG off), on the bench's databases.

With DEBUG on, Django keeps every statement's SQL and renders debug pages, which a real server does
not; with it off, the test client's `testserver` host must be allowed, plain HTTP served (a TLS proxy
would stand in front) and a secret key given.
"""
import os


def production_env(database: str) -> dict[str, str]:
    """Environment variables for `os.environ.update` before `django.setup()`."""
    return {"DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
            # BENCH_REDIS_URL: another Redis database while a test suite uses 11
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11"), "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0", "DJANGO_ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "0",  # plain HTTP to the test client, as behind a TLS proxy
            "DJANGO_SECRET_KEY": "bench-" + "x" * 50}
