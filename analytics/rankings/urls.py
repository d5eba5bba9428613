"""The public pages' routes. Their names keep the `marketplace` namespace (models' get_absolute_url,
templates); the catalog page lives here too, as it sorts by the week's traffic. All of them read the replica when
there is one (core.replica)."""
from django.urls import path

from core.replica import replica_view

from . import views

app_name = "marketplace"

urlpatterns = [
    path("", replica_view(views.rankings_page), name="home"),
    path("rankings/", replica_view(views.rankings_page), name="rankings"),
    path("rankings/price-index/", replica_view(views.price_index_page), name="price-index"),
    path("models/", replica_view(views.model_list), name="model-list"),
    path("models/<slug:author>/<str:name>/", replica_view(views.model_detail), name="model"),
    path("authors/<slug:slug>/", replica_view(views.author_detail), name="author"),
    path("providers/<slug:slug>/", replica_view(views.provider_detail), name="provider"),
    path("apps/<slug:slug>/", replica_view(views.app_detail), name="app"),
]
