"""Product knobs: ingestion and billing."""
from .env import env_bool, env_int, env_str

INGEST_TOKEN = env_str("INGEST_TOKEN")
# The gateway's token for the spend check and reservations (/api/v1/spend/…); empty: only account tokens.
GATEWAY_TOKEN = env_str("GATEWAY_TOKEN")
# An open reservation the gateway neither logged nor released stops holding after this long.
SPEND_RESERVATION_SECONDS = env_int("SPEND_RESERVATION_SECONDS", 600)
# Ended reservations (settled, released, refused, expired) are deleted after this many days; the
# generation log shows a settled one's hold until then.
SPEND_RESERVATION_RETENTION_DAYS = env_int("SPEND_RESERVATION_RETENTION_DAYS", 35)
INGEST_CHUNK_LINES = env_int("INGEST_CHUNK_LINES", 50_000)
INGEST_MAX_BODY_BYTES = env_int("INGEST_MAX_BODY_BYTES", 64 * 1024 * 1024)
INGEST_MAX_DECOMPRESSED_BYTES = env_int("INGEST_MAX_DECOMPRESSED_BYTES", 512 * 1024 * 1024)
INGEST_MAX_LINE_BYTES = env_int("INGEST_MAX_LINE_BYTES", 1024 * 1024)
# A batch with no progress for this long has its undone chunks queued again (their messages were
# lost, e.g. a broker restarted without persistence). Longer than a chunk ever takes.
INGEST_STALLED_SECONDS = env_int("INGEST_STALLED_SECONDS", 600)
# A finished batch's stored file and decompressed copy are removed when it finishes; a failed batch's stay
# this long for a retry from /ops/ingest/, and are then removed with anything else left in the store or in
# var/ingest/ (refused uploads).
INGEST_FILE_RETENTION_DAYS = env_int("INGEST_FILE_RETENTION_DAYS", 7)
# Where a batch's bytes wait for the workers (analytics.ingest.store): `postgres` (pieces in the database,
# the default: workers need nothing but the database and the broker) or `storage` (the `ingest` entry of
# STORAGES: S3 when INGEST_S3_BUCKET is set, config/settings/base.py).
INGEST_S3_BUCKET = env_str("INGEST_S3_BUCKET")
INGEST_STORE = env_str("INGEST_STORE", "storage" if INGEST_S3_BUCKET else "postgres")
# The size of a stored piece and of a read: a few MB (one chunk of 50k lines spans a handful).
INGEST_PIECE_BYTES = env_int("INGEST_PIECE_BYTES", 4 * 1024 * 1024)

# An account's usage pages (overview, activity) viewed in this many seconds are prewarmed after
# each of its ingested chunks; the others are computed on their first view.
USAGE_WATCH_SECONDS = env_int("USAGE_WATCH_SECONDS", 3600)

# The public API (rankings, a model's endpoints, the daily dataset): requests per client address, as
# DRF reads a rate ("30/min": OpenRouter's data API allows 30 a minute); answers may be cached this long.
PUBLIC_API_RATE = env_str("PUBLIC_API_RATE", "30/min")
PUBLIC_API_MAX_AGE = env_int("PUBLIC_API_MAX_AGE", 60)

STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
# Tests and development only: Stripe's API at another address (the tests' local Stripe stand-in);
# empty is Stripe itself. STRIPE_MAX_NETWORK_RETRIES: the library's own retries (same idempotency key).
STRIPE_API_BASE = env_str("STRIPE_API_BASE")
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2)

# Credits (billing): amounts in USD as decimal strings, never floats.
BILLING_FEE_PERCENT = env_str("BILLING_FEE_PERCENT", "5.5")
BILLING_FEE_MIN_USD = env_str("BILLING_FEE_MIN_USD", "0.80")
BILLING_PURCHASE_MIN_USD = env_str("BILLING_PURCHASE_MIN_USD", "5")
BILLING_PURCHASE_MAX_USD = env_str("BILLING_PURCHASE_MAX_USD", "10000")
BILLING_REFUND_WINDOW_DAYS = env_int("BILLING_REFUND_WINDOW_DAYS", 30)
# "demo" succeeds at once; "stripe" needs STRIPE_SECRET_KEY; empty: stripe when the key is set, else demo.
BILLING_GATEWAY = env_str("BILLING_GATEWAY")
# Auto top-up that cannot run away: at least this long between two automatic charges, and it
# turns itself off after this many failed charges in a row (a final decline turns it off at once).
BILLING_AUTO_TOPUP_MIN_INTERVAL_MINUTES = env_int("BILLING_AUTO_TOPUP_MIN_INTERVAL_MINUTES", 60)
BILLING_AUTO_TOPUP_MAX_FAILURES = env_int("BILLING_AUTO_TOPUP_MAX_FAILURES", 3)

# Sign-in: after this many failures a username (or a client address) is refused for a while.
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)
LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("LOGIN_MAX_FAILURES_PER_ADDRESS", 50)
LOGIN_LOCK_SECONDS = env_int("LOGIN_LOCK_SECONDS", 15 * 60)

# Generations a reprice changes per transaction: a changed row moves seven rollups by random index
# probes, so 5,000 keep a transaction, and what ingestion may wait on it, to a chunk's few seconds
# (`bench/reprice.py --database tokengrid_10m --batch-rows N`: at 5,000 the longest took 4.8 s, at
# 50,000 a batch held rows for 28-67 s).
REPRICE_BATCH_ROWS = env_int("REPRICE_BATCH_ROWS", 5000)

# Raw generations (PostgreSQL, monthly partitions): months kept, counted back from the current one;
# a month that ended more than this long ago is dropped whole (rollups are kept forever). 0: keep all.
GENERATION_RETENTION_MONTHS = env_int("GENERATION_RETENTION_MONTHS", 13)
# Partitions made ahead by the upkeep task: this month and the next N.
GENERATION_PARTITIONS_AHEAD = env_int("GENERATION_PARTITIONS_AHEAD", 3)

# Alerts (billing.alert_delivery): webhook and Slack URLs must be https and resolve only to public
# addresses, so that no alert is posted into the operator's network (request forgery); on: http and
# private, loopback and link-local addresses are allowed too (tests, local development).
ALERT_ALLOW_PRIVATE_URLS = env_bool("ALERT_ALLOW_PRIVATE_URLS", False)
# A channel is paused after this many failed attempts in a row (or when an event's retries run out).
ALERT_CHANNEL_PAUSE_AFTER = env_int("ALERT_CHANNEL_PAUSE_AFTER", 20)
# Where people reach Tokengrid: the links in alert webhooks, Slack messages and e-mails.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")
