"""Accounts, their members and API keys, and the credit ledger.

The ledger is append-only: an account's `balance_units` always equals the sum of its entries'
`amount_units`; both change together in `billing.services`, under the account's row lock.
Money is integer units of 1e-10 USD (`core.money`).
"""
from decimal import Decimal

from django.conf import settings
from django.db import models

from core.money import units_to_usd


class Account(models.Model):
    """A customer of the router; `external_id` is the gateway's account id."""

    external_id = models.CharField(max_length=128, unique=True)
    name = models.CharField(max_length=200, blank=True)
    balance_units = models.BigIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["external_id"]

    def __str__(self) -> str:
        return self.name or self.external_id

    @property
    def balance(self) -> Decimal:
        return units_to_usd(self.balance_units)


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        MEMBER = "member"
        VIEWER = "viewer"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "account"], name="membership_user_account")]

    def __str__(self) -> str:
        return f"{self.user} in {self.account} ({self.role})"


class ApiKey(models.Model):
    """A gateway API key of an account, known by its id or hash (never the secret)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    external_id = models.CharField(max_length=128)
    name = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account", "external_id"]
        constraints = [models.UniqueConstraint(fields=["account", "external_id"], name="apikey_account_external")]

    def __str__(self) -> str:
        return self.name or self.external_id


class LedgerEntry(models.Model):
    class Kind(models.TextChoices):
        PURCHASE = "purchase"
        USAGE = "usage"
        REFUND = "refund"
        GRANT = "grant"
        ADJUSTMENT = "adjustment"
        EXPIRY = "expiry"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="ledger")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount_units = models.BigIntegerField(help_text="positive credits, negative debits")
    balance_after_units = models.BigIntegerField()
    idempotency_key = models.CharField(max_length=200, unique=True)
    reference = models.CharField(max_length=200, blank=True)
    actor = models.CharField(max_length=200, blank=True)
    memo = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account", "-id"]
        indexes = [models.Index(fields=["account", "created"])]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.kind} {units_to_usd(self.amount_units)} on {self.account}"

    @property
    def amount(self) -> Decimal:
        return units_to_usd(self.amount_units)


class Invitation(models.Model):
    """An owner's invitation of a person, by email, to join an account with a role."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Membership.Role.choices, default=Membership.Role.MEMBER)
    token = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.email} to {self.account} ({self.role})"


class AccountToken(models.Model):
    """A token for the account API; only the SHA-256 of the secret is kept."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="the secret's first characters, to tell tokens apart")
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
