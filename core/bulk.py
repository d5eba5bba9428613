"""Get-or-create in bulk, safe when several processes register the same keys at once."""
from collections.abc import Callable, Iterable

from django.db import models


def ids_by_key(model: type[models.Model], field: str, wanted: Iterable[str],
               build: Callable[[set[str]], list[models.Model]]) -> dict[str, int]:
    """Return {key: pk} for `wanted`, creating the missing rows with `build(missing)`.

    `bulk_create(ignore_conflicts=True)` then a second select: a row another process inserted
    meanwhile is found instead of raising.
    """
    wanted = set(wanted)
    if not wanted:
        return {}
    found = dict(model.objects.filter(**{f"{field}__in": wanted}).values_list(field, "pk"))
    missing = wanted - found.keys()
    if missing:
        model.objects.bulk_create(build(missing), ignore_conflicts=True)
        found.update(model.objects.filter(**{f"{field}__in": missing}).values_list(field, "pk"))
    return found
