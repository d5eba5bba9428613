"""Sign-in that slows down guessing: after a few failures a username is locked for a while.

Failures are counted per username and per client address in the cache, so a guesser can neither
try many passwords on one user nor one password on many users from one address.
"""
from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache


def _keys(username: str, address: str) -> tuple[str, str]:
    return f"login:fail:user:{username.strip().lower()}", f"login:fail:addr:{address}"


def _count(key: str) -> int:
    return cache.get(key) or 0


def _fail(key: str) -> None:
    if not cache.add(key, 1, settings.LOGIN_LOCK_SECONDS):
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, settings.LOGIN_LOCK_SECONDS)


class ThrottledAuthenticationForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": "Too many failed sign-ins. Try again in %(minutes)s minutes.",
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = (self.request.META.get("REMOTE_ADDR") or "") if self.request else ""
        keys = _keys(username, address)
        if _count(keys[0]) >= settings.LOGIN_MAX_FAILURES or _count(keys[1]) >= settings.LOGIN_MAX_FAILURES_PER_ADDRESS:
            raise forms.ValidationError(self.error_messages["locked"], code="locked",
                                        params={"minutes": settings.LOGIN_LOCK_SECONDS // 60})
        try:
            return super().clean()
        except forms.ValidationError:
            for key in keys:
                _fail(key)
            raise


class ThrottledLoginView(LoginView):
    form_class = ThrottledAuthenticationForm
