"""Tokengrid settings: every value from the environment, with a safe local default.

Split by concern: `security` (secret key, debug, hosts), `base` (Django itself),
`services` (database, cache, Celery broker, email) and `product` (ingest, billing knobs).
"""
from .base import *  # noqa: F403
from .product import *  # noqa: F403
from .security import *  # noqa: F403
from .services import *  # noqa: F403
