"""Ingestion batches and rejects, raw generations, and the rollups every page reads.

Raw generations carry no foreign-key constraints (ingest speed; the ids come from rows that
ingestion registered first). Money is integer units of 1e-10 USD (`core.money`). Rollup key
columns that may be absent (app, api key) hold 0 for "none", so a plain unique constraint can
serve `INSERT ... ON CONFLICT` on every database.

(Longer than 400 lines: Django's one models module per app; eight rollups with their keys and
indexes, each mostly fields, read in one place beside analytics/rollups.py, which declares them.)
"""
from django.db import models

from billing.models import Account, ApiKey
from marketplace.models import App, EndpointPrice, Model, Provider

# ",a,b,": at most 16 tags of at most 64 characters, each between commas (analytics.ingest.formats.fields).
TAGS_MAX_LENGTH = 16 * (64 + 1) + 1
# Long prompts, as the capability leaderboards count them: past 32k (32,768) and 128k (131,072) tokens.
LONG_PROMPTS = (32_768, 131_072)


def _ref(to, *, null: bool = False):
    """A reference of raw generations and rollups: no database constraint (ingestion registered the
    row first) and no index of its own (each table's composite key and indexes serve its queries)."""
    return models.ForeignKey(to, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
                             null=null, related_name="+")


class IngestBatch(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    API_SOURCE = "api"  # the source of a body POSTed to the ingest API (a gateway's slice of its stream)

    source = models.CharField(max_length=500, help_text="file name, or `api` for a POST")
    path = models.CharField(max_length=1000, help_text="its name in the ingest store (ingest.store)")
    format = models.CharField(max_length=20)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    bytes = models.BigIntegerField(default=0)
    lines = models.BigIntegerField(default=0)
    accepted = models.BigIntegerField(default=0)
    duplicates = models.BigIntegerField(default=0)
    rejected = models.BigIntegerField(default=0)
    unpriced = models.BigIntegerField(default=0, db_default=0,
                                      help_text="accepted requests Tokengrid could not price (not debited)")
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    header = models.TextField(blank=True, help_text="CSV header line, prepended to every chunk")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    ranked_at = models.DateTimeField(null=True, blank=True,
                                     help_text="when the rankings version first moved after the batch was done")

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "ingest batches"

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.source})"

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def in_rankings(self) -> bool:
        """Done and counted by the public rankings (or nothing of it to count)."""
        return self.status == self.Status.DONE and (self.ranked_at is not None or self.accepted == 0)

    @property
    def lag_seconds(self) -> float | None:
        """Ingest lag: from the batch being queued to its data being in the rankings."""
        return (self.ranked_at - self.created_at).total_seconds() if self.ranked_at else None


class IngestPiece(models.Model):
    """A piece of a stored ingest file, read by byte range by whichever worker runs a chunk (ingest.store)."""

    name = models.CharField(max_length=200, help_text="the file's name in the store (IngestBatch.path)")
    at = models.BigIntegerField(help_text="offset of the piece's first byte in the file")
    data = models.BinaryField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "at"], name="ingestpiece_name_at")]
        indexes = [models.Index(fields=["created_at"], name="ingestpiece_created")]

    def __str__(self) -> str:
        return f"{self.name} @ {self.at}"


class IngestChunk(models.Model):
    """A byte range of a batch's file; `done` commits with the chunk's rows (exactly once)."""

    batch = models.ForeignKey(IngestBatch, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    first_line = models.BigIntegerField()
    byte_start = models.BigIntegerField()
    byte_end = models.BigIntegerField()
    done = models.BooleanField(default=False)
    lines = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "index"]
        constraints = [models.UniqueConstraint(fields=["batch", "index"], name="chunk_batch_index")]

    def __str__(self) -> str:
        return f"batch {self.batch_id} chunk {self.index}"


class Reject(models.Model):
    batch = models.ForeignKey(IngestBatch, on_delete=models.CASCADE, related_name="rejects")
    line = models.BigIntegerField()
    reason = models.CharField(max_length=100)
    raw = models.TextField(help_text="the first 2 KB of the record")

    class Meta:
        ordering = ["batch", "line"]
        indexes = [models.Index(fields=["batch", "line"])]

    def __str__(self) -> str:
        return f"batch {self.batch_id} line {self.line}: {self.reason}"


class Generation(models.Model):
    """One routed request, as logged by the gateway; `id` is the gateway's idempotency key.

    The table is partitioned by month of `created_at` (`analytics.ingest.partitions`,
    migration 0007): no primary key in the database (a partitioned table's unique index must hold
    `created_at`), uniqueness of `id` comes from `GenerationKey`, and one index, the account's time
    order (the generation log and exports): every index is paid on each ingested row, and pages read
    the rollups, not this table. Its shape is SQL of migration 0007: change it with SQL too.
    """

    id = models.CharField(max_length=128, primary_key=True)
    created_at = models.DateTimeField()
    account = _ref(Account)
    api_key = _ref(ApiKey, null=True)
    model = _ref(Model)
    provider = _ref(Provider)
    app = _ref(App, null=True)
    batch_id = models.BigIntegerField(default=0)
    tokens_prompt = models.BigIntegerField(default=0)
    tokens_completion = models.BigIntegerField(default=0)
    tokens_reasoning = models.BigIntegerField(default=0)
    tokens_cached = models.BigIntegerField(default=0)
    cost_units = models.BigIntegerField(default=0, help_text="total_cost in 1e-10 USD")

    class CostSource(models.IntegerChoices):
        GATEWAY = 1, "the gateway's total_cost"
        CATALOG = 2, "the catalog's price at the time"
        INSURANCE = 3, "zero-completion insurance ($0)"
        UNPRICED = 4, "not priced: the catalog has no price"

    # Predicates: analytics.cost_sources. Rows ingested before it was kept got theirs in migration 0018.
    cost_source = models.SmallIntegerField(choices=CostSource.choices, help_text="where the cost came from")
    price_id = models.BigIntegerField(null=True, help_text="the EndpointPrice row that priced it (catalog only; "
                                                             "empty: gateway, insurance, unpriced, no price history, "
                                                             "or ingested before it was kept)")
    is_byok = models.BooleanField(default=False)
    latency = models.IntegerField(null=True, help_text="ms to first token")
    generation_time = models.IntegerField(null=True, help_text="ms")
    status = models.SmallIntegerField(default=200)
    finish_reason = models.CharField(max_length=40, blank=True)
    streamed = models.BooleanField(null=True)
    cancelled = models.BooleanField(null=True)
    num_media_prompt = models.IntegerField(null=True)
    num_media_completion = models.IntegerField(null=True)
    num_search_results = models.IntegerField(null=True)
    provider_responses = models.JSONField(null=True)
    end_user = models.CharField(max_length=128, blank=True, default="", help_text="the gateway's end-user id")
    session_id = models.CharField(max_length=128, blank=True, default="")
    tags = models.CharField(max_length=TAGS_MAX_LENGTH, blank=True, default="",
                            help_text='",a,b,": the sorted tags between commas; "" for none')

    class Meta:
        indexes = [models.Index(fields=["account", "-created_at", "-id"], name="generation_account_time")]

    def __str__(self) -> str:
        return self.id

    @property
    def tokens(self) -> int:
        return self.tokens_prompt + self.tokens_completion

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 300


class GenerationKey(models.Model):
    """Every generation id ingested, with its `created_at`.

    The exactly-once gate: ingestion inserts a chunk's ids here first (a plain insert, or `ON
    CONFLICT (id) DO NOTHING` once a duplicate shows up: analytics.ingest.loader) and only the ids that
    went in become generations and reach the rollups. Narrow and
    not partitioned, so one unique index covers every month; retention deletes the keys of dropped
    months. It also finds a generation's month for the detail page (partition pruning).
    """

    id = models.CharField(max_length=128, primary_key=True)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.id


class _Usage(models.Model):
    """The counters every rollup adds up."""

    requests = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    tokens_prompt = models.BigIntegerField(default=0)
    tokens_completion = models.BigIntegerField(default=0)
    tokens_reasoning = models.BigIntegerField(default=0)
    tokens_cached = models.BigIntegerField(default=0)
    byok_tokens = models.BigIntegerField(default=0)
    spend_units = models.BigIntegerField(default=0, help_text="BYOK excluded")
    # Requests Tokengrid could not price (Generation.CostSource.UNPRICED): in `requests` and the tokens,
    # not in `spend_units`; db_default keeps the column's DEFAULT 0 (added without a table rewrite).
    unpriced_requests = models.BigIntegerField(default=0, db_default=0, help_text="not priced: no catalog price")
    # Their tokens, so that a price per 1M tokens (spend / priced tokens) leaves them out of both.
    unpriced_tokens = models.BigIntegerField(default=0, db_default=0,
                                             help_text="prompt + completion tokens of the unpriced requests")

    class Meta:
        abstract = True


class _EndpointUsage(_Usage):
    """What the endpoint rollups count besides requests: the attempts made of each provider and the
    latency sums.

    `attempts` count every entry of provider_responses against the provider that was tried (or the
    final status when there are none), so a provider can have attempts in a period where it served
    no request. A 429 answer is `rate_limited_attempts`, not a failure: uptime (as OpenRouter's)
    leaves rate limiting out, `(attempts - rate_limited - failed) / (attempts - rate_limited)`;
    `failed_attempts` are the other non-2xx answers. (Rows rolled up before migration 0009 counted
    their 429s as failed.)
    """

    model = _ref(Model)
    provider = _ref(Provider)
    attempts = models.BigIntegerField(default=0)
    failed_attempts = models.BigIntegerField(default=0)
    rate_limited_attempts = models.BigIntegerField(default=0)
    # What the capability leaderboards rank (analytics.rankings.capabilities): requests that ended in a
    # tool call, images (media) sent in prompts, requests whose prompt passed 32k / 128k tokens.
    tool_call_requests = models.BigIntegerField(default=0)
    media_inputs = models.BigIntegerField(default=0)
    long_32k_requests = models.BigIntegerField(default=0)
    long_128k_requests = models.BigIntegerField(default=0)
    latency_sum = models.BigIntegerField(default=0)
    latency_count = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class EndpointHour(_EndpointUsage):
    """Per hour x model x provider: public rankings, model and provider pages, uptime."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["hour", "model", "provider"], name="endpointhour_key")]
        indexes = [models.Index(fields=["model", "hour"]), models.Index(fields=["provider", "hour"])]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h model {self.model_id} provider {self.provider_id}"


class EndpointDay(_EndpointUsage):
    """Per day x model x provider: the same counters as EndpointHour, for week/month/all windows.

    Pages over long windows read ~24x fewer rows here than in the hourly rollup.
    """

    day = models.DateField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "model", "provider"], name="endpointday_key")]
        indexes = [models.Index(fields=["model", "day"]), models.Index(fields=["provider", "day"])]

    def __str__(self) -> str:
        return f"{self.day} model {self.model_id} provider {self.provider_id}"


class EndpointHistogram(models.Model):
    """Per day x model x provider x metric x bucket: mergeable latency/throughput histograms.

    Buckets are log-spaced (`analytics.histograms`); any union of rows yields p50/p90 within 5%.
    """

    class Metric(models.IntegerChoices):
        LATENCY = 1
        THROUGHPUT = 2

    day = models.DateField()
    model = _ref(Model)
    provider = _ref(Provider)
    metric = models.SmallIntegerField(choices=Metric.choices)
    bucket = models.SmallIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "model", "provider", "metric", "bucket"],
                                               name="endpointhistogram_key")]
        indexes = [models.Index(fields=["model", "day"], name="endpointhistogram_model_day")]

    def __str__(self) -> str:
        return f"{self.day} model {self.model_id} provider {self.provider_id} bucket {self.bucket}"


class AppDay(_Usage):
    """Per day x app x model: app pages, top and trending apps, category rankings."""

    day = models.DateField()
    app = _ref(App)
    model = _ref(Model)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "app", "model"], name="appday_key")]
        indexes = [models.Index(fields=["app", "day"]),
                   models.Index(fields=["model", "day"], name="appday_model_day")]

    def __str__(self) -> str:
        return f"{self.day} app {self.app_id} model {self.model_id}"


class _AccountUsage(_Usage):
    """The counters and latency sums every account rollup holds, per account."""

    account = _ref(Account)
    latency_sum = models.BigIntegerField(default=0)
    latency_count = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class _AccountSlice(_AccountUsage):
    """The key columns of the account rollups by model, provider, key and app; `api_key_id`, `app_id` 0 for none.

    End users and tags are not among them: at a router's density (thousands of end users per busy
    account) a row per day x model x provider x key x app x user x tags is nearly a row per request
    (8.3M rows for 10M generations before migration 0014: `generate_traffic --events 10000000 --accounts
    100000` ingested by `bench/ingest.py --file`). Users and tags have rollups of their own
    (AccountUserDay, AccountTagDay); a slice that crosses them with another dimension, or asks for
    them by hour, is summed from the generation table (analytics.usage.sources).
    """

    model = _ref(Model)
    provider = _ref(Provider)
    api_key_id = models.BigIntegerField(default=0)
    app_id = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class AccountDay(_AccountSlice):
    """Per day x account x model x provider x api key x app: account pages over days and weeks, usage CSV.

    The same counters as AccountHour; periods of days read ~24x fewer rows here.
    """

    pk = models.CompositePrimaryKey("account", "day", "model", "provider", "api_key_id", "app_id")
    day = models.DateField()

    def __str__(self) -> str:
        return f"{self.day} account {self.account_id} model {self.model_id}"


class AccountHour(_AccountSlice):
    """Per hour x account x model x provider x api key x app: account pages by hour (24 h, hourly activity)."""

    pk = models.CompositePrimaryKey("account", "hour", "model", "provider", "api_key_id", "app_id")
    hour = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h account {self.account_id} model {self.model_id}"


class AccountUserDay(_AccountUsage):
    """Per day x account x end user ("" for requests without one): top users, the explorer and usage CSV by user."""

    pk = models.CompositePrimaryKey("account", "day", "end_user")
    day = models.DateField()
    end_user = models.CharField(max_length=128, default="")

    def __str__(self) -> str:
        return f"{self.day} account {self.account_id} user {self.end_user!r}"


class AccountTagDay(_AccountUsage):
    """Per day x account x tag set (",a,b," as on Generation, "" for none): top tags, by tag and tag filters.

    Keyed by the set, not by each tag, so a request tagged a and b is one row's worth: a tag
    grouping splits the sets into tags, and "any of these tags" or "Other" counts it once
    (analytics.usage.grouping). An account uses few tag sets.
    """

    pk = models.CompositePrimaryKey("account", "day", "tags")
    day = models.DateField()
    tags = models.CharField(max_length=TAGS_MAX_LENGTH, default="")

    def __str__(self) -> str:
        return f"{self.day} account {self.account_id} tags {self.tags!r}"


class Reprice(models.Model):
    """Staff's repricing of an endpoint's generations over [start, end) at one price of its history.

    Planned first (a dry run: `RepriceAccount` rows with each account's figures), then applied once
    (analytics.repricing): the generations, every rollup holding their spend and one ledger entry per
    account. Gateway-priced and insurance rows are never repriced.
    """

    class Status(models.TextChoices):
        PLANNED = "planned"
        APPLYING = "applying", "applying (interrupted: apply again to finish)"
        APPLIED = "applied"

    model = models.ForeignKey(Model, on_delete=models.PROTECT, related_name="+")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    price = models.ForeignKey(EndpointPrice, on_delete=models.PROTECT, related_name="+",
                              help_text="the price applied to every repriced generation")
    start = models.DateTimeField()
    end = models.DateTimeField(help_text="exclusive")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLANNED)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    excluded_gateway = models.BigIntegerField(default=0, help_text="rows in range priced by the gateway (untouched)")
    excluded_insurance = models.BigIntegerField(default=0, help_text="failed or empty rows in range ($0, untouched)")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"reprice {self.pk} of model {self.model_id} at provider {self.provider_id} from {self.start:%Y-%m-%d}"


class RepriceAccount(models.Model):
    """One account's figures of a reprice: planned by the dry run, and what applying it changed.

    Spend is in units (1e-10 USD), BYOK excluded as in the rollups; `requests` counts every
    generation whose cost, price or source changes (BYOK ones too: their cost is repriced, their spend is 0).
    """

    reprice = models.ForeignKey(Reprice, on_delete=models.CASCADE, related_name="accounts")
    account = _ref(Account)
    requests = models.BigIntegerField(default=0)
    old_units = models.BigIntegerField(default=0)
    new_units = models.BigIntegerField(default=0)
    applied_requests = models.BigIntegerField(default=0)
    applied_old_units = models.BigIntegerField(default=0)
    applied_new_units = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["reprice", "account"]
        constraints = [models.UniqueConstraint(fields=["reprice", "account"], name="repriceaccount_key")]

    def __str__(self) -> str:
        return f"reprice {self.reprice_id} account {self.account_id}"

    @property
    def difference_units(self) -> int:
        return self.new_units - self.old_units

    @property
    def applied_difference_units(self) -> int:
        return self.applied_new_units - self.applied_old_units


# The catalog page's week: derived from the rollups by the rankings task, not by ingestion.


class ModelWeek(models.Model):
    """Per model: tokens and the p50 throughput and latency buckets of the catalog's week (the UTC days
    from 7 days before `as_of`), as the last rankings refresh left them.

    Written only by analytics.rankings.catalog.model_weeks_refresh (the rollups task, one statement
    over the rollups), so the catalog page filters, sorts and pages in SQL instead of merging the
    week's histograms on every request. A model without traffic that week has no row.
    """

    model = models.OneToOneField(Model, on_delete=models.CASCADE, primary_key=True, related_name="week")
    tokens = models.BigIntegerField(default=0)
    throughput_p50_bucket = models.SmallIntegerField(null=True, help_text="analytics.histograms bucket")
    latency_p50_bucket = models.SmallIntegerField(null=True, help_text="analytics.histograms bucket")
    as_of = models.DateTimeField(help_text="the end of the hour the week ran to")

    def __str__(self) -> str:
        return f"model {self.model_id} week to {self.as_of:%Y-%m-%d %H}h"
