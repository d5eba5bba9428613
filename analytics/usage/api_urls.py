"""Account API routes under /api/v1/account/: usage, the generation log and savings."""
from django.urls import path

from . import api as account_api

urlpatterns = [
    path("account/usage", account_api.UsageApi.as_view(), name="api-account-usage"),
    path("account/generations", account_api.GenerationsApi.as_view(), name="api-account-generations"),
    path("account/savings", account_api.SavingsApi.as_view(), name="api-account-savings"),
]
