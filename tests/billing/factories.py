"""factory-boy factories of the billing models (and the user they hang on)."""
import factory
from django.contrib.auth import get_user_model

from billing.models import Account, ApiKey, Membership, Payment, PromoCode
from core.money import usd_to_units


class UserFactory(factory.django.DjangoModelFactory):
    """A user made by `create_user`: password `pw-<username>-123` unless given (None: unusable)."""

    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.LazyAttribute(lambda user: f"pw-{user.username}-123")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return model_class._default_manager.create_user(*args, **kwargs)


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    external_id = factory.Sequence(lambda n: f"acct_{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    account = factory.SubFactory(AccountFactory)
    role = Membership.Role.MEMBER


class ApiKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiKey

    account = factory.SubFactory(AccountFactory)
    external_id = factory.Sequence(lambda n: f"key_{n}")


def member_of(account: Account, role: str, username: str, **user_fields):
    """A user with a membership of `account` in `role`: the set-up most access tests start from."""
    user = UserFactory(username=username, **user_fields)
    MembershipFactory(user=user, account=account, role=role)
    return user


class PromoCodeFactory(factory.django.DjangoModelFactory):
    """An active promo code worth $5, unlimited, redeemable forever, credits that never expire."""

    class Meta:
        model = PromoCode

    code = factory.Sequence(lambda n: f"PROMO{n}")
    amount_units = usd_to_units("5")


class PaymentFactory(factory.django.DjangoModelFactory):
    """A pending $10 purchase through the demo gateway, without a fee unless given."""

    class Meta:
        model = Payment

    account = factory.SubFactory(AccountFactory)
    gateway = "demo"
    external_id = factory.Sequence(lambda n: f"demo_{n}")
    amount_units = usd_to_units("10")
    fee_units = 0
