"""``manage.py db_backup PATH``: the whole database in one file, taken while the clinic keeps booking.

SQLite is copied with SQLite's online backup API inside one read transaction, so the copy is the
database as of one instant even while other processes commit bookings. PostgreSQL is dumped by
``pg_dump --format=custom`` in the very snapshot the reported row counts were read from. Either way
the file appears at PATH only once it is complete and checked: a crash or a full disk halfway
leaves whatever was at PATH before untouched.

The helpers here are shared with ``db_restore``, which reads the same files back.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from django.utils.connection import ConnectionDoesNotExist
from psycopg.conninfo import make_conninfo

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
ENGINE_NAMES = {SQLITE: "SQLite", POSTGRESQL: "PostgreSQL"}
# The first bytes of an SQLite database file and of a pg_dump custom-format archive.
MAGIC = {SQLITE: b"SQLite format 3\x00", POSTGRESQL: b"PGDMP"}
SUFFIX = {SQLITE: ".sqlite3", POSTGRESQL: ".dump"}

# 1024 pages is 4 MiB at SQLite's default page size: few enough steps that a clinic's database is
# copied in a handful, small enough that the GIL and the progress report come round often.
PAGES_PER_STEP = 1024
# How long to wait for SQLite locks, and for PostgreSQL table locks held by, say, a migration.
LOCK_WAIT_SECONDS = 5
PG_LOCK_WAIT = "60s"
# Files SQLite keeps beside a database; they belong to one database file and must go with it.
SIDE_FILES = ("-wal", "-shm", "-journal")
# Counted after a backup or a restore, so the operator sees at a glance that the file is the clinic.
REPORTED_MODELS = (
    ("bookings", "scheduling.Booking"),
    ("legs", "scheduling.Allocation"),
    ("patients", "patients.Patient"),
)
# libpq connection keywords that pg_dump and pg_restore 12 and later understand and that hold no
# secret. The password goes through PGPASSWORD, never the command line, where `ps` would show it.
PG_KEYWORDS = frozenset(
    {
        "application_name",
        "channel_binding",
        "connect_timeout",
        "gssencmode",
        "hostaddr",
        "keepalives",
        "keepalives_count",
        "keepalives_idle",
        "keepalives_interval",
        "krbsrvname",
        "options",
        "passfile",
        "requirepeer",
        "service",
        "sslcert",
        "sslcompression",
        "sslcrl",
        "sslkey",
        "sslmode",
        "sslrootcert",
        "target_session_attrs",
        "tcp_user_timeout",
    }
)

Progress = Callable[[int, int, int], object]


def engine_of(connection: BaseDatabaseWrapper) -> str:
    """SQLITE or POSTGRESQL for the connection, which must be one of the two."""
    if connection.vendor not in ENGINE_NAMES:
        raise CommandError(f"Backups cover SQLite and PostgreSQL; this database is {connection.vendor}.")
    return str(connection.vendor)


def database(alias: str) -> BaseDatabaseWrapper:
    try:
        return connections[alias]
    except ConnectionDoesNotExist:
        raise CommandError(f"No database {alias!r} is configured.") from None


def backup_engine(path: Path) -> str | None:
    """The engine a backup file was made from, read from its first bytes; None for any other file."""
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
    return next((engine for engine, magic in MAGIC.items() if head.startswith(magic)), None)


def describe_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def reported_tables() -> list[tuple[str, str]]:
    """(label, table) of the tables whose rows are counted; looked up by name so that this
    lowest layer of the project does not import the scheduling app."""
    tables = []
    for label, model_label in REPORTED_MODELS:
        try:
            model = apps.get_model(model_label)
        except LookupError:
            continue
        tables.append((label, model._meta.db_table))
    return tables


def count_rows(cursor: Any) -> dict[str, int]:
    """Row counts of the reported tables through any DB-API cursor (sqlite3 or Django's)."""
    counts = {}
    for label, table in reported_tables():
        quoted = table.replace('"', '""')
        cursor.execute(f'SELECT count(*) FROM "{quoted}"')
        counts[label] = int(cursor.fetchone()[0])
    return counts


def format_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{count} {label}" for label, count in counts.items()) or "no tables counted"


# Files.


@contextmanager
def staging_file(target: Path, purpose: str) -> Iterator[Path]:
    """A new empty file beside ``target``, removed again unless it has been renamed into place.

    Beside, because a rename within one directory is atomic: readers of ``target`` see the old
    file or the new one, never half of one. Created with mode 0600, because it will hold
    patient data.
    """
    try:
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".{purpose}", dir=target.parent)
    except OSError as exc:
        raise CommandError(f"Cannot create a file in {target.parent}: {exc.strerror}.") from None
    os.close(handle)
    path = Path(name)
    try:
        yield path
    finally:
        for leftover in (path, *(Path(f"{path}{suffix}") for suffix in SIDE_FILES)):
            leftover.unlink(missing_ok=True)


def fsync_path(path: Path) -> None:
    """Flush a file, or a directory's entries, to disk: a backup that lives only in the page
    cache is lost with the power."""
    if path.is_dir() and os.name != "posix":
        return
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def publish(staging: Path, target: Path) -> None:
    """Move a finished file into place atomically and durably."""
    fsync_path(staging)
    os.replace(staging, target)
    fsync_path(target.parent)


def backup_target(path: Path, engine: str) -> Path:
    """The file to write: PATH itself, or a dated file inside PATH when it is a directory."""
    path = path.expanduser()
    if path.is_dir():
        path = path / f"clinic-{timezone.now():%Y%m%d-%H%M%S}{SUFFIX[engine]}"
    if not path.parent.is_dir():
        raise CommandError(f"Directory {path.parent} does not exist.")
    return path.parent.resolve() / path.name


# SQLite.


def sqlite_path(connection: BaseDatabaseWrapper) -> Path:
    name = str(connection.settings_dict["NAME"] or "")
    if not name or name == ":memory:" or "mode=memory" in name:
        raise CommandError("The configured SQLite database lives in memory; there is no file to back up or restore.")
    return Path(name).resolve()


def sqlite_connect(path: Path, mode: str) -> sqlite3.Connection:
    """A connection that never creates a database by accident (``mode`` is ``ro`` or ``rw``)
    and leaves transactions to the caller."""
    uri = f"file:{quote(str(path))}?mode={mode}"
    return sqlite3.connect(uri, uri=True, timeout=LOCK_WAIT_SECONDS, isolation_level=None)


def sqlite_problems(db: sqlite3.Connection, *, quick: bool = False) -> list[str]:
    """What SQLite finds wrong with a database (empty when nothing): the integrity check's
    findings, which name pages and indexes but no row values, then dangling foreign keys."""
    pragma = "quick_check" if quick else "integrity_check"
    found = [str(row[0]) for row in db.execute(f"PRAGMA {pragma}")]
    if found != ["ok"]:
        return found
    dangling = db.execute("PRAGMA foreign_key_check").fetchall()
    return [f"{len(dangling)} rows refer to rows that do not exist"] if dangling else []


def online_backup(
    source: Path, target: Path, *, pages_per_step: int = PAGES_PER_STEP, progress: Progress | None = None
) -> None:
    """Copy the SQLite database at ``source`` into the empty file ``target`` as of one instant.

    The backup API copies ``pages_per_step`` pages per step while other processes go on
    committing. Left to itself it takes a fresh look at the source at every step and starts
    over from the first page whenever another connection has written, so a busy clinic could
    keep it restarting for ever. Here the source connection opens a read transaction before the
    first step and holds it to the last: in WAL mode that pins one snapshot, every step reads
    from it, writers carry on into the WAL (a reader never blocks them), and checkpoints leave
    alone the pages the snapshot still needs. The copy is one committed state of the database,
    never parts of two, and it always finishes. The source is opened read-only, so the backup
    cannot change the live database. The copy leaves WAL mode, so the backup is a single file.
    """
    src = sqlite_connect(source, "ro")
    try:
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            src.backup(dst, pages=pages_per_step, progress=progress)
            dst.execute("PRAGMA journal_mode=DELETE").fetchone()
        finally:
            dst.close()
    finally:
        src.close()


def backup_sqlite(
    source: Path, target: Path, *, pages_per_step: int = PAGES_PER_STEP, progress: Progress | None = None
) -> dict[str, int]:
    """Write a checked online copy of ``source`` to ``target``; the row counts of the copy."""
    if target in {source, *(Path(f"{source}{suffix}") for suffix in SIDE_FILES)}:
        raise CommandError(f"{target} is the live database itself; choose another path for the backup.")
    if not source.is_file():
        raise CommandError(f"The configured SQLite database {source} does not exist.")
    with staging_file(target, "partial") as staging:
        try:
            online_backup(source, staging, pages_per_step=pages_per_step, progress=progress)
            with closing(sqlite_connect(staging, "ro")) as copy:
                problems = sqlite_problems(copy)
                counts = count_rows(copy.cursor())
        except sqlite3.Error as exc:
            raise CommandError(f"The backup could not be taken: {exc}.") from None
        if problems:
            raise CommandError("The copy failed SQLite's integrity check: " + "; ".join(problems[:5]))
        publish(staging, target)
    return counts


# PostgreSQL.


def pg_conninfo(settings_dict: Mapping[str, Any], *, extra_options: str = "") -> str:
    """A libpq connection string for the configured database, without the password."""
    params: dict[str, Any] = {
        key: value
        for key, value in (settings_dict.get("OPTIONS") or {}).items()
        if key in PG_KEYWORDS and value not in (None, "")
    }
    for keyword, setting in (("dbname", "NAME"), ("host", "HOST"), ("port", "PORT"), ("user", "USER")):
        if settings_dict.get(setting):
            params[keyword] = str(settings_dict[setting])
    if extra_options:
        params["options"] = f"{params.get('options', '')} {extra_options}".strip()
    params["fallback_application_name"] = "clinic-backup"
    return make_conninfo("", **params)


def pg_connect(settings_dict: Mapping[str, Any]) -> Any:
    """A plain psycopg connection (autocommit) to the configured database, for work done
    outside Django's connection handling, such as reading a database just restored."""
    password = settings_dict.get("PASSWORD") or None
    return psycopg.connect(pg_conninfo(settings_dict), password=password, autocommit=True)


def run_pg_tool(tool: str, args: list[str], settings_dict: Mapping[str, Any]) -> str:
    """Run pg_dump or pg_restore with the password in its environment; its output, or a
    CommandError quoting the tool's own error lines.

    Only lines the tool starts with its name are quoted: the server's DETAIL and CONTEXT lines
    that follow can carry row values (a duplicate MRN, a line of COPY data), and those must stay
    out of terminals and logs.
    """
    executable = shutil.which(tool)
    if executable is None:
        raise CommandError(
            f"{tool} was not found on PATH. Install the PostgreSQL client programs "
            "of the server's major version (e.g. postgresql-client-15)."
        )
    env = dict(os.environ)
    if settings_dict.get("PASSWORD"):
        env["PGPASSWORD"] = str(settings_dict["PASSWORD"])
    try:
        result = subprocess.run(  # noqa: S603 (a fixed program found by shutil.which, arguments built here)
            [executable, *args], env=env, capture_output=True, text=True, errors="replace", check=False
        )
    except OSError as exc:
        raise CommandError(f"Could not run {tool}: {exc.strerror}.") from None
    if result.returncode != 0:
        own = [line for line in result.stderr.splitlines() if line.startswith(f"{tool}:")][-5:]
        detail = ":\n  " + "\n  ".join(own) if own else "."
        raise CommandError(f"{tool} failed (exit status {result.returncode}){detail}")
    return result.stdout


def pg_archive_header(path: Path, settings_dict: Mapping[str, Any]) -> dict[str, str]:
    """Read an archive's table of contents (cheap: no data is read) and check that it is a
    dump of this application; its ``dbname`` and ``created`` from the header."""
    listing = run_pg_tool("pg_restore", ["--list", str(path)], settings_dict)
    if not re.search(r"^\d+; \d+ \d+ TABLE \S+ django_migrations ", listing, re.MULTILINE):
        raise CommandError(f"{path} is a PostgreSQL dump, but not of this application (it has no django_migrations).")
    header = {}
    for key, pattern in (("dbname", r"^;\s+dbname:\s*(.+)$"), ("created", r"^; Archive created at (.+)$")):
        if match := re.search(pattern, listing, re.MULTILINE | re.IGNORECASE):
            header[key] = match.group(1).strip()
    return header


def backup_postgres(connection: BaseDatabaseWrapper, target: Path) -> dict[str, int]:
    """Dump the database to ``target``; the row counts of exactly what was dumped.

    The counts are read in a REPEATABLE READ transaction whose snapshot pg_dump then adopts
    (``--snapshot``), so they describe the file and not the database a moment later.
    """
    if connection.in_atomic_block:
        raise CommandError("A backup cannot be taken inside a transaction.")
    settings_dict = connection.settings_dict
    with staging_file(target, "partial") as staging:
        try:
            counts = dump_in_snapshot(connection, staging)
        except DatabaseError as exc:
            raise CommandError(f"Could not read the database: {exc}") from None
        pg_archive_header(staging, settings_dict)
        publish(staging, target)
    return counts


def dump_in_snapshot(connection: BaseDatabaseWrapper, staging: Path) -> dict[str, int]:
    settings_dict = connection.settings_dict
    with connection.cursor() as cursor:
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = str(cursor.fetchone()[0])
            counts = count_rows(cursor)
            run_pg_tool(
                "pg_dump",
                [
                    "--format=custom",
                    f"--file={staging}",
                    f"--snapshot={snapshot}",
                    f"--lock-wait-timeout={PG_LOCK_WAIT}",
                    "--no-password",
                    f"--dbname={pg_conninfo(settings_dict)}",
                ],
                settings_dict,
            )
        finally:
            cursor.execute("ROLLBACK")
    return counts


class Command(BaseCommand):
    help = (
        "Write a consistent backup of the database to PATH (a file, or a directory to put a dated file in). "
        "Safe while the clinic is booking."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="Backup file to write, or an existing directory for a dated file.")
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="Database alias to back up (default: %(default)s)."
        )
        parser.add_argument(
            "--pages-per-step",
            type=int,
            default=PAGES_PER_STEP,
            help="SQLite only: database pages copied per step (default: %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = int(options["verbosity"])
        connection = database(options["database"])
        engine = engine_of(connection)
        target = backup_target(Path(options["path"]), engine)
        if engine == SQLITE:
            if options["pages_per_step"] < 1:
                raise CommandError("--pages-per-step must be at least 1.")
            counts = backup_sqlite(
                sqlite_path(connection), target, pages_per_step=options["pages_per_step"], progress=self.progress
            )
            checked = "SQLite integrity check: ok"
        else:
            counts = backup_postgres(connection, target)
            checked = "archive readable by pg_restore"
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {ENGINE_NAMES[engine]} backup {target} ({describe_size(target.stat().st_size)})."
            )
        )
        self.stdout.write(f"  {checked}; {format_counts(counts)}.")

    def progress(self, status: int, remaining: int, total: int) -> None:
        if self.verbosity >= 2:
            self.stdout.write(f"  copied {total - remaining} of {total} pages")
