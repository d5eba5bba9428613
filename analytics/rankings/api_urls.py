from django.urls import path

from core.replica import replica_view

from . import api

urlpatterns = [
    path("rankings/models", replica_view(api.ModelRankingApi.as_view()), name="api-rankings-models"),
    path("rankings/authors", replica_view(api.AuthorRankingApi.as_view()), name="api-rankings-authors"),
    path("rankings/providers", replica_view(api.ProviderRankingApi.as_view()), name="api-rankings-providers"),
    path("rankings/apps", replica_view(api.AppRankingApi.as_view()), name="api-rankings-apps"),
    path("rankings/capabilities", replica_view(api.CapabilityRankingApi.as_view()), name="api-rankings-capabilities"),
    path("rankings/daily", replica_view(api.DailyRankingsApi.as_view()), name="api-rankings-daily"),
    path("rankings/daily.csv", replica_view(api.DailyRankingsCsvApi.as_view()), name="api-rankings-daily-csv"),
    path("models/<slug:author>/<str:name>/endpoints", replica_view(api.ModelEndpointsApi.as_view()), name="api-model-endpoints"),
]
