"""``manage.py db_restore PATH --yes``: make a backup written by ``db_backup`` the whole database again.

The file is checked before anything is touched: that it is a backup at all, of the configured
engine and of this application, and on SQLite that it passes SQLite's integrity check. Without
``--yes`` the command stops there, so a slip of the keyboard cannot wipe a clinic's schedule.

SQLite: the backup is copied beside the live file and renamed over it in one step, and the
live file's WAL and shared-memory files are removed with it, since replaying the old WAL into the
new file would corrupt it. That is only safe while no other process has the database open, so the
command first takes the database for itself and refuses if the web server or a worker still holds it.

PostgreSQL: ``pg_restore --clean --if-exists --no-owner --single-transaction``, so the database
is either wholly the backup or, if anything fails, exactly as it was.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS
from django.db.backends.base.base import BaseDatabaseWrapper

from core.management.commands.db_backup import (
    ENGINE_NAMES,
    PG_LOCK_WAIT,
    SIDE_FILES,
    SQLITE,
    backup_engine,
    count_rows,
    database,
    engine_of,
    format_counts,
    online_backup,
    pg_archive_header,
    pg_connect,
    pg_conninfo,
    publish,
    reported_tables,
    run_pg_tool,
    sqlite_connect,
    sqlite_path,
    sqlite_problems,
    staging_file,
)

Warn = Callable[[str], object]
IN_USE = "Stop the web server, the Celery worker and beat, then run the restore again."


def verify_sqlite_backup(path: Path) -> dict[str, int]:
    """Check that ``path`` is a whole, undamaged SQLite backup of this application; its row counts."""
    try:
        with closing(sqlite_connect(path, "ro")) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for table in ("django_migrations", *(table for _, table in reported_tables())):
                if table not in tables:
                    raise CommandError(
                        f"{path} is an SQLite database, but not a backup of this application (it has no {table})."
                    )
            problems = sqlite_problems(db)
            if problems:
                raise CommandError(f"{path} is damaged; SQLite's integrity check reports: " + "; ".join(problems[:5]))
            return count_rows(db.cursor())
    except sqlite3.Error as exc:
        raise CommandError(f"{path} cannot be read as an SQLite database ({exc}).") from None


@contextmanager
def sole_use(target: Path, warn: Warn) -> Iterator[None]:
    """Hold the SQLite database at ``target`` so that no other connection can use it, or refuse.

    Switching a WAL database back to rollback journaling needs every other connection to be
    closed (each open connection, idle or not, holds a lock in the shared-memory file), so it
    doubles as the test that nobody else has the file open; it also folds the WAL into the main
    file and deletes it. An exclusive transaction then keeps newcomers out until the new file is
    in place. A file SQLite cannot read at all is being replaced because it is broken, so it is
    replaced without the test.
    """
    if not target.exists():
        yield
        return
    db = sqlite_connect(target, "rw")
    try:
        try:
            mode = db.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
            if str(mode).lower() != "delete":
                raise CommandError(f"The database {target} is in use by another process. {IN_USE}")
            db.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as exc:
            raise CommandError(f"The database {target} is in use by another process ({exc}). {IN_USE}") from None
        except sqlite3.DatabaseError as exc:
            warn(f"The current database file cannot be read ({exc}); replacing it as it is.")
        yield
    finally:
        db.close()


def keep_access(current: Path, replacement: Path) -> None:
    """Give the replacement the current file's permissions and, where allowed, its owner, so
    the web server can still open the database after a restore run by another user."""
    try:
        status = current.stat()
    except FileNotFoundError:
        return
    os.chmod(replacement, stat.S_IMODE(status.st_mode))
    if hasattr(os, "chown"):
        with suppress(PermissionError):
            os.chown(replacement, status.st_uid, status.st_gid)


def replace_sqlite(source: Path, target: Path, warn: Warn) -> None:
    """Make ``target`` a copy of the SQLite backup ``source`` in one atomic rename."""
    if not target.parent.is_dir():
        raise CommandError(f"Directory {target.parent} does not exist.")
    with staging_file(target, "restore") as staging:
        try:
            online_backup(source, staging)
            with closing(sqlite_connect(staging, "ro")) as copy:
                problems = sqlite_problems(copy, quick=True)
        except sqlite3.Error as exc:
            raise CommandError(f"The backup could not be copied: {exc}.") from None
        if problems:
            raise CommandError("The copied backup failed SQLite's check: " + "; ".join(problems[:5]))
        with sole_use(target, warn):
            keep_access(target, staging)
            publish(staging, target)
            for suffix in SIDE_FILES:
                Path(f"{target}{suffix}").unlink(missing_ok=True)


def restore_postgres(source: Path, settings_dict: Mapping[str, Any]) -> None:
    """Replace the configured database's objects with those in the archive, all or nothing.

    A lock timeout turns a wait on a session that still holds a table into an error that says
    so, instead of a restore that hangs.
    """
    run_pg_tool(
        "pg_restore",
        [
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            "--no-password",
            f"--dbname={pg_conninfo(settings_dict, extra_options=f'-c lock_timeout={PG_LOCK_WAIT}')}",
            str(source),
        ],
        settings_dict,
    )


def restored_counts(connection: BaseDatabaseWrapper, engine: str) -> dict[str, int]:
    """Row counts read from the restored database over a connection of its own, so that the
    command leaves Django's connection closed, as a fresh process would find it."""
    try:
        if engine == SQLITE:
            with closing(sqlite_connect(sqlite_path(connection), "ro")) as db:
                return count_rows(db.cursor())
        with closing(pg_connect(connection.settings_dict)) as pg, pg.cursor() as cursor:
            return count_rows(cursor)
    except (sqlite3.Error, psycopg.Error) as exc:
        raise CommandError(f"The database was restored, but could not be read back: {exc}.") from None


def describe_database(connection: BaseDatabaseWrapper, engine: str) -> str:
    if engine == SQLITE:
        return f"the SQLite database {sqlite_path(connection)}"
    settings_dict = connection.settings_dict
    where = f" on {settings_dict['HOST']}" if settings_dict.get("HOST") else ""
    return f"the PostgreSQL database {settings_dict['NAME']}{where}"


class Command(BaseCommand):
    help = (
        "Replace the whole database with a backup made by db_backup. Stop the web server, "
        "the Celery worker and beat first. Needs --yes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="Backup file written by db_backup.")
        parser.add_argument("--yes", action="store_true", help="Confirm that the current database is to be replaced.")
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="Database alias to restore into (default: %(default)s)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        connection = database(options["database"])
        engine = engine_of(connection)
        source = Path(options["path"]).expanduser()
        if not source.exists():
            raise CommandError(f"There is no backup file at {source}.")
        if not source.is_file():
            raise CommandError(f"{source} is not a file.")
        source = source.resolve()
        found = backup_engine(source)
        if found is None:
            raise CommandError(
                f"{source} is not a backup made by db_backup "
                "(neither an SQLite database nor a pg_dump custom-format archive)."
            )
        if found != engine:
            raise CommandError(
                f"{source} was made from {ENGINE_NAMES[found]}, but this installation runs on {ENGINE_NAMES[engine]}."
            )
        target_name = describe_database(connection, engine)
        if engine == SQLITE:
            target = sqlite_path(connection)
            if source == target:
                raise CommandError(f"{source} is the live database itself, not a backup.")
            self.stdout.write(
                f"Backup {source}: SQLite integrity check ok; {format_counts(verify_sqlite_backup(source))}."
            )
        else:
            header = pg_archive_header(source, connection.settings_dict)
            made = f" of database {header['dbname']}" if "dbname" in header else ""
            when = f", made {header['created']}" if "created" in header else ""
            self.stdout.write(f"Backup {source}: pg_dump archive{made}{when}.")
        if not options["yes"]:
            raise CommandError(
                f"Restoring replaces everything in {target_name} with this backup. "
                "Nothing has been changed; run again with --yes to go ahead."
            )
        connection.close()
        if engine == SQLITE:
            replace_sqlite(source, target, warn=lambda message: self.stderr.write(self.style.WARNING(message)))
        else:
            restore_postgres(source, connection.settings_dict)
        counts = restored_counts(connection, engine)
        self.stdout.write(self.style.SUCCESS(f"Restored {target_name} from {source}: {format_counts(counts)}."))
        self.stdout.write(
            "If the backup was made by an older version of the application, run `python manage.py migrate` now."
        )
