"""Credits, key-limit, budget, alert-channel and spend-check API routes under /api/v1/ (account API token)."""
from django.urls import path

from . import alert_api, api, budget_api, gateway_api, threshold_api

urlpatterns = [
    path("credits", api.CreditsApi.as_view(), name="api-credits"),
    path("keys", api.KeyLimitListApi.as_view(), name="api-keys"),
    path("keys/<int:key_id>", api.KeyLimitApi.as_view(), name="api-key"),
    path("account/budgets", budget_api.BudgetListApi.as_view(), name="api-budgets"),
    path("account/budgets/<int:budget_id>", budget_api.BudgetApi.as_view(), name="api-budget"),
    path("account/budget-settings", budget_api.BudgetSettingsApi.as_view(), name="api-budget-settings"),
    path("account/alert-channels", alert_api.AlertChannelListApi.as_view(), name="api-alert-channels"),
    path("account/alert-channels/<int:channel_id>/deliveries", alert_api.AlertDeliveryListApi.as_view(),
         name="api-alert-deliveries"),
    path("account/alert-settings", threshold_api.AlertSettingsApi.as_view(), name="api-alert-settings"),
    path("spend/check", gateway_api.SpendCheckApi.as_view(), name="api-spend-check"),
    path("spend/reserve", gateway_api.SpendReserveApi.as_view(), name="api-spend-reserve"),
    path("spend/reserve/<str:reservation_id>", gateway_api.SpendReleaseApi.as_view(), name="api-spend-release"),
]
