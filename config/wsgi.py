import os

from django.core.wsgi import get_wsgi_application

from core.checks import SECRET_KEY_REQUIRED, secret_key_missing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
if secret_key_missing():
    # Sessions, CSRF and password-reset links would be signed with a key that changes on every start.
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(SECRET_KEY_REQUIRED)
