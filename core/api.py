"""What every API view shares: the error bodies, as the OpenAPI schema declares them."""
from drf_spectacular.types import OpenApiTypes
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """`{"detail": "…"}`: an authentication failure, a missing object, a refused request."""

    detail = serializers.CharField()


# A refused parameter: {"<parameter>": "why"} or DRF's {"<parameter>": ["why", …]}.
FIELD_ERRORS = OpenApiTypes.OBJECT
