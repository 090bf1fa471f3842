"""db_backup and db_restore: a backup taken while cases are being booked restores to a whole,
consistent schedule, on SQLite and on PostgreSQL; db_restore refuses anything it should not do."""

from __future__ import annotations

import datetime as dt
import io
import os
import secrets
import sqlite3
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from psycopg import sql

from core.management.commands.db_backup import online_backup, pg_connect
from patients.models import Patient
from scheduling.models import ProcedureType
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from tests import factories as f
from tests.conftest import MONDAY, Clinic, build_clinic, local

VP_ROLES = Counter(["patient", "room", "c_arm", "physician", "rad_tech", "sedation_nurse", "recovery_bay"])
RESOURCE_COLUMNS = ("patient_id", "room_id", "equipment_id", "staff_id", "bay_id")
# Room starts 80 minutes apart: a 1-level VP holds its room for exactly that long.
DAY_STARTS = [(8, 0), (9, 20), (10, 40), (12, 0), (13, 20), (14, 40)]
SCRATCH_ALIAS = "backup_scratch"


def vp_slots(clinic: Clinic) -> Iterator[tuple[Patient, dt.datetime, int]]:
    """Back-to-back VP cases on the first room's resources, weekday after weekday; recovery bays
    and patients rotate, so every case fits."""
    day, n = MONDAY, 0
    while True:
        if day.weekday() < 5:
            for hour, minute in DAY_STARTS:
                yield clinic.patients[n % len(clinic.patients)], local(day, hour, minute), n
                n += 1
        day += dt.timedelta(days=1)


class Booker(threading.Thread):
    """Books cases through booking_create on its own connection until stopped, keeping the ids
    of the bookings it has committed, in order."""

    def __init__(self, clinic: Clinic) -> None:
        super().__init__(daemon=True)
        self.clinic = clinic
        self.stop = threading.Event()
        self.changed = threading.Condition()
        self.committed: list[int] = []
        self.errors: list[BaseException] = []

    def run(self) -> None:
        try:
            vp = ProcedureType.objects.get(code="VP")
            for patient, start, n in vp_slots(self.clinic):
                if self.stop.is_set():
                    break
                booking = booking_create(
                    request=CaseRequest(
                        procedure_type=vp,
                        patient=patient,
                        pins=self.clinic.resources(recovery_bay=self.clinic.bays[n % 3]),
                    ),
                    actor=None,
                    starts_at=start,
                )
                with self.changed:
                    self.committed.append(booking.pk)
                    self.changed.notify_all()
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            connection.close()
            with self.changed:
                self.stop.set()
                self.changed.notify_all()

    def ids(self) -> list[int]:
        with self.changed:
            return list(self.committed)

    def wait_for(self, count: int, timeout: float = 30) -> list[int]:
        """The committed ids once there are at least ``count`` of them."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.committed) >= count or self.stop.is_set(), timeout)
            assert not self.errors, self.errors
            assert len(self.committed) >= count, "the booking thread fell behind"
            return list(self.committed)

    def __enter__(self) -> Booker:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop.set()
        self.join(timeout=60)
        assert not self.is_alive()
        assert not self.errors, self.errors


def check_copy(path: Path) -> set[int]:
    """Check an SQLite copy on its own terms, with sqlite3 rather than the application, and
    return its booking ids: the file is undamaged, every booking has all of its legs, and no
    resource or patient is held twice at once."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        bookings = {row[0] for row in db.execute("SELECT id FROM scheduling_booking")}
        legs = db.execute(
            f"SELECT id, booking_id, role, starts_at, ends_at, {', '.join(RESOURCE_COLUMNS)} "
            "FROM scheduling_allocation WHERE is_active"
        ).fetchall()
    finally:
        db.close()
    roles: dict[int, Counter[str]] = defaultdict(Counter)
    held: dict[tuple[str, int], list[tuple[int, dt.datetime, dt.datetime]]] = defaultdict(list)
    for leg_id, booking_id, role, starts_at, ends_at, *resources in legs:
        roles[booking_id][role] += 1
        ((column, resource_id),) = [(c, r) for c, r in zip(RESOURCE_COLUMNS, resources, strict=True) if r is not None]
        held[(column, resource_id)].append(
            (leg_id, dt.datetime.fromisoformat(starts_at), dt.datetime.fromisoformat(ends_at))
        )
    assert set(roles) == bookings, "legs without their booking, or bookings without legs"
    assert all(found == VP_ROLES for found in roles.values()), "a booking is missing legs"
    overlaps = [
        (a[0], b[0])
        for windows in held.values()
        for i, a in enumerate(windows)
        for b in windows[i + 1 :]
        if a[1] < b[2] and b[1] < a[2]
    ]
    assert overlaps == []
    return bookings


def assert_no_patient_data(clinic: Clinic, *outputs: str) -> None:
    text = "\n".join(outputs)
    for patient in clinic.patients:
        assert patient.mrn not in text
        assert patient.last_name not in text


@contextmanager
def scratch_alias(name: str) -> Iterator[str]:
    """A database alias like the test database's but for ``name``, so the commands can be
    pointed at a scratch database with --database."""
    connections.settings[SCRATCH_ALIAS] = {**connection.settings_dict, "NAME": name}
    try:
        yield SCRATCH_ALIAS
    finally:
        with suppress(AttributeError):
            connections[SCRATCH_ALIAS].close()
            del connections[SCRATCH_ALIAS]
        del connections.settings[SCRATCH_ALIAS]


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def live_sqlite_path() -> Path:
    return Path(connection.settings_dict["NAME"])


@pytest.mark.sqlite
@pytest.mark.django_db(transaction=True)
def test_sqlite_backup_taken_while_booking_restores_to_a_whole_schedule(frozen_now, tmp_path):
    clinic = build_clinic()
    backup = tmp_path / "clinic.sqlite3"
    with Booker(clinic) as booker:
        committed_before = booker.wait_for(3)
        backup_out, _ = run("db_backup", str(backup), "--pages-per-step", "4")
        booker.wait_for(len(booker.ids()) + 2)
    restored = tmp_path / "restored" / "clinic.sqlite3"
    restored.parent.mkdir()
    with scratch_alias(str(restored)) as alias:
        restore_out, _ = run("db_restore", str(backup), "--yes", "--database", alias)

    in_copy = check_copy(restored)
    assert set(committed_before) <= in_copy
    assert in_copy <= set(booker.ids())
    assert f"{len(in_copy)} bookings" in backup_out
    assert f"{len(in_copy)} bookings" in restore_out
    assert "integrity check: ok" in backup_out
    assert not [p.name for p in restored.parent.iterdir() if p.name != restored.name]
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    assert_no_patient_data(clinic, backup_out, restore_out)


@pytest.mark.sqlite
@pytest.mark.django_db(transaction=True)
def test_sqlite_online_backup_is_one_snapshot_while_bookings_commit_between_steps(frozen_now, tmp_path):
    clinic = build_clinic()
    copy = tmp_path / "copy.sqlite3"
    copy.touch()
    after_snapshot: list[int] = []
    steps: list[int] = []

    with Booker(clinic) as booker:
        committed_before = booker.wait_for(2)

        def progress(status: int, remaining: int, total: int) -> None:
            steps.append(remaining)
            if len(steps) == 1:
                # The booking in flight now may have begun before the copy's snapshot; every
                # booking after it began later, so none of them may appear in the copy.
                seen = len(booker.ids())
                after_snapshot.extend(booker.wait_for(seen + 3)[seen + 1 :])

        online_backup(live_sqlite_path(), copy, pages_per_step=1, progress=progress)

    assert len(steps) > 10, "the copy should take many steps"
    assert steps == sorted(steps, reverse=True), "the copy restarted"
    assert len(after_snapshot) >= 2
    in_copy = check_copy(copy)
    assert set(committed_before) <= in_copy
    assert not in_copy & set(after_snapshot)


@pytest.mark.sqlite
@pytest.mark.django_db(transaction=True)
def test_sqlite_restore_refuses_while_another_process_has_the_database_open(frozen_now, tmp_path):
    build_clinic()
    backup = tmp_path / "clinic.sqlite3"
    run("db_backup", str(backup))
    target = tmp_path / "live.sqlite3"
    holder = sqlite3.connect(target)
    try:
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("CREATE TABLE marker (id integer)")
        with scratch_alias(str(target)) as alias, pytest.raises(CommandError, match="in use"):
            run("db_restore", str(backup), "--yes", "--database", alias)
        assert holder.execute("SELECT name FROM sqlite_master").fetchall() == [("marker",)]
    finally:
        holder.close()
    with scratch_alias(str(target)) as alias:
        run("db_restore", str(backup), "--yes", "--database", alias)
    check_copy(target)


@pytest.mark.sqlite
@pytest.mark.django_db(transaction=True)
def test_sqlite_backup_and_restore_refuse_damaged_or_misplaced_files(frozen_now, tmp_path):
    build_clinic()
    with pytest.raises(CommandError, match="live database itself"):
        run("db_backup", str(live_sqlite_path()))
    backup = tmp_path / "clinic.sqlite3"
    run("db_backup", str(backup))
    damaged = tmp_path / "damaged.sqlite3"
    data = bytearray(backup.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8192] = secrets.token_bytes(8192)
    damaged.write_bytes(bytes(data))
    with pytest.raises(CommandError, match=r"damaged|cannot be read"):
        run("db_restore", str(damaged), "--yes")
    other = tmp_path / "other.sqlite3"
    with closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE notes (body text)")
    with pytest.raises(CommandError, match="not a backup of this application"):
        run("db_restore", str(other), "--yes")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_backup_restores_into_a_scratch_database(frozen_now, tmp_path):
    clinic = build_clinic()
    vp = ProcedureType.objects.get(code="VP")
    for patient, start, n in islice(vp_slots(clinic), 4):
        booking_create(
            request=CaseRequest(
                procedure_type=vp, patient=patient, pins=clinic.resources(recovery_bay=clinic.bays[n % 3])
            ),
            actor=None,
            starts_at=start,
        )
    backup = tmp_path / "clinic.dump"
    backup_out, _ = run("db_backup", str(backup))
    assert backup.read_bytes()[:5] == b"PGDMP"
    assert "4 bookings, 28 legs, 20 patients" in backup_out

    scratch = f"restore_check_{os.getpid()}_{secrets.token_hex(4)}"
    scratch_settings = {**connection.settings_dict, "NAME": scratch}
    with closing(pg_connect({**connection.settings_dict, "NAME": "postgres"})) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
        try:
            with scratch_alias(scratch) as alias:
                restore_out, _ = run("db_restore", str(backup), "--yes", "--database", alias)
            with closing(pg_connect(scratch_settings)) as restored, connection.cursor() as live:
                tables = connection.introspection.table_names()
                assert "scheduling_allocation" in tables
                assert table_names(restored.cursor()) == table_names(live)
                assert row_counts(restored.cursor(), tables) == row_counts(live, tables)
                exclusions = exclusion_constraints(live)
                assert len(exclusions) >= 5
                assert exclusion_constraints(restored.cursor()) == exclusions
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
    assert "4 bookings, 28 legs, 20 patients" in restore_out
    assert_no_patient_data(clinic, backup_out, restore_out)


def table_names(cursor: Any) -> list[str]:
    cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    return [name for (name,) in cursor.fetchall()]


def row_counts(cursor: Any, tables: list[str]) -> dict[str, int]:
    counts = {}
    for table in tables:
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        counts[table] = cursor.fetchone()[0]
    return counts


def exclusion_constraints(cursor: Any) -> list[tuple[str, str, str]]:
    """Every exclusion constraint with its table and definition: the double-booking guard."""
    cursor.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'x' ORDER BY 1, 2"
    )
    return [tuple(row) for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_restore_without_yes_refuses_and_changes_nothing(frozen_now, tmp_path):
    clinic = build_clinic()
    backup = tmp_path / "clinic.backup"
    run("db_backup", str(backup))
    added = f.PatientFactory()
    patients = Patient.objects.count()

    with pytest.raises(CommandError, match="--yes") as refused:
        run("db_restore", str(backup))

    assert "Nothing has been changed" in str(refused.value)
    assert Patient.objects.filter(pk=added.pk).exists()
    assert Patient.objects.count() == patients == len(clinic.patients) + 1
    if connection.vendor == "sqlite":
        live = live_sqlite_path()
        assert not list(live.parent.glob(f".{live.name}.*"))


@pytest.mark.django_db(transaction=True)
def test_restore_explains_missing_and_wrong_files(tmp_path):
    with pytest.raises(CommandError, match="no backup file"):
        run("db_restore", str(tmp_path / "missing.dump"), "--yes")
    with pytest.raises(CommandError, match="is not a file"):
        run("db_restore", str(tmp_path), "--yes")
    text = tmp_path / "notes.txt"
    text.write_text("not a backup\n")
    with pytest.raises(CommandError, match="not a backup made by db_backup"):
        run("db_restore", str(text), "--yes")
    other_engine = tmp_path / "other-engine.backup"
    if connection.vendor == "sqlite":
        other_engine.write_bytes(b"PGDMP" + bytes(200))
        expected = "made from PostgreSQL, but this installation runs on SQLite"
    else:
        with closing(sqlite3.connect(other_engine)) as db:
            db.execute("CREATE TABLE notes (body text)")
        expected = "made from SQLite, but this installation runs on PostgreSQL"
    with pytest.raises(CommandError, match=expected):
        run("db_restore", str(other_engine), "--yes")
    with pytest.raises(CommandError, match="does not exist"):
        run("db_backup", str(tmp_path / "no-such-directory" / "clinic.backup"))
