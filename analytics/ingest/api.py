"""The ingest API: `POST /api/v1/ingest` (the gateway sends NDJSON, optionally gzip, with its bearer
token) and `GET /api/v1/ingest/<id>` (a batch's status and counts)."""
import math
import zlib

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.models import IngestBatch
from core.api import BearerTokenScheme, ErrorSerializer, StaticTokenAuthentication

from . import batches, formats, tasks
from .files import TooLarge, body_store

WAIT_INTERVAL_SECONDS = 0.1

class IngestTokenAuthentication(StaticTokenAuthentication):
    """`Authorization: Bearer $INGEST_TOKEN`, compared in constant time."""

    setting, label = "INGEST_TOKEN", "ingest"


class IngestTokenScheme(BearerTokenScheme):
    target_class = "analytics.ingest.api.IngestTokenAuthentication"
    name = "ingestToken"
    token = "the gateway's INGEST_TOKEN"


class HasIngestToken(BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.auth == "ingest"


class RawParser(BaseParser):
    """Leave the body unread: the view streams it to disk."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return None


class BatchOutputSerializer(serializers.ModelSerializer):
    batch_id = serializers.IntegerField(source="pk")

    class Meta:
        model = IngestBatch
        fields = ("batch_id", "status", "format", "lines", "accepted", "duplicates", "rejected", "error")


class _IngestTokenApi(APIView):
    authentication_classes = [IngestTokenAuthentication]
    permission_classes = [HasIngestToken]


class IngestApi(_IngestTokenApi):
    parser_classes = [RawParser]

    class InputSerializer(serializers.Serializer):
        format = serializers.ChoiceField(choices=["auto", *formats.FORMATS], default="auto")
        wait = serializers.FloatField(default=10, help_text="seconds to wait for the batch (0-60)")

        def validate_wait(self, value: float) -> float:
            if not math.isfinite(value):  # nan would never reach the deadline
                raise serializers.ValidationError("not finite")
            return min(max(value, 0), 60)

    OutputSerializer = BatchOutputSerializer
    ERRORS = {"format": lambda params: f"unknown format {params.get('format')!r}",
              "wait": lambda params: "wait must be a number of seconds"}

    @extend_schema(
        operation_id="ingest_create",
        summary="Ingest routed-traffic records",
        description=("The body is a log file in one of the formats of docs/formats.md (OpenRouter JSON Lines, "
                     "LiteLLM spend logs as CSV or JSON Lines, generic CSV; `Content-Encoding: gzip` allowed)."
                     " Answers the batch with its counts when it finishes "
                     "within `wait` seconds (200), else its id and status (202)."),
        request={"application/x-ndjson": OpenApiTypes.STR},
        parameters=[InputSerializer],
        responses={200: OutputSerializer, 202: OutputSerializer, 400: ErrorSerializer, 401: ErrorSerializer,
                   413: ErrorSerializer},
        examples=[OpenApiExample("done", response_only=True, status_codes=["200"], value={
            "batch_id": 42, "status": "done", "format": "openrouter", "lines": 3, "accepted": 2,
            "duplicates": 0, "rejected": 1, "error": ""})],
    )
    def post(self, request):
        params = self.InputSerializer(data=request.query_params)
        if not params.is_valid():
            field = next(f for f in ("format", "wait") if f in params.errors)
            return Response({"detail": self.ERRORS[field](request.query_params)}, status=status.HTTP_400_BAD_REQUEST)
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0  # as Django reads a malformed length; the stream is capped all the same
        gzipped = request.META.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip"
        try:
            size, path = body_store(stream=request.stream, declared=declared, gzipped=gzipped)
        except TooLarge as error:
            return Response({"detail": str(error)}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        except zlib.error as error:
            return Response({"detail": f"body is not valid gzip: {error}"}, status=status.HTTP_400_BAD_REQUEST)
        if size == 0:
            path.unlink(missing_ok=True)
            return Response({"detail": "empty body"}, status=status.HTTP_400_BAD_REQUEST)
        batch = tasks.batch_queue(path=path, source=IngestBatch.API_SOURCE, fmt=params.validated_data["format"])
        [batch] = batches.batch_wait(batch_ids=[batch.pk], timeout=params.validated_data["wait"],
                                     interval=WAIT_INTERVAL_SECONDS)
        code = status.HTTP_200_OK if batch.status in batches.FINISHED else status.HTTP_202_ACCEPTED
        return Response(self.OutputSerializer(batch).data, status=code)


class IngestBatchApi(_IngestTokenApi):
    OutputSerializer = BatchOutputSerializer

    @extend_schema(operation_id="ingest_retrieve", summary="A batch's status and counts",
                   responses={200: OutputSerializer, 401: ErrorSerializer, 404: ErrorSerializer})
    def get(self, request, batch_id: int):
        batch = IngestBatch.objects.filter(pk=batch_id).first()
        if batch is None:
            return Response({"detail": "no such batch"}, status=status.HTTP_404_NOT_FOUND)
        return Response(self.OutputSerializer(batch).data)
