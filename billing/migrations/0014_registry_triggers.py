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
        ("billing", "0013_auto_topup_limits"),
        ("core", "0002_registry_version"),
    ]

    operations = [
        migrations.RunSQL(*_triggers('billing_account', ('external_id',))),
        migrations.RunSQL(*_triggers('billing_apikey', ('account_id', 'external_id'))),
    ]
