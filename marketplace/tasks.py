from celery import shared_task

from .services import catalog_sync


@shared_task
def catalog_sync_task() -> dict:
    """Refresh the catalog from genai-prices; returns the report."""
    return catalog_sync(source="genai-prices, the data in use").as_json()
