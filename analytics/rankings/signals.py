"""Visibility changes reach public pages at once: cached rankings and pages are keyed by a version.

Connected by analytics.apps: the catalog (marketplace) knows nothing of the rankings built on it.
"""
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from marketplace.models import App, Model

from .cache import rankings_invalidate


@receiver(post_save, sender=App)
@receiver(post_save, sender=Model)
@receiver(post_delete, sender=App)
@receiver(post_delete, sender=Model)
def catalog_visibility_changed(sender, **kwargs) -> None:
    """An app hidden or a model unlisted (or renamed) must not linger in a cached page."""
    rankings_invalidate()
