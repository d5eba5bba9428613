"""Counters of the sign-in throttle, for when the shared cache cannot increment atomically."""
from django.db import models


class LoginCounter(models.Model):
    """Attempts counted under one name (a username or a client address) until `expires` (epoch seconds)."""

    name = models.CharField(max_length=100, primary_key=True)
    count = models.IntegerField()
    expires = models.FloatField(db_index=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.count}"


class RegistryVersion(models.Model):
    """One row: a random number that changes whenever a registered name's id may have (core.id_cache).

    Set by triggers on the registered tables (a row deleted or renamed, the table emptied), never by
    Python; workers compare it with the one their cached ids are of.
    """

    id = models.SmallIntegerField(primary_key=True, default=1)
    version = models.BigIntegerField()

    def __str__(self) -> str:
        return f"registry version {self.version}"
