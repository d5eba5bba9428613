"""Counters of the sign-in throttle, for when the shared cache cannot increment atomically."""
from django.db import models


class LoginCounter(models.Model):
    """Attempts counted under one name (a username or a client address) until `expires` (epoch seconds)."""

    name = models.CharField(max_length=100, primary_key=True)
    count = models.IntegerField()
    expires = models.FloatField(db_index=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.count}"
