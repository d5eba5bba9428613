"""POST /api/v1/ingest: the gateway sends NDJSON (optionally gzip) with its bearer token."""
import hmac
import math
import time
import zlib

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.parsers import BaseParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from . import formats, ingest
from .models import IngestBatch

BLOCK = 1 << 20


class TooLarge(Exception):
    pass


class IngestTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer $INGEST_TOKEN`, compared in constant time."""

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer" or len(header) != 2:
            return None
        expected = settings.INGEST_TOKEN.encode()
        if not expected or not hmac.compare_digest(header[1], expected):
            raise AuthenticationFailed("invalid ingest token")
        return (None, "ingest")

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="ingest"'


class IngestTokenScheme(OpenApiAuthenticationExtension):
    target_class = "analytics.api.IngestTokenAuthentication"
    name = "ingestToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "the gateway's INGEST_TOKEN"}


class HasIngestToken(BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.auth == "ingest"


class RawParser(BaseParser):
    """Leave the body unread: the view streams it to disk."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return None


class BatchOutput(serializers.ModelSerializer):
    batch_id = serializers.IntegerField(source="pk")

    class Meta:
        model = IngestBatch
        fields = ("batch_id", "status", "format", "lines", "accepted", "duplicates", "rejected", "error")


def _store_body(request) -> tuple[int, "ingest.Path"]:
    """Stream the body to the ingest folder, inflating gzip, within the configured limits."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0  # as Django reads a malformed length; the stream is capped below all the same
    if declared > settings.INGEST_MAX_BODY_BYTES:
        raise TooLarge(f"body of {declared} bytes exceeds the limit of {settings.INGEST_MAX_BODY_BYTES} bytes")
    gzipped = request.META.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip"
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    limit = settings.INGEST_MAX_DECOMPRESSED_BYTES
    counts = {"raw": 0, "plain": 0}

    def blocks():
        stream = request._request
        while block := stream.read(BLOCK):
            counts["raw"] += len(block)
            if counts["raw"] > settings.INGEST_MAX_BODY_BYTES:
                raise TooLarge(f"body exceeds the limit of {settings.INGEST_MAX_BODY_BYTES} bytes")
            if inflater is None:
                counts["plain"] += len(block)
                yield block
                continue
            data = block
            while data:
                # Inflate in bounded steps so a zip bomb never holds more than BLOCK in memory.
                out = inflater.decompress(data, BLOCK)
                counts["plain"] += len(out)
                if counts["plain"] > limit:
                    raise TooLarge(f"decompressed body exceeds the limit of {limit} bytes")
                yield out
                data = inflater.unconsumed_tail
        if inflater is not None:
            tail = inflater.flush()
            counts["plain"] += len(tail)
            if counts["plain"] > limit:
                raise TooLarge(f"decompressed body exceeds the limit of {limit} bytes")
            yield tail

    path = ingest.upload_store(chunks=blocks(), suffix=".ndjson")
    return counts["plain"], path


class IngestApi(APIView):
    authentication_classes = [IngestTokenAuthentication]
    permission_classes = [HasIngestToken]
    parser_classes = [RawParser]

    @extend_schema(
        operation_id="ingest_create",
        summary="Ingest routed-traffic records",
        description=("The body is NDJSON (one generation per line, any format of formats.md; "
                     "`Content-Encoding: gzip` allowed). Answers the batch with its counts when it finishes "
                     "within `wait` seconds (200), else its id and status (202)."),
        request={"application/x-ndjson": OpenApiTypes.STR},
        parameters=[
            OpenApiParameter("format", str, enum=["auto", *formats.FORMATS], default="auto"),
            OpenApiParameter("wait", float, default=10, description="seconds to wait for the batch (0-60)"),
        ],
        responses={200: BatchOutput, 202: BatchOutput, 401: None, 413: None},
        examples=[OpenApiExample("done", response_only=True, status_codes=["200"], value={
            "batch_id": 42, "status": "done", "format": "openrouter", "lines": 3, "accepted": 2,
            "duplicates": 0, "rejected": 1, "error": ""})],
    )
    def post(self, request):
        fmt = request.query_params.get("format", "auto")
        if fmt != "auto" and fmt not in formats.FORMATS:
            return Response({"detail": f"unknown format {fmt!r}"}, status=status.HTTP_400_BAD_REQUEST)
        try:
            wait = float(request.query_params.get("wait", 10))
        except ValueError:
            wait = math.nan
        if not math.isfinite(wait):  # nan would never reach the deadline
            return Response({"detail": "wait must be a number of seconds"}, status=status.HTTP_400_BAD_REQUEST)
        wait = min(max(wait, 0), 60)
        try:
            size, path = _store_body(request)
        except TooLarge as error:
            return Response({"detail": str(error)}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        except zlib.error as error:
            return Response({"detail": f"body is not valid gzip: {error}"}, status=status.HTTP_400_BAD_REQUEST)
        if size == 0:
            path.unlink(missing_ok=True)
            return Response({"detail": "empty body"}, status=status.HTTP_400_BAD_REQUEST)
        batch = ingest.batch_queue(path=path, source="api", fmt=fmt)
        deadline = time.monotonic() + wait
        while True:
            batch.refresh_from_db()
            finished = batch.status in (IngestBatch.Status.DONE, IngestBatch.Status.FAILED)
            if finished or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        code = status.HTTP_200_OK if finished else status.HTTP_202_ACCEPTED
        return Response(BatchOutput(batch).data, status=code)


class IngestBatchApi(APIView):
    authentication_classes = [IngestTokenAuthentication]
    permission_classes = [HasIngestToken]

    @extend_schema(operation_id="ingest_retrieve", summary="A batch's status and counts",
                   responses={200: BatchOutput, 401: None, 404: None})
    def get(self, request, batch_id: int):
        batch = IngestBatch.objects.filter(pk=batch_id).first()
        if batch is None:
            return Response({"detail": "no such batch"}, status=status.HTTP_404_NOT_FOUND)
        return Response(BatchOutput(batch).data)
