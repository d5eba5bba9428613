"""A membership that ends, however it ends (the members page, the admin's inline, a deleted user's
cascade), revokes the API tokens its user made for that account, so that joining again does not
bring an old token back to life."""
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from .models import AccountToken, Membership


@receiver(post_delete, sender=Membership, dispatch_uid="billing.membership_tokens_revoke")
def _membership_tokens_revoke(sender, instance: Membership, **kwargs) -> None:
    AccountToken.objects.filter(account_id=instance.account_id, created_by_id=instance.user_id,
                                revoked_at__isnull=True).update(revoked_at=timezone.now())
