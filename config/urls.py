from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import views as core_views
from core.auth import (
    ThrottledAdminAuthenticationForm,
    ThrottledLoginView,
    ThrottledPasswordResetConfirmView,
    ThrottledPasswordResetView,
)

# The admin's login goes through the same throttle as the site's (core/auth.py).
admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("assets/plotly-<str:version>.min.js", core_views.plotly_js, name="plotly-js"),
    path("admin/", admin.site.urls),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/password_reset/", ThrottledPasswordResetView.as_view(), name="password_reset"),
    path("accounts/reset/<uidb64>/<token>/", ThrottledPasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("config.api_urls")),
    path("", include("analytics.ingest.urls")),
    path("", include("analytics.repricing.urls")),
    path("", include("analytics.usage.urls")),
    path("", include("billing.urls")),
    path("", include("analytics.rankings.urls")),
]
