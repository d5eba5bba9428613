from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"

    def ready(self) -> None:
        from .rankings import signals  # noqa: F401  (connects the catalog receivers)
