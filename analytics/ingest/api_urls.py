from django.urls import path

from . import api

urlpatterns = [
    path("ingest", api.IngestApi.as_view(), name="api-ingest"),
    path("ingest/<int:batch_id>", api.IngestBatchApi.as_view(), name="api-ingest-batch"),
]
