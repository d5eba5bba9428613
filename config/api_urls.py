"""Every API route under /api/v1/, gathered from the apps."""
from django.urls import include, path

urlpatterns = [
    path("", include("marketplace.api_urls")),
    path("", include("analytics.api_urls")),
    path("", include("analytics.account_api_urls")),
    path("", include("billing.api_urls")),
]
