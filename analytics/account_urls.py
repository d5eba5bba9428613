"""Account analytics pages (/account/...): overview, activity, generation log, reports."""
from django.urls import path

from . import account_views as views

app_name = "account"

urlpatterns = [
    path("account/", views.overview, name="overview"),
    path("account/activity/", views.activity, name="activity"),
    path("account/generations/", views.generations, name="generations"),
    path("account/generations/<str:generation_id>/", views.generation, name="generation"),
    path("account/reports/", views.reports, name="reports"),
    path("account/reports/usage.csv", views.usage_csv, name="usage-csv"),
    path("account/reports/generations.csv", views.generations_csv, name="generations-csv"),
    path("account/reports/monthly/<int:year>-<int:month>/", views.monthly_report, name="monthly-report"),
]
