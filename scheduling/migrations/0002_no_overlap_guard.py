"""The database's guarantee that no resource holds two overlapping active legs.

PostgreSQL: one exclusion constraint per resource column over tstzrange(starts_at, ends_at,
'[)'), so back-to-back legs are allowed; btree_gist lets the integer column share the GiST
index. SQLite has no EXCLUDE: BEFORE INSERT/UPDATE triggers raise the same IntegrityError.
Kept out of Meta.constraints because EXCLUDE does not parse on SQLite.
"""

from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations

TABLE = "scheduling_allocation"
COLUMNS = ("patient", "room", "equipment", "staff", "bay")


def constraint_name(column: str) -> str:
    return f"scheduling_allocation_{column}_no_overlap"


def postgres_sql(column: str) -> str:
    return (
        f"ALTER TABLE {TABLE} ADD CONSTRAINT {constraint_name(column)} EXCLUDE USING gist "
        f"({column}_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) "
        f"WHERE (is_active AND {column}_id IS NOT NULL)"
    )


def sqlite_triggers(column: str) -> list[str]:
    name = constraint_name(column)
    clash = (
        f"SELECT 1 FROM {TABLE} AS other WHERE other.is_active AND other.{column}_id = NEW.{column}_id "
        "AND other.starts_at < NEW.ends_at AND NEW.starts_at < other.ends_at"
    )
    return [
        f"CREATE TRIGGER {name}_insert BEFORE INSERT ON {TABLE} "
        f"WHEN NEW.is_active AND NEW.{column}_id IS NOT NULL AND EXISTS ({clash}) "
        f"BEGIN SELECT RAISE(ABORT, '{name}'); END",
        f"CREATE TRIGGER {name}_update BEFORE UPDATE ON {TABLE} "
        f"WHEN NEW.is_active AND NEW.{column}_id IS NOT NULL AND EXISTS ({clash} AND other.id <> NEW.id) "
        f"BEGIN SELECT RAISE(ABORT, '{name}'); END",
    ]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for column in COLUMNS:
        if vendor == "postgresql":
            schema_editor.execute(postgres_sql(column))
        elif vendor == "sqlite":
            for statement in sqlite_triggers(column):
                schema_editor.execute(statement)
        else:
            raise RuntimeError(f"No overlap guard for the {vendor} database; use PostgreSQL or SQLite.")


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for column in COLUMNS:
        if vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT IF EXISTS {constraint_name(column)}")
        elif vendor == "sqlite":
            for suffix in ("insert", "update"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {constraint_name(column)}_{suffix}")


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0001_initial")]

    operations = [
        BtreeGistExtension(),
        migrations.RunPython(forwards, backwards),
    ]
