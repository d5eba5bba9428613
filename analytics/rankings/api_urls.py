from django.urls import path

from . import api

urlpatterns = [
    path("rankings/models", api.ModelRankingApi.as_view(), name="api-rankings-models"),
    path("rankings/authors", api.AuthorRankingApi.as_view(), name="api-rankings-authors"),
    path("rankings/providers", api.ProviderRankingApi.as_view(), name="api-rankings-providers"),
    path("rankings/apps", api.AppRankingApi.as_view(), name="api-rankings-apps"),
    path("rankings/capabilities", api.CapabilityRankingApi.as_view(), name="api-rankings-capabilities"),
    path("rankings/daily", api.DailyRankingsApi.as_view(), name="api-rankings-daily"),
    path("rankings/daily.csv", api.DailyRankingsCsvApi.as_view(), name="api-rankings-daily-csv"),
    path("models/<slug:author>/<str:name>/endpoints", api.ModelEndpointsApi.as_view(), name="api-model-endpoints"),
]
