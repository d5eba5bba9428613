from django.urls import path

from . import views

app_name = "analytics"

urlpatterns = [
    path("ops/ingest/", views.ops_ingest, name="ops-ingest"),
    path("ops/ingest/<int:batch_id>/", views.ops_batch, name="ops-batch"),
    path("ops/ingest/<int:batch_id>/rejects.csv", views.ops_batch_rejects_csv, name="ops-batch-rejects"),
    path("ops/ingest/<int:batch_id>/retry", views.ops_batch_retry, name="ops-batch-retry"),
    path("ops/unpriced/", views.ops_unpriced, name="ops-unpriced"),
]
