"""Secret key, debug and hosts: production unless DJANGO_DEBUG=1, and no web server without a real secret."""
import secrets

from .env import env_bool, env_int, env_list, env_str

# Production is the default: `make demo`, `make serve` and the test suite set DJANGO_DEBUG=1 themselves.
DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
# With DEBUG off and no key, the web entry point (config/wsgi.py, so runserver too) and `check --deploy`
# refuse to start (core/checks.py). Command-line tools and workers sign nothing (no session, no reset
# link), so `manage.py ingest` from a bare shell still runs, on a throwaway key of its own.
SECRET_KEY_MISSING = not SECRET_KEY
if SECRET_KEY_MISSING:
    SECRET_KEY = "dev-only-insecure-key-never-used-in-production" if DEBUG else secrets.token_urlsafe(50)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Sign-in throttle (core/auth.py). The client address is REMOTE_ADDR unless this many reverse proxies
# in front of the app append to X-Forwarded-For: then it is the hop the outermost trusted one saw.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# Where the attempts are counted: "cache" (atomic on Redis), "database" (an atomic upsert, for the
# embedded file cache, whose increment is a read and a write), or empty: cache on Redis, else database.
LOGIN_COUNTER_STORE = env_str("LOGIN_COUNTER_STORE", "")
