"""What every API view shares: the error bodies as the OpenAPI schema declares them, money as text,
clamped integers, and bearer tokens (their authentication and their place in the schema)."""
import hmac

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import APIException, AuthenticationFailed

from .money import units_text


class ErrorSerializer(serializers.Serializer):
    """`{"detail": "…"}`: an authentication failure, a missing object, a refused request."""

    detail = serializers.CharField()


# A refused parameter: {"<parameter>": "why"} or DRF's {"<parameter>": ["why", …]}.
FIELD_ERRORS = OpenApiTypes.OBJECT


class ParamRefused(APIException):
    """400 `{"detail": "why"}`: query parameters that parse one by one but not together (a range of dates
    out of bounds, a filter naming too many values), raised from an InputSerializer's `validate`."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"


def usd(units: int | None) -> str | None:
    """An amount of an API answer: exact USD text with ten decimals (`core.money.units_text`); None stays None."""
    return None if units is None else units_text(units)


class ClampedIntegerField(serializers.IntegerField):
    """An integer brought within its bounds; a value that is not an integer reads as the default."""

    def __init__(self, *, low: int, high: int, **kwargs):
        self.low, self.high = low, high
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> int:
        try:
            return min(max(int(data), self.low), self.high)
        except (TypeError, ValueError):
            return self.default


class StaticTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <the token in settings.<setting>>`, compared in constant time.

    `request.auth` is `label` for the right token; a wrong one is refused (401), and a bearer token
    starting with `pass_prefix` is left to the next authentication class (an account token).
    """

    setting = ""
    label = ""
    pass_prefix = b""

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if len(header) != 2 or header[0].lower() != b"bearer":
            return None
        if self.pass_prefix and header[1].startswith(self.pass_prefix):
            return None
        expected = getattr(settings, self.setting).encode()
        if not expected or not hmac.compare_digest(header[1], expected):
            raise AuthenticationFailed(f"invalid {self.label} token")
        return (None, self.label)

    def authenticate_header(self, request) -> str:
        return f'Bearer realm="{self.label}"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """A bearer token in the OpenAPI schema: a subclass names the authentication class (`target_class`),
    the scheme (`name`) and what the token is (`token`)."""

    token = ""

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": self.token}
