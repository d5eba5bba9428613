"""Account analytics pages (/account/...): overview, activity, generation log, reports; each reads the
replica when there is one (core.replica)."""
from urllib.parse import quote, unquote

from django.urls import path, register_converter

from core.replica import replica_view

from . import views

app_name = "account"


class GenerationIdConverter:
    """A gateway's generation id (any text up to 128 characters) as one opaque path segment.

    `/`, `?`, `#`, `%`, newlines and a bare `.` or `..` (which browsers fold away) are
    percent-encoded into the segment; `reverse()` then quotes its `%`, and the one decoding the
    server does gives back this segment, which `to_python` decodes into the id.
    """

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        return unquote(value)

    def to_url(self, value: str) -> str:
        segment = quote(value, safe="-_~!$&'()*+,;=:@")
        return segment.replace(".", "%2E") if segment in (".", "..") else segment


register_converter(GenerationIdConverter, "generation_id")

urlpatterns = [
    path("account/", replica_view(views.overview), name="overview"),
    path("account/activity/", replica_view(views.activity), name="activity"),
    path("account/activity.csv", replica_view(views.activity_csv), name="activity-csv"),
    path("account/generations/", replica_view(views.generations), name="generations"),
    path("account/generations/<generation_id:generation_id>/", replica_view(views.generation), name="generation"),
    path("account/reports/", replica_view(views.reports), name="reports"),
    path("account/reports/usage.csv", replica_view(views.usage_csv), name="usage-csv"),
    path("account/reports/generations.csv", replica_view(views.generations_csv), name="generations-csv"),
    path("account/reports/monthly/<int:year>-<int:month>/", replica_view(views.monthly_report), name="monthly-report"),
]
