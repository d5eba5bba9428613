"""Every API route under /api/v1/, gathered from the apps."""
from django.urls import include, path

urlpatterns = [
    path("", include("analytics.rankings.api_urls")),
    path("", include("analytics.ingest.api_urls")),
    path("", include("analytics.usage.api_urls")),
    path("", include("billing.api_urls")),
]
