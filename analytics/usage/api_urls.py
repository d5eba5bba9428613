"""Account API routes under /api/v1/account/: usage and the generation log."""
from django.urls import path

from . import api as account_api

urlpatterns = [
    path("account/usage", account_api.UsageApi.as_view(), name="api-account-usage"),
    path("account/generations", account_api.GenerationsApi.as_view(), name="api-account-generations"),
]
