"""Accounts, their members and API keys, and the credit ledger.

The ledger is append-only: an account's `balance_units` always equals the sum of its entries'
`amount_units`; both change together in `billing.ledger`, under the account's row lock.
Money is integer units of 1e-10 USD (`core.money`).

(Longer than 400 lines: Django's one models module per app; the models are mostly fields,
constraints and their comments, and they reference each other.)
"""
from datetime import tzinfo
from decimal import Decimal

from django.conf import settings
from django.db import models

from core.money import units_to_usd
from core.timerange import zone_named

from .periods import PERIODS, WEEKDAYS


class Account(models.Model):
    """A customer of the router; `external_id` is the gateway's account id."""

    external_id = models.CharField(max_length=128, unique=True)
    name = models.CharField(max_length=200, blank=True)
    balance_units = models.BigIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    # Low-balance alert: one `balance.low` event per crossing below the threshold; `ledger_post`
    # re-arms it when the balance is back at or above the threshold. `low_balance_crossings` counts
    # the claimed crossings: it names each one in the event's dedupe key.
    low_balance_threshold_units = models.BigIntegerField(null=True, blank=True)
    low_balance_armed = models.BooleanField(default=True)
    low_balance_crossings = models.PositiveIntegerField(default=0, db_default=0)
    # Unusual spend (billing.unusual): the last hour's spend over the usual (the median of the same
    # hour of the week) by more than k x the MAD and by at least the minimum amount.
    unusual_spend_k = models.DecimalField(max_digits=4, decimal_places=1, default=Decimal("5.0"),
                                          db_default=Decimal("5.0"))
    unusual_spend_min_units = models.BigIntegerField(default=100_000_000_000, db_default=100_000_000_000)
    # Auto top-up: after a usage debit leaves the balance under the threshold, one charge of
    # `auto_topup_amount_units` to the saved payment method. `auto_topup_armed` is the pending
    # marker: claimed by a conditional UPDATE (so one crossing charges once), re-armed by
    # `ledger_post` when the balance is back at or above the threshold.
    auto_topup_enabled = models.BooleanField(default=False)
    auto_topup_threshold_units = models.BigIntegerField(default=0)
    auto_topup_amount_units = models.BigIntegerField(default=0)
    auto_topup_armed = models.BooleanField(default=True)
    # What keeps it from running away (billing/README.md, *Auto top-up*): at most this much charged
    # automatically per month of the account's zone, and failed charges in a row (transient ones;
    # a final decline turns it off at once) until it turns itself off.
    auto_topup_monthly_cap_units = models.BigIntegerField(default=0)
    auto_topup_failures = models.PositiveSmallIntegerField(default=0)
    # The account's days, weeks and months (pages, reports, statements, the forecast, budgets and so
    # key limits, which are key budgets since migration 0008).
    time_zone = models.CharField(max_length=64, default="UTC", help_text="an IANA time zone name, such as Europe/Paris")
    # The first day of a budget's week: 0 Monday … 6 Sunday (billing.periods).
    week_start = models.PositiveSmallIntegerField(default=0, choices=[(i, d) for i, d in enumerate(WEEKDAYS)])

    class Meta:
        ordering = ["external_id"]

    def __str__(self) -> str:
        return self.name or self.external_id

    @property
    def balance(self) -> Decimal:
        return units_to_usd(self.balance_units)

    @property
    def zone(self) -> tzinfo:
        """The account's time zone (datetime.UTC for UTC, or a name no longer known)."""
        return zone_named(self.time_zone)


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

    class Interval(models.TextChoices):
        """A key limit's interval as the keys page and `GET /api/v1/keys/<id>` name it: a budget period."""

        DAILY = "daily"
        WEEKLY = "weekly"
        MONTHLY = "monthly"
        NEVER = "never"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    external_id = models.CharField(max_length=128)
    name = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    # A key's limit is its hard key budget (Budget, scope "key"; migration 0008 moved the limits
    # there): its interval is the budget's period, in the account's zone. Its alerts are that
    # budget's `alert_percentages` (80 by default) and its 100%, once per crossing (billing.thresholds).

    class Meta:
        ordering = ["account", "external_id"]
        constraints = [models.UniqueConstraint(fields=["account", "external_id"], name="apikey_account_external")]
        # The gateway names a key by its own id alone (the spend check and reservations).
        indexes = [models.Index(fields=["external_id"], name="apikey_external")]

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
        REPRICING = "repricing"  # a reprice of past usage (analytics.repricing): memo "Repricing of <model> from <date>"

    # Every index is paid for by each usage entry a chunk posts (tens of thousands a chunk at a
    # router's cardinality): the account's own index is the (account, created) one below, and the
    # idempotency key's uniqueness is a constraint, which adds no second pattern-ops index.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="ledger", db_index=False)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount_units = models.BigIntegerField(help_text="positive credits, negative debits")
    balance_after_units = models.BigIntegerField()
    idempotency_key = models.CharField(max_length=200)
    reference = models.CharField(max_length=200, blank=True)
    actor = models.CharField(max_length=200, blank=True)
    memo = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account", "-id"]
        indexes = [models.Index(fields=["account", "created"])]
        constraints = [models.UniqueConstraint(fields=["idempotency_key"], name="ledgerentry_idempotency_key")]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.kind} {units_to_usd(self.amount_units)} on {self.account}"

    @property
    def amount(self) -> Decimal:
        return units_to_usd(self.amount_units)


class PaymentMethod(models.Model):
    """The payment method an account saved for auto top-up (one per account)."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="payment_method")
    gateway = models.CharField(max_length=20)
    customer_ref = models.CharField(max_length=200, blank=True, help_text="the gateway's customer id")
    token = models.CharField(max_length=200, help_text="the gateway's payment method id")
    label = models.CharField(max_length=100)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.label} ({self.gateway})"


class Payment(models.Model):
    """A purchase of credits through a gateway: `amount_units` credited, `fee_units` kept on top."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase"
        AUTO_TOPUP = "auto_topup", "auto top-up"

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="payments")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.PURCHASE)
    gateway = models.CharField(max_length=20)
    external_id = models.CharField(max_length=200, unique=True, null=True, blank=True,
                                  help_text="the gateway's payment id (Checkout session, PaymentIntent)")
    amount_units = models.BigIntegerField(help_text="credits bought")
    fee_units = models.BigIntegerField()
    refunded_units = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    failure = models.TextField(blank=True)
    save_method = models.BooleanField(default=False, help_text="keep the payment method for auto top-up")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # An automatic charge's last request to the gateway: one whose answer was lost is sent again
    # (same idempotency key) at most once per interval (billing.purchases.auto_topup_resend_claim).
    attempted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["account", "-created"])]
        # At most one automatic charge in flight per account: the claim is this row (billing.purchases).
        constraints = [models.UniqueConstraint(fields=["account"], condition=models.Q(kind="auto_topup",
                                                                                      status="pending"),
                                               name="payment_one_auto_topup_in_flight")]

    def __str__(self) -> str:
        return f"{self.kind} {units_to_usd(self.amount_units)} on {self.account} ({self.status})"

    @property
    def total_units(self) -> int:
        return self.amount_units + self.fee_units


class Refund(models.Model):
    """A refund of a purchase's unused credits: claimed (`requested`), then settled by the gateway's
    answer or its webhook (`succeeded`, with the ledger entry) or released (`failed`).

    At most one refund of a payment is in flight (the partial unique constraint), so two clicks
    claim once; an account's requested refunds are reserved against its balance until settled.
    """

    class Status(models.TextChoices):
        REQUESTED = "requested"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="refunds")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    gateway = models.CharField(max_length=20)
    amount_units = models.BigIntegerField(help_text="credits paid back (whole cents)")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    external_id = models.CharField(max_length=200, unique=True, null=True, blank=True,
                                   help_text="the gateway's refund id, once it answered")
    failure = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [models.UniqueConstraint(fields=["payment"], condition=models.Q(status="requested"),
                                               name="refund_one_requested_per_payment")]
        indexes = [models.Index(fields=["account"], condition=models.Q(status="requested"),
                                name="refund_requested_by_account")]

    def __str__(self) -> str:
        return f"refund {units_to_usd(self.amount_units)} of {self.payment_id} ({self.status})"


class PromoCode(models.Model):
    """Credits granted by code: once per account, at most `max_redemptions` times in all."""

    code = models.CharField(max_length=40, unique=True, help_text="stored upper-case; redeemed case-insensitively")
    amount_units = models.BigIntegerField()
    max_redemptions = models.PositiveIntegerField(null=True, blank=True, help_text="empty: unlimited")
    redemptions = models.PositiveIntegerField(default=0, editable=False)
    redeemable_until = models.DateTimeField(null=True, blank=True)
    credit_expiry_days = models.PositiveIntegerField(null=True, blank=True,
                                                     help_text="the granted credits expire after this many days")
    active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.code

    def save(self, *args, **kwargs):
        self.code = self.code.strip().upper()
        super().save(*args, **kwargs)

    @property
    def amount(self) -> Decimal:
        return units_to_usd(self.amount_units)


class PromoRedemption(models.Model):
    promo = models.ForeignKey(PromoCode, on_delete=models.PROTECT, related_name="redeemed")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="promo_redemptions")
    amount_units = models.BigIntegerField()
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    expired_units = models.BigIntegerField(null=True, blank=True, help_text="set once the expiry was posted")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["promo", "account"], name="promo_once_per_account")]
        indexes = [models.Index(fields=["expires_at"], condition=models.Q(expired_units__isnull=True),
                                name="promo_redemption_to_expire")]

    def __str__(self) -> str:
        return f"{self.promo} for {self.account}"


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


class Budget(models.Model):
    """A limit on spend (BYOK excluded) per period of the account's zone, at one level of the account.

    `target` is the gateway's id of what it limits: a key id (`api_key` is that key), an end user,
    a tag; empty for `account` and `each_user` (a cap on every end user of the account apart).
    """

    class Scope(models.TextChoices):
        ACCOUNT = "account"
        KEY = "key"
        USER = "user"
        EACH_USER = "each_user", "each end user"
        TAG = "tag"

    class Mode(models.TextChoices):
        HARD = "hard", "hard (the gateway refuses)"
        SOFT = "soft", "soft (alerts only)"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="budgets")
    scope = models.CharField(max_length=10, choices=Scope.choices)
    target = models.CharField(max_length=128, blank=True, default="")
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, null=True, blank=True, related_name="budgets")
    amount_units = models.BigIntegerField()
    period = models.CharField(max_length=5, choices=[(p, p) for p in PERIODS])
    mode = models.CharField(max_length=4, choices=Mode.choices, default=Mode.HARD)
    alert_percentages = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account", "scope", "target", "period"]
        constraints = [
            models.UniqueConstraint(fields=["account", "scope", "target", "period"], name="budget_once_per_period"),
            models.CheckConstraint(condition=models.Q(amount_units__gte=0), name="budget_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.target} {units_to_usd(self.amount_units)} per {self.period}".replace("  ", " ")


class BudgetSpend(models.Model):
    """Ingested spend of one budget in one period (`subject`: the end user of an `each_user` budget).

    Kept by ingestion, set-based per chunk (`budgets.budget_spend_ingest`); a period with no row
    spent nothing. Never clamped: spend past the amount stays recorded.
    """

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="spends")
    subject = models.CharField(max_length=128, blank=True, default="")
    period_key = models.DateField(help_text="the period's first local date (billing.periods)")
    spent_units = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["budget", "subject", "period_key"], name="budgetspend_key")]

    def __str__(self) -> str:
        return f"{self.budget} {self.subject} from {self.period_key}: {units_to_usd(self.spent_units)}"


class Reservation(models.Model):
    """An amount the gateway holds for one request before it runs, named by the generation id it will log.

    Open, it counts against the balance and every budget that applies (a hold), until the
    generation is ingested (settled: its real cost replaces the hold), the gateway releases it, or
    `expires_at` passes. `answer` is what the reserve call answered, so the same id answers it again.
    """

    class Status(models.TextChoices):
        OPEN = "open"
        SETTLED = "settled"
        RELEASED = "released"
        REFUSED = "refused"  # the amount did not fit: never held

    id = models.CharField(max_length=128, primary_key=True, help_text="the generation id the gateway will log")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="reservations", db_index=False)
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+", db_index=False)
    end_user = models.CharField(max_length=128, blank=True, default="")
    tags = models.CharField(max_length=1100, blank=True, default="", help_text='",a,b,"; "" for none')
    amount_units = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    created = models.DateTimeField()
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    cost_units = models.BigIntegerField(null=True, blank=True, help_text="the settled generation's spend")
    answer_status = models.PositiveSmallIntegerField()
    answer = models.JSONField()

    class Meta:
        indexes = [
            # The holds of an account: what every check and reserve sums.
            models.Index(fields=["account", "expires_at"], condition=models.Q(status="open"),
                         name="reservation_open"),
            models.Index(fields=["created"], name="reservation_created"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {units_to_usd(self.amount_units)} ({self.status})"

    @property
    def over_units(self) -> int:
        """How far the real cost went past the amount held (0 when it did not)."""
        return max(0, (self.cost_units or 0) - self.amount_units) if self.status == self.Status.SETTLED else 0


class AlertEvent(models.Model):
    """Something an account should hear about, recorded once per crossing (`billing.alert_events`)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="alert_events")
    event = models.CharField(max_length=32)
    dedupe_key = models.CharField(max_length=200, help_text="names the crossing: one event per key per account")
    subject = models.CharField(max_length=200)
    text = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField()

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [models.UniqueConstraint(fields=["account", "dedupe_key"], name="alertevent_once")]
        indexes = [models.Index(fields=["account", "-created"], name="alertevent_account_recent")]

    def __str__(self) -> str:
        return f"{self.event} {self.dedupe_key}"


# --- Alert channels (issue 33): where an account's alert events go, and the log of each send. ---


class AlertChannel(models.Model):
    """One place an account's alerts go: e-mail to chosen members, a signed webhook, or Slack.

    `events` empty means every event. An e-mail channel's `recipients` are member e-mail addresses
    (empty: the account's owners, read at send time). A webhook's `secret` (`whsec_…`) signs each
    request (Standard Webhooks); it is kept so that it can sign, shown once at creation and rotation.
    A channel is paused (`paused_at`, `paused_reason`) when it keeps failing; resuming resets
    `consecutive_failures`.
    """

    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"
        SLACK = "slack", "Slack"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="alert_channels")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    url = models.URLField(max_length=500, blank=True)
    events = models.JSONField(default=list, blank=True, help_text="event names; empty: every event")
    recipients = models.JSONField(default=list, blank=True, help_text="members' e-mails; empty: the owners")
    secret = models.CharField(max_length=100, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.CharField(max_length=300, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["account"], name="alertchannel_account")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.url or ', '.join(self.recipients) or 'owners'}"

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events


class AlertDelivery(models.Model):
    """One attempt to send one event to one channel: the delivery log.

    A retry is the next attempt (a new row, `due_at` in the future, queued by the sweep when due);
    a resend starts a new `round` at attempt 1. (channel, event, round, attempt) is unique, so a
    task delivered twice by the broker sends once (`status` is claimed queued → sending).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, related_name="deliveries")
    round = models.PositiveIntegerField(default=0, help_text="0 the first sending, then one per resend")
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    body = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField()
    due_at = models.DateTimeField()
    queued_at = models.DateTimeField(null=True, blank=True, help_text="when its task was last queued")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [models.UniqueConstraint(fields=["channel", "event", "round", "attempt"],
                                               name="alertdelivery_once")]
        indexes = [models.Index(fields=["channel", "-created"], name="alertdelivery_channel_recent"),
                   models.Index(fields=["due_at"], name="alertdelivery_due",
                                condition=models.Q(status="queued"))]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.channel_id} #{self.attempt} {self.status}"
# Alerts of thresholds (issue 33, billing.thresholds) -------------------------------------------------

class BudgetAlertLevel(models.Model):
    """One alert level of a budget in one period (and subject): armed, or claimed by its last crossing.

    A crossing is claimed by INSERT … ON CONFLICT DO UPDATE … WHERE armed (a concurrent claim finds
    it disarmed and sends nothing); a use that falls back under the level re-arms it, and the next
    crossing counts one more in `crossings`, which names it in the alert's dedupe key.
    """

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=128, blank=True, default="")
    period_key = models.DateField()
    level = models.PositiveIntegerField(help_text="a percentage of the amount")
    armed = models.BooleanField(default=False)
    crossings = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["budget", "subject", "period_key", "level"],
                                               name="budgetalertlevel_key")]

    def __str__(self) -> str:
        return f"{self.budget_id} {self.subject} {self.period_key} {self.level}% ({self.crossings})"
# Auto top-up audit ---------------------------------------------------------------------------------

class AutoTopupChange(models.Model):
    """Who turned auto top-up on or off or changed it, when, from which settings to which.

    `actor` is the user's name, or "system" when billing turned it off itself (`reason` says why).
    Settings are USD strings: {"enabled", "threshold", "amount", "monthly_cap"}.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="auto_topup_changes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+")
    actor = models.CharField(max_length=200)
    reason = models.CharField(max_length=1000, blank=True)
    old = models.JSONField(default=dict)
    new = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["account", "-created"], name="autotopupchange_recent")]

    def __str__(self) -> str:
        return f"auto top-up of {self.account} by {self.actor}"
