"""System checks of Tokengrid's own: `manage.py check --deploy` refuses a server without a secret key."""
from django.conf import settings
from django.core import checks

SECRET_KEY_REQUIRED = "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off"


def secret_key_missing() -> bool:
    """True when production settings run on the throwaway key (config/settings/security.py)."""
    return not settings.DEBUG and getattr(settings, "SECRET_KEY_MISSING", False)


@checks.register(checks.Tags.security, deploy=True)
def secret_key_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if not secret_key_missing():
        return []
    return [checks.Error(SECRET_KEY_REQUIRED, hint="Generate one with `python -c 'import secrets; "
                         "print(secrets.token_urlsafe(50))'` and keep it secret.", id="tokengrid.E001")]
