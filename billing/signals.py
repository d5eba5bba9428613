"""A membership that ends, however it ends (the members page, the admin's inline, a deleted user's
cascade), revokes the API tokens its user made for that account, so that joining again does not
bring an old token back to life."""
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .accounts import member_tokens_revoke
from .models import Membership


@receiver(post_delete, sender=Membership, dispatch_uid="billing.membership_tokens_revoke")
def _membership_tokens_revoke(sender, instance: Membership, **kwargs) -> None:
    member_tokens_revoke(account_id=instance.account_id, user_id=instance.user_id)
