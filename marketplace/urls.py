from django.urls import path

from . import views

app_name = "marketplace"

urlpatterns = [
    # Until the leaderboards land, the front page is the catalog.
    path("", views.model_list, name="home"),
    path("models/", views.model_list, name="model-list"),
    path("models/<slug:author>/<str:name>/", views.model_detail, name="model"),
    path("authors/<slug:slug>/", views.author_detail, name="author"),
    path("providers/<slug:slug>/", views.provider_detail, name="provider"),
    path("apps/<slug:slug>/", views.app_detail, name="app"),
]
