"""What every API view shares: the error bodies, as the OpenAPI schema declares them."""
import hmac

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed


class ErrorSerializer(serializers.Serializer):
    """`{"detail": "…"}`: an authentication failure, a missing object, a refused request."""

    detail = serializers.CharField()


# A refused parameter: {"<parameter>": "why"} or DRF's {"<parameter>": ["why", …]}.
FIELD_ERRORS = OpenApiTypes.OBJECT


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
