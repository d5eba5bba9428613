from django.urls import path

from . import views

app_name = "repricing"

urlpatterns = [
    path("ops/reprice/", views.ops_reprices, name="ops-reprices"),
    path("ops/reprice/<int:reprice_id>/", views.ops_reprice, name="ops-reprice"),
    path("ops/reprice/<int:reprice_id>/apply", views.ops_reprice_apply, name="ops-reprice-apply"),
    path("ops/reprice/change/<int:change_id>/plan", views.ops_change_plan, name="ops-change-plan"),
    path("ops/reprice/change/<int:change_id>/dismiss", views.ops_change_dismiss, name="ops-change-dismiss"),
]
