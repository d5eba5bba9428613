"""The public pages' routes. Their names keep the `marketplace` namespace (models' get_absolute_url,
templates); the catalog page lives here too, as it sorts by the week's traffic."""
from django.urls import path

from . import views

app_name = "marketplace"

urlpatterns = [
    path("", views.rankings_page, name="home"),
    path("rankings/", views.rankings_page, name="rankings"),
    path("rankings/price-index/", views.price_index_page, name="price-index"),
    path("models/", views.model_list, name="model-list"),
    path("models/<slug:author>/<str:name>/", views.model_detail, name="model"),
    path("authors/<slug:slug>/", views.author_detail, name="author"),
    path("providers/<slug:slug>/", views.provider_detail, name="provider"),
    path("apps/<slug:slug>/", views.app_detail, name="app"),
]
