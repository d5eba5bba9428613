"""Credits and key-limit API routes under /api/v1/ (account API token)."""
from django.urls import path

from . import api

urlpatterns = [
    path("credits", api.CreditsApi.as_view(), name="api-credits"),
    path("keys", api.KeyLimitListApi.as_view(), name="api-keys"),
    path("keys/<int:key_id>", api.KeyLimitApi.as_view(), name="api-key"),
]
