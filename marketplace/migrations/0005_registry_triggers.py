"""Deleting, emptying or renaming what ingestion registers moves the registry's version (core.id_cache):
every worker then forgets the ids it cached."""
from django.db import migrations


def _triggers(table: str, columns: tuple[str, ...]) -> tuple[str, str]:
    """The registry triggers of `table` (core.id_cache): a copy of its own in billing 0014 and marketplace 0005,
    as migrations keep what they ran."""
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
    create = (f"CREATE TRIGGER {table}_registry_delete BEFORE DELETE OR TRUNCATE ON {table}"
              f" FOR EACH STATEMENT EXECUTE FUNCTION core_registry_bump();"
              f" CREATE TRIGGER {table}_registry_rename AFTER UPDATE OF {', '.join(columns)} ON {table}"
              f" FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION core_registry_bump()")
    drop = (f"DROP TRIGGER IF EXISTS {table}_registry_delete ON {table};"
            f" DROP TRIGGER IF EXISTS {table}_registry_rename ON {table}")
    return create, drop


class Migration(migrations.Migration):

    dependencies = [
        ("marketplace", "0004_pending_price_change"),
        ("core", "0002_registry_version"),
    ]

    operations = [
        migrations.RunSQL(*_triggers('marketplace_model', ('slug',))),
        migrations.RunSQL(*_triggers('marketplace_provider', ('name',))),
        migrations.RunSQL(*_triggers('marketplace_app', ('origin',))),
    ]
