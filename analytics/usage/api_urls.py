"""Account API routes under /api/v1/account/: usage, the generation log and savings."""
from django.urls import path

from core.replica import replica_view

from . import api as account_api

urlpatterns = [
    path("account/usage", replica_view(account_api.UsageApi.as_view()), name="api-account-usage"),
    path("account/generations", replica_view(account_api.GenerationsApi.as_view()), name="api-account-generations"),
    path("account/savings", replica_view(account_api.SavingsApi.as_view()), name="api-account-savings"),
]
