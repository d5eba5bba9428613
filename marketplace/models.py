"""The catalog: authors (labs), models, providers, endpoints (model x provider) and apps.

Prices are Decimal USD per token. Catalog rows are registered on first sight by ingestion
(models then stay unlisted until staff review them) or loaded by `catalog_sync`.
"""
from decimal import Decimal

from django.db import models
from django.urls import reverse

PRICE = {"max_digits": 24, "decimal_places": 15}


class Author(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("marketplace:author", args=[self.slug])


class Model(models.Model):
    """One routed model slug, `author/name[:variant]`."""

    slug = models.CharField(max_length=200, unique=True)
    author = models.ForeignKey(Author, on_delete=models.PROTECT, related_name="models")
    route_name = models.CharField(max_length=200, help_text="the slug after `author/`")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    context_length = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    listed = models.BooleanField(default=True, help_text="unlisted models are hidden from public pages")
    from_catalog = models.BooleanField(default=False, help_text="known to genai-prices")

    class Meta:
        ordering = ["slug"]
        indexes = [models.Index(fields=["author", "listed"])]

    def __str__(self) -> str:
        return self.slug

    def get_absolute_url(self) -> str:
        return reverse("marketplace:model", args=[self.author.slug, self.route_name])


class Provider(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200, unique=True)
    genai_prices_id = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    prices_as = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="Price this provider's traffic at that provider's endpoint prices, for every model this "
                  "provider has no endpoint of (its own endpoints keep their own prices). Empty: such traffic "
                  "stays unpriced (not $0, not debited) and is listed on /ops/unpriced/. Applies to requests "
                  "ingested from now on (within 5 minutes), not to those already stored.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("marketplace:provider", args=[self.slug])


class Endpoint(models.Model):
    """A model served by a provider, at its current prices (per token, USD)."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="endpoints")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="endpoints")
    prompt_price = models.DecimalField(**PRICE, default=Decimal(0))
    completion_price = models.DecimalField(**PRICE, default=Decimal(0))
    cache_read_price = models.DecimalField(**PRICE, null=True, blank=True)
    reasoning_price = models.DecimalField(**PRICE, null=True, blank=True,
                                          help_text="empty: reasoning tokens cost the completion price")
    context_length = models.PositiveIntegerField(null=True, blank=True)
    max_output = models.PositiveIntegerField(null=True, blank=True)
    genai_prices_ref = models.CharField(max_length=200, blank=True, help_text="`provider id:model id` in genai-prices")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model", "provider"]
        constraints = [models.UniqueConstraint(fields=["model", "provider"], name="endpoint_model_provider")]

    def __str__(self) -> str:
        return f"{self.model.slug} @ {self.provider.name}"

    @property
    def prompt_price_per_million(self) -> Decimal:
        return self.prompt_price * 1_000_000

    @property
    def completion_price_per_million(self) -> Decimal:
        return self.completion_price * 1_000_000


class EndpointPrice(models.Model):
    """A price an endpoint had from `valid_from` on: pricing uses the one in force at created_at."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="price_history")
    valid_from = models.DateTimeField()
    prompt_price = models.DecimalField(**PRICE)
    completion_price = models.DecimalField(**PRICE)
    cache_read_price = models.DecimalField(**PRICE, null=True, blank=True)
    reasoning_price = models.DecimalField(**PRICE, null=True, blank=True)

    class Meta:
        ordering = ["endpoint", "-valid_from"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "valid_from"], name="endpoint_price_from")]

    def __str__(self) -> str:
        return f"{self.endpoint_id} from {self.valid_from:%Y-%m-%d}"


class AppCategory(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["slug"]
        verbose_name_plural = "app categories"

    def __str__(self) -> str:
        return self.name


class App(models.Model):
    """A calling application, known by its origin (HTTP-Referer). Names are untrusted text."""

    slug = models.SlugField(max_length=120, unique=True)
    origin = models.CharField(max_length=500, unique=True)
    name = models.CharField(max_length=200)
    categories = models.ManyToManyField(AppCategory, blank=True, related_name="apps")
    public = models.BooleanField(default=True, help_text="hidden apps never appear on public pages")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("marketplace:app", args=[self.slug])


class PendingPriceChange(models.Model):
    """A genai-prices change to a price already used for billing, held back until a reprice.

    `catalog_sync` never rewrites a price that catalog-priced generations were billed at: it records
    the change here instead and leaves the endpoint's prices as they are. genai-prices says that from
    `valid_from` on the endpoint costs `new_*`; Tokengrid billed `old_*` over
    [reprice_from, reprice_until), where `requests` catalog-priced requests of the endpoint's model
    and provider fell when the change was detected, the first at `billed_since` (reprice_from None:
    since ever, as the first price of a history also covers what came before it; reprice_until None:
    still in force). Applying it, the repricing service's job, writes the new price into the
    endpoint's history at `valid_from` (and the endpoint's current price when it is the one in
    force), reprices those requests and sets APPLIED; DISMISSED keeps the old price for good: a later
    sync does not raise the same change again. At most one change is pending per endpoint and start.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "pending: needs a reprice"
        APPLIED = "applied", "applied"
        DISMISSED = "dismissed", "dismissed: the old price stays"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="pending_price_changes")
    valid_from = models.DateTimeField(help_text="the new price's start in genai-prices")
    reprice_from = models.DateTimeField(null=True, blank=True, help_text="empty: since ever (the first price)")
    reprice_until = models.DateTimeField(null=True, blank=True, help_text="empty: still in force")
    old_prompt_price = models.DecimalField(**PRICE)
    old_completion_price = models.DecimalField(**PRICE)
    old_cache_read_price = models.DecimalField(**PRICE, null=True, blank=True)
    old_reasoning_price = models.DecimalField(**PRICE, null=True, blank=True)
    new_prompt_price = models.DecimalField(**PRICE)
    new_completion_price = models.DecimalField(**PRICE)
    new_cache_read_price = models.DecimalField(**PRICE, null=True, blank=True)
    new_reasoning_price = models.DecimalField(**PRICE, null=True, blank=True)
    requests = models.PositiveBigIntegerField(default=0, help_text="catalog-priced requests at the old price")
    billed_since = models.DateTimeField(null=True, blank=True, help_text="the first of them")
    detected_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at", "endpoint"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "valid_from"], condition=models.Q(status="pending"),
                                               name="pending_price_change_once")]

    def __str__(self) -> str:
        return f"{self.endpoint} from {self.valid_from:%Y-%m-%d}: {self.status}"
