"""One sign-in throttle for every way in: the site's login, the admin's login, password reset requests.

Each attempt is counted first, atomically, per username and per client address, and refused when
the new count is over the limit (`LOGIN_MAX_FAILURES`, `LOGIN_MAX_FAILURES_PER_ADDRESS`): so at
most that many passwords are ever checked in a window, however many guesses arrive at once (the
old code read the count, checked the password, then incremented: 25 simultaneous guesses all read
0). A successful sign-in takes its own attempt back; failures stay counted until the window, which
starts at the first counted attempt and lasts `LOGIN_LOCK_SECONDS`, ends: a lock never outlives it,
however many refused attempts follow, and a password reset from the emailed link ends it at once.

The counters live in Redis when it is the cache (`cache.add` then `cache.incr`: INCR is atomic and
keeps the key's expiry), otherwise in the database (`LoginCounter`, one `INSERT ... ON CONFLICT DO
UPDATE SET count = count + 1 ... RETURNING count`, atomic): the embedded
file cache's `incr` is a read and a write, which lost 9 of 24 concurrent failures.

Why not django-axes: its backend checks whether a user is locked before the password is checked
and records the failure afterwards (the `user_login_failed` signal), the same read-then-increment
order that let the 25th simultaneous guess through here; and it needs a backend, a middleware and
its own tables to cover what is here a form mixin and one table. The admin gets the same form
(`admin.site.login_form`, set in config/urls.py).
"""
import contextlib
import hashlib
import time

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.contrib.auth.views import LoginView, PasswordResetConfirmView, PasswordResetView
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest

from core.models import LoginCounter


def client_address(request: HttpRequest | None) -> str:
    """The client's address: REMOTE_ADDR, or the X-Forwarded-For hop the outermost trusted proxy saw."""
    if request is None:
        return ""
    remote = request.META.get("REMOTE_ADDR") or ""
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted <= 0:
        return remote  # a client can write any X-Forwarded-For it likes
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if not hops:
        return remote
    return hops[-trusted] if len(hops) >= trusted else hops[0]


def _name(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:40]
    return f"login:{kind}:{digest}"


def counter_store() -> str:
    if settings.LOGIN_COUNTER_STORE:
        return settings.LOGIN_COUNTER_STORE
    return "cache" if settings.CACHES["default"]["BACKEND"].endswith("RedisCache") else "database"


_UPSERT = f"""
    INSERT INTO {LoginCounter._meta.db_table} AS c (name, count, expires) VALUES (%s, 1, %s)
    ON CONFLICT (name) DO UPDATE SET
        count = CASE WHEN c.expires <= %s THEN 1 ELSE c.count + 1 END,
        expires = CASE WHEN c.expires <= %s THEN excluded.expires ELSE c.expires END
    RETURNING count"""


def counter_hit(*, name: str) -> int:
    """Count one attempt under `name` (atomically) and return the new count in its window."""
    window = settings.LOGIN_LOCK_SECONDS
    if counter_store() == "cache":
        while True:
            cache.add(name, 0, window)  # the expiry is set once, by the first attempt of the window
            try:
                return cache.incr(name)
            except ValueError:  # expired between the two calls: start a new window
                continue
    now = time.time()
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT, [name, now + window, now, now])
        count = cursor.fetchone()[0]
    LoginCounter.objects.filter(expires__lte=now).delete()
    return count


def counter_undo(*, name: str) -> None:
    """Take back one attempt counted under `name` (a sign-in that succeeded)."""
    if counter_store() == "cache":
        with contextlib.suppress(ValueError):  # already expired
            cache.decr(name)
        return
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {LoginCounter._meta.db_table} SET count = count - 1"  # noqa: S608
                       " WHERE name = %s AND count > 0 AND expires > %s", [name, time.time()])


def counter_clear(*, name: str) -> None:
    """Forget the attempts counted under `name` (its owner proved who they are by email)."""
    if counter_store() == "cache":
        cache.delete(name)
    else:
        LoginCounter.objects.filter(name=name).delete()


def counter_value(*, name: str) -> int:
    """The attempts counted under `name` in its current window."""
    if counter_store() == "cache":
        return cache.get(name) or 0
    counter = LoginCounter.objects.filter(name=name, expires__gt=time.time()).first()
    return counter.count if counter else 0


def login_failures(*, username: str = "", address: str = "") -> int:
    """Failed (or refused) sign-ins counted for a username, or for a client address."""
    return counter_value(name=_name("user", username) if username else _name("addr", address))


class ThrottledAuthenticationMixin:
    """Count the attempt first, refuse it when over the limit, take it back when the password is right."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": "Too many failed sign-ins. Try again in %(minutes)s minutes.",
    }

    def clean(self):
        username, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if not username or not password:
            return super().clean()  # a field error: no password is checked
        names = (_name("user", username), _name("addr", client_address(self.request)))
        user_count, address_count = (counter_hit(name=name) for name in names)
        if user_count > settings.LOGIN_MAX_FAILURES or address_count > settings.LOGIN_MAX_FAILURES_PER_ADDRESS:
            raise forms.ValidationError(self.error_messages["locked"], code="locked",
                                        params={"minutes": settings.LOGIN_LOCK_SECONDS // 60})
        cleaned = super().clean()  # a wrong password (or an inactive or non-staff user) stays counted
        for name in names:
            counter_undo(name=name)
        return cleaned


class ThrottledAuthenticationForm(ThrottledAuthenticationMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledAuthenticationMixin, AdminAuthenticationForm):
    error_messages = {**AdminAuthenticationForm.error_messages,
                      "locked": ThrottledAuthenticationMixin.error_messages["locked"]}


class ThrottledLoginView(LoginView):
    form_class = ThrottledAuthenticationForm


class ThrottledPasswordResetForm(PasswordResetForm):
    """Reset mails are counted like sign-ins, per address given and per client: no mail bombing."""

    locked_message = "Too many password reset requests. Try again in %(minutes)s minutes."

    def __init__(self, *args, request: HttpRequest | None = None, **kwargs):
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        counts = (counter_hit(name=_name("reset", email)),
                  counter_hit(name=_name("addr", client_address(self.request))))
        if counts[0] > settings.LOGIN_MAX_FAILURES or counts[1] > settings.LOGIN_MAX_FAILURES_PER_ADDRESS:
            raise forms.ValidationError(self.locked_message, code="locked",
                                        params={"minutes": settings.LOGIN_LOCK_SECONDS // 60})
        return email


class ThrottledPasswordResetView(PasswordResetView):
    form_class = ThrottledPasswordResetForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}


class ThrottledPasswordResetConfirmView(PasswordResetConfirmView):
    """A new password set from the emailed link ends its user's lock: a stranger's guesses cannot keep
    the owner of the mailbox out for the rest of the window."""

    def form_valid(self, form):
        response = super().form_valid(form)
        counter_clear(name=_name("user", form.user.get_username()))
        return response
