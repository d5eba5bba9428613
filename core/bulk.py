"""Sets of rows in few statements: ids as one parameter, get-or-create in bulk (safe when several
processes register the same keys at once)."""
from collections.abc import Callable, Iterable

from django.db import connection, models
from django.db.models.expressions import RawSQL


def ids_match_sql(column: str, ids: Iterable[int]) -> tuple[str, list]:
    """`column` is one of the given ids, as raw SQL with one parameter whatever their number.

    A chunk debits tens of thousands of accounts: one parameter keeps the statement the same size,
    and PostgreSQL parses one array instead of 50,000 placeholders, and plans with its real length
    (`= ANY`).
    """
    return f"{column} = ANY(%s::bigint[])", [sorted({int(i) for i in ids})]


def id_set(ids: Iterable[int]) -> RawSQL:
    """The given ids as a subquery with one parameter, for the ORM: `filter(account_id__in=id_set(ids))`."""
    return RawSQL("SELECT unnest(%s::bigint[])", [sorted({int(i) for i in ids})])


def _found(model: type[models.Model], field: str, keys: Iterable[str]) -> dict[str, int]:
    """{key: pk} of the rows that exist: one statement with the keys as one array parameter (not an IN
    list of a chunk's 20,000 placeholders for the server to parse and plan)."""
    column = model._meta.get_field(field).column
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column}, {model._meta.pk.column} FROM {model._meta.db_table}"  # noqa: S608
                       f" WHERE {column} = ANY(%s)", [sorted(keys)])
        return dict(cursor.fetchall())


def ids_by_key(model: type[models.Model], field: str, wanted: Iterable[str],
               build: Callable[[set[str]], list[models.Model]] | None = None) -> dict[str, int]:
    """Return {key: pk} for `wanted`, creating the missing rows with `build(missing)` (default: rows with
    only `field` set, by `insert_ignoring_conflicts`).

    Inserted ignoring conflicts, then a second select: a row another process inserted meanwhile is
    found instead of raising. A constant number of statements.
    """
    wanted = set(wanted)
    if not wanted:
        return {}
    found = _found(model, field, wanted)
    missing = wanted - found.keys()
    if missing:
        if build is None:
            insert_ignoring_conflicts(model, (field,), [(key,) for key in sorted(missing)])
        else:
            model.objects.bulk_create(build(missing), ignore_conflicts=True, batch_size=5000)
        found.update(_found(model, field, missing))
    return found


def insert_ignoring_conflicts(model: type[models.Model], columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert `rows` (values of the fields `columns`, every other field its default) in their order, skipping
    any that a unique constraint already holds.

    One statement whatever the number of rows, each column one array parameter: a router's chunk
    registers tens of thousands of accounts and keys, and `bulk_create` builds and prepares a model
    instance per row (the stage that registers went 21.9 -> 11.5 µs a record: `bench/ingest_profile.py
    --accounts` before and after, README "Measured figures"). The
    other fields' values are those of one unsaved instance (defaults, `auto_now_add`), prepared once.
    """
    if not rows:
        return
    varying = [model._meta.get_field(name) for name in columns]
    constant = [f for f in model._meta.concrete_fields if f not in varying and not (f.primary_key and f.auto_created)]
    per_row = [f.name for f in constant if f.has_default() and callable(f.default)]
    if per_row:  # one prototype's value would be every row's (a uuid, a token): not what the model means
        raise TypeError(f"{model.__name__}: {', '.join(per_row)} take a default per row; give them in `columns`")
    prototype = model()
    names = ", ".join(f.column for f in (*varying, *constant))
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in varying)
    constants = "".join(f", %s::{f.db_type(connection)}" for f in constant)
    columns_of_v = ", ".join(f"c{i}" for i in range(len(varying)))
    order = ", ".join(str(i + 1) for i in range(len(varying)))
    # In the statement's order: the constants of the select list, then the arrays of the FROM.
    params = [f.get_db_prep_save(f.pre_save(prototype, add=True), connection) for f in constant]
    params += [[row[i] for row in rows] for i in range(len(varying))]
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {model._meta.db_table} ({names}) SELECT {columns_of_v}{constants}"  # noqa: S608
                       f" FROM unnest({arrays}) AS v({columns_of_v}) ORDER BY {order} ON CONFLICT DO NOTHING", params)
