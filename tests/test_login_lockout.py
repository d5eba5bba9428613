"""The sign-in throttle (core/auth.py): every way in, counted atomically, per username and address."""
import re
import threading
import time

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core import mail
from django.test import Client

from tests.billing.conftest import run_threads, text_of

LOCKED = "Too many failed sign-ins. Try again in 15 minutes."
LOGIN_URLS = ["/accounts/login/", "/admin/login/?next=/admin/"]
ON_REDIS = django_settings.CACHES["default"]["BACKEND"].endswith("RedisCache")


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("sam", "sam@example.com", "pw-sam-12345", is_staff=True,
                                                is_superuser=True)


def sign_in(client: Client, url: str, password: str, username: str = "sam", **headers):
    return client.post(url, {"username": username, "password": password}, **headers)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_the_right_password_after_the_limit_is_refused_on_every_login(client, staff, settings, url):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        assert sign_in(client, url, "wrong").status_code == 200
    response = sign_in(client, url, "pw-sam-12345")
    assert response.status_code == 200
    assert LOCKED in text_of(response)
    assert not signed_in(client)


@pytest.mark.parametrize(("fail_on", "then_on"), [LOGIN_URLS, LOGIN_URLS[::-1]])
def test_failures_on_one_login_lock_the_other(client, staff, settings, fail_on, then_on):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        sign_in(client, fail_on, "wrong")
    assert LOCKED in text_of(sign_in(client, then_on, "pw-sam-12345"))
    assert not signed_in(client)


def test_the_admin_login_signs_in_below_the_limit(client, staff, settings):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(2):
        sign_in(client, LOGIN_URLS[1], "wrong")
    assert sign_in(client, LOGIN_URLS[1], "pw-sam-12345").status_code == 302
    assert signed_in(client)


def test_the_lock_expires_after_login_lock_seconds(client, staff, settings, clock):
    settings.LOGIN_MAX_FAILURES = 3
    settings.LOGIN_COUNTER_STORE = "database"  # the frozen clock cannot move Redis's expiries
    for _ in range(3):
        sign_in(client, LOGIN_URLS[0], "wrong")
    clock.shift(settings.LOGIN_LOCK_SECONDS - 1)
    for _ in range(10):  # refused attempts during the lock do not make it longer
        assert LOCKED in text_of(sign_in(client, LOGIN_URLS[0], "pw-sam-12345"))
    clock.shift(1)
    assert sign_in(client, LOGIN_URLS[0], "pw-sam-12345").status_code == 302
    assert signed_in(client)


@pytest.mark.skipif(not ON_REDIS, reason="needs Redis as the cache (REDIS_URL)")
def test_the_lock_expires_on_redis(client, staff, settings):
    settings.LOGIN_MAX_FAILURES = 3
    settings.LOGIN_LOCK_SECONDS = 4  # 1 s lapsed between the third failure and the check on a loaded machine
    for _ in range(3):
        sign_in(client, LOGIN_URLS[0], "wrong")
    assert "Too many failed sign-ins" in text_of(sign_in(client, LOGIN_URLS[0], "pw-sam-12345"))
    time.sleep(4.1)
    assert sign_in(client, LOGIN_URLS[0], "pw-sam-12345").status_code == 302


def _guess_many_users(client: Client, count: int, **headers) -> None:
    for i in range(count):
        sign_in(client, LOGIN_URLS[0], "wrong", username=f"nobody{i}", **headers)


def test_x_forwarded_for_is_ignored_without_trusted_proxies(client, staff, settings):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    settings.TRUSTED_PROXY_COUNT = 0
    for i in range(3):  # a new forged address on every guess: still one client (REMOTE_ADDR)
        sign_in(client, LOGIN_URLS[0], "wrong", username=f"nobody{i}", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
    response = sign_in(client, LOGIN_URLS[0], "pw-sam-12345", HTTP_X_FORWARDED_FOR="10.0.9.9")
    assert LOCKED in text_of(response)


def test_x_forwarded_for_is_used_behind_one_trusted_proxy(client, staff, settings):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    settings.TRUSTED_PROXY_COUNT = 1
    # The proxy appends the address it saw; what the client wrote before it is not trusted.
    _guess_many_users(client, 3, HTTP_X_FORWARDED_FOR="10.0.9.9, 203.0.113.7")
    assert LOCKED in text_of(sign_in(client, LOGIN_URLS[0], "pw-sam-12345",
                                     HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.7"))
    response = sign_in(client, LOGIN_URLS[0], "pw-sam-12345", HTTP_X_FORWARDED_FOR="203.0.113.8")
    assert response.status_code == 302  # another client behind the same proxy is not locked


def test_client_address(rf, settings):
    from core.auth import client_address

    request = rf.get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.0.0.1, 10.0.0.2, 10.0.0.3")
    expected = {0: "192.0.2.1", 1: "10.0.0.3", 2: "10.0.0.2", 3: "10.0.0.1", 5: "10.0.0.1"}
    for trusted, address in expected.items():
        settings.TRUSTED_PROXY_COUNT = trusted
        assert client_address(request) == address
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_address(rf.get("/", REMOTE_ADDR="192.0.2.1")) == "192.0.2.1"


def test_password_reset_requests_are_throttled(client, staff, settings):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        client.post("/accounts/password_reset/", {"email": "sam@example.com"})
    response = client.post("/accounts/password_reset/", {"email": "SAM@example.com"})
    assert response.status_code == 200
    assert "Too many password reset requests. Try again in 15 minutes." in text_of(response)
    assert len(mail.outbox) == 3


def test_a_password_reset_from_the_email_ends_the_lock(client, staff, settings):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        sign_in(client, LOGIN_URLS[0], "wrong")
    client.post("/accounts/password_reset/", {"email": "sam@example.com"})
    link = re.search(r"http://testserver(/accounts/reset/\S+)", mail.outbox[0].body).group(1)
    form_url = client.get(link)["Location"]
    response = client.post(form_url, {"new_password1": "Another-pass-987", "new_password2": "Another-pass-987"})
    assert response.status_code == 302
    assert sign_in(client, LOGIN_URLS[0], "Another-pass-987").status_code == 302


def test_the_counters_are_in_the_database_unless_the_cache_is_redis(settings):
    from core.auth import counter_store

    settings.LOGIN_COUNTER_STORE = ""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                                   "LOCATION": "/tmp/unused"}}  # noqa: S108  (never written)
    assert counter_store() == "database"  # the file cache's incr is a read and a write
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:6379/0"}}
    assert counter_store() == "cache"


STORES = ["database", pytest.param("cache", marks=pytest.mark.skipif(not ON_REDIS, reason="needs Redis"))]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("store", STORES)
def test_simultaneous_guesses_check_at_most_the_limit(settings, monkeypatch, store):
    from core.auth import login_failures

    settings.LOGIN_MAX_FAILURES = 5
    settings.LOGIN_COUNTER_STORE = store
    get_user_model().objects.create_user("sam", "sam@example.com", "pw-sam-12345")
    checked: list[str] = []
    lock = threading.Lock()
    authenticate = ModelBackend.authenticate

    def slow_authenticate(self, request, username=None, password=None, **kwargs):
        with lock:
            checked.append(password)
        time.sleep(0.3)  # a password hash takes time: every guess arrives while the first are checked
        return authenticate(self, request, username=username, password=password, **kwargs)

    monkeypatch.setattr(ModelBackend, "authenticate", slow_authenticate)

    def work(i: int):
        client = Client()
        if i == 24:
            time.sleep(0.1)  # the right password arrives just after the 24 wrong ones
        response = sign_in(client, LOGIN_URLS[0], "pw-sam-12345" if i == 24 else f"wrong-{i}")
        return response.status_code, signed_in(client), LOCKED in text_of(response)

    results = run_threads(25, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(checked) == 5  # exactly the limit of passwords checked, however many arrived at once
    assert results[24] == (200, False, True)  # the right password, once over the limit, is refused
    assert sum(1 for r in results if r[2]) == 20
    assert login_failures(username="sam") == 25  # 24 failures and the refused right one, none lost
    assert login_failures(address="127.0.0.1") == 25
