"""The Redis cache backend: Django's, with one redis.Redis per connection pool."""
import os

import pytest
import redis

from core.redis_cache import RedisCache

# The test suite's own Redis database (10); the benchmarks' and other suites' are left alone.
LOCATION = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/10"


def _reachable() -> bool:
    try:
        return redis.Redis.from_url(LOCATION, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False


@pytest.mark.skipif(not _reachable(), reason="needs a Redis server")
def test_every_command_goes_through_one_client_and_behaves_as_djangos():
    cache = RedisCache(LOCATION, {"KEY_PREFIX": "test-redis-cache"})
    cache.delete_many(["k", "n"])
    client = cache._cache.get_client()
    assert cache._cache.get_client(write=True) is client  # one server: one pool, one client
    cache.set("k", {"a": [1, 2]}, 30)
    assert cache.get("k") == {"a": [1, 2]}
    assert cache.add("k", 2, 30) is False
    assert cache.add("n", 1, 30) is True
    assert cache.incr("n") == 2
    assert cache.get_many(["k", "missing"]) == {"k": {"a": [1, 2]}}
    cache.delete_many(["k", "n"])
    assert cache.get("k") is None
    assert cache._cache.get_client() is client
