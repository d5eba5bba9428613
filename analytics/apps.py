from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"

    def ready(self) -> None:
        from marketplace.price_use import price_use_counter_register

        from .catalog_use import catalog_price_use
        from .rankings import signals  # noqa: F401  (connects the catalog receivers)

        price_use_counter_register(catalog_price_use)  # catalog_sync asks which prices were billed
