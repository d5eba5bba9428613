"""Django's Redis cache with one client per connection pool.

Django's RedisCacheClient builds a new redis.Redis for every command, and redis-py fills ~170
response callbacks in each: on a prewarmed rankings page (a dozen cache reads) that cost more
than the reads' round trips. redis.Redis is safe to share between threads over its pool, and the
pool itself starts afresh in a forked process, so one client per pool serves every command.
"""
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class SharedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))  # pools live as long as this object (RedisCacheClient._pools)
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient
