"""Booking load benchmark: real HTTP clients against the production server, beside two floors.

The availability benchmark times a function; this one times what a scheduler's client gets. It
starts the server the way production does (``gunicorn -c config/gunicorn.py config.wsgi`` with
``DEBUG=false``), signs in once over the API and sends bookings from 1, 8 and 32 concurrent
keep-alive connections. Each figure is printed beside two floors measured in the same run, on
the same machine, at the same client counts, so the ratios say how much of a booking's time is
the product's own and how much the database or the HTTP stack would cost anyway:

- the raw-SQL floor: what a booking must do at the database, and nothing else. On PostgreSQL
  the transaction takes ``pg_advisory_xact_lock`` on the same keys, in the same order, as
  ``scheduling.guard.lock_keys``; on SQLite it is a ``BEGIN IMMEDIATE``. Then it inserts the
  same booking row and the same leg rows, and commits. It runs straight on psycopg or sqlite3,
  one connection per client thread, so the ORM, DRF and HTTP are all outside it;
- the HTTP floor: an authenticated GET of one site through the same server, which pays for
  the connection, the middleware, the token lookup and the role check and for little else.

Scenarios, each with ``--requests`` requests that can all succeed (a distinct patient and a
slot of its own, in opening hours and staff shifts, in the future):

- pinned: every resource named (room, C-arm, physician, rad tech, sedation nurse, bay);
- auto-assigned: only patient, procedure, levels and start, so the engine picks the rest;
- contention: ``--contenders`` clients post the same pinned start at once, released together
  by a barrier: exactly one may get 201, every other one 409.

The clinic is a set of lanes: a room with its fixed C-arm, physician, rad tech, sedation nurse
and three recovery bays, laid out on a grid of 80-minute slots (a one-level vertebroplasty under
moderate sedation holds the room for 80 minutes with turnover, and a bay for the two hours after
its first hour). A lane's cases therefore never overlap, and at most one case per lane starts at
each grid time. Auto-assigned requests arrive out of order under concurrency, and the engine may
give a case any free bay: a recovery overlaps those of the grid times just before and after it,
which may hold two disjoint sets of bays, so three bays per lane always leave one free. Each
phase starts on a day of its own, so phases cannot interact.

Prints figures and asserts nothing about speed. It fails (after printing) only when the bench
itself went wrong: a request that should have succeeded did not, the contention did not end with
exactly one winner, or clients could not talk to the server.
"""

from __future__ import annotations

import http.client
import importlib
import json
import logging
import math
import os
import queue
import re
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time as clock
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.db.models import Field, Model
from django.test import Client as InProcessClient
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devtools.management.commands.bench_availability import percentile
from outbox.models import Notification
from patients.models import Patient
from rooms.models import Capability, Equipment, EquipmentKind, OpeningHours, ProcedureRoom, RecoveryBay, Site
from scheduling.catalogue import install_default_catalogue
from scheduling.guard import LOCK_NAMESPACE
from scheduling.legs import LegSpec, plan_legs
from scheduling.models import ROLE_COLUMN, Allocation, Booking, BookingStatus, LegRole, ProcedureType
from staff.models import Credential, CredentialKind, Shift, StaffMember, StaffRole

SITE_CODE = "bench-booking"
SITE_NAME = "Booking Benchmark Pain Center"
ZONE_NAME = "America/Chicago"
JURISDICTION = "TX"
# Bump when the clinic changes shape, so an older bench clinic is rebuilt rather than reused.
CLINIC_VERSION = 2
CLINIC_MARKER = f"bench-booking clinic v{CLINIC_VERSION}"
STAFF_EMAIL_DOMAIN = "bench-booking.example"
MRN_PREFIX = "BKB"
USERNAME = "bench-booking"
SCHEDULER_GROUP = "scheduler"

PROCEDURE = "VP"
LEVELS = 1
SEDATION = "moderate"
LANES = 8
OPENS, CLOSES = time(6, 0), time(20, 0)
# The first start leaves the patient's hour of arrival inside opening hours; the last one's
# recovery (16:20 + 3 h) ends before closing.
FIRST_START_MINUTES = 7 * 60
SLOT_MINUTES = 80
SLOTS_PER_DAY = 8
BAYS_PER_LANE = 3
EXPECTED_ROLES = frozenset(
    {
        LegRole.PATIENT,
        LegRole.ROOM,
        LegRole.C_ARM,
        LegRole.PHYSICIAN,
        LegRole.RAD_TECH,
        LegRole.SEDATION_NURSE,
        LegRole.RECOVERY_BAY,
    }
)

LOOPBACK = "127.0.0.1"
BOOKINGS_PATH = "/api/v1/bookings/"
TOKEN_PATH = "/api/v1/auth/token/"
HEALTH_PATH = "/api/health/"
STARTUP_SECONDS = 60.0
REQUEST_TIMEOUT = 120.0
TOKEN_ATTEMPTS = 4
PROFILE_RUNS = 3
WARMUP_BOOKINGS = 8
LOCK_SQL = "SELECT pg_advisory_xact_lock(k, i::integer) FROM unnest(%s::integer[], %s::bigint[]) AS t(k, i)"

T = TypeVar("T")
ItemT = TypeVar("ItemT", contravariant=True)
Answer = tuple[str, str | None]


def database_name() -> str:
    name = str(settings.DATABASES["default"]["NAME"])
    return Path(name).name if connection.vendor == "sqlite" else name


def parse_clients(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise CommandError(f"--clients takes comma-separated numbers, not {text!r}.") from exc
    if not counts or min(counts) < 1:
        raise CommandError("--clients needs at least one positive number.")
    return counts


# --- the clinic -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lane:
    """Resources that only ever work together, so a lane's cases on the slot grid never clash."""

    room_id: int
    c_arm_id: int
    physician_id: int
    rad_tech_id: int
    sedation_id: int
    bay_ids: tuple[int, ...]


@dataclass
class Clinic:
    site: Site
    zone: ZoneInfo
    lanes: list[Lane]
    procedure: ProcedureType
    plan: list[LegSpec]
    patient_ids: list[int]
    user_id: int


@dataclass(frozen=True)
class Case:
    """One booking request: a slot of one lane and a patient of its own."""

    start: datetime
    lane: Lane
    bay_id: int
    patient_id: int

    def resource_for(self, role: LegRole) -> int:
        lane = self.lane
        by_role = {
            LegRole.PATIENT: self.patient_id,
            LegRole.ROOM: lane.room_id,
            LegRole.C_ARM: lane.c_arm_id,
            LegRole.PHYSICIAN: lane.physician_id,
            LegRole.RAD_TECH: lane.rad_tech_id,
            LegRole.SEDATION_NURSE: lane.sedation_id,
            LegRole.RECOVERY_BAY: self.bay_id,
        }
        return by_role[role]

    def auto_body(self) -> dict[str, Any]:
        return {
            "patient": self.patient_id,
            "procedure_type": PROCEDURE,
            "levels": LEVELS,
            "start": self.start.isoformat(),
        }

    def pinned_body(self) -> dict[str, Any]:
        lane = self.lane
        return {
            **self.auto_body(),
            "room": lane.room_id,
            "c_arm": lane.c_arm_id,
            "physician": lane.physician_id,
            "rad_tech": lane.rad_tech_id,
            "sedation_staff": lane.sedation_id,
            "recovery_bay": self.bay_id,
        }


def build_clinic(today: date) -> Site:
    site = Site.objects.create(
        name=SITE_NAME, code=SITE_CODE, timezone=ZONE_NAME, jurisdiction=JURISDICTION, address=CLINIC_MARKER
    )
    OpeningHours.objects.bulk_create(
        OpeningHours(site=site, weekday=weekday, opens_at=OPENS, closes_at=CLOSES) for weekday in range(7)
    )
    capabilities = [Capability.FLUOROSCOPY.value, Capability.STERILE_FIELD.value]
    rooms = ProcedureRoom.objects.bulk_create(
        ProcedureRoom(site=site, name=f"Fluoro {i + 1}", capabilities=capabilities) for i in range(LANES)
    )
    Equipment.objects.bulk_create(
        Equipment(site=site, kind=EquipmentKind.C_ARM, name=f"C-arm {i + 1}", room=room) for i, room in enumerate(rooms)
    )
    RecoveryBay.objects.bulk_create(
        RecoveryBay(site=site, name=f"Bay {i + 1:02d}") for i in range(BAYS_PER_LANE * LANES)
    )
    people = [(StaffRole.PHYSICIAN, False), (StaffRole.RAD_TECH, False), (StaffRole.NURSE, True)]
    staff = StaffMember.objects.bulk_create(
        StaffMember(
            first_name=f"{role.label.split()[0]}{i + 1:02d}",
            last_name="Bench",
            role=role,
            sedation_capable=sedation,
            email=f"{role.value}{i + 1:02d}@{STAFF_EMAIL_DOMAIN}",
        )
        for role, sedation in people
        for i in range(LANES)
    )
    Shift.objects.bulk_create(
        Shift(staff=member, site=site, weekday=weekday, starts_at=OPENS, ends_at=CLOSES)
        for member in staff
        for weekday in range(7)
    )
    issued = today - timedelta(days=365)
    Credential.objects.bulk_create(
        Credential(staff=member, kind=CredentialKind.PRIVILEGE, procedure_code=PROCEDURE, valid_from=issued)
        if member.role == StaffRole.PHYSICIAN
        else Credential(
            staff=member,
            kind=CredentialKind.FLUOROSCOPY,
            jurisdiction=JURISDICTION,
            identifier=f"TX-MRT-{member.pk:06d}",
            valid_from=issued,
        )
        for member in staff
        if member.role in (StaffRole.PHYSICIAN, StaffRole.RAD_TECH)
    )
    return site


def load_lanes(site: Site) -> list[Lane] | None:
    """The lanes of an existing bench clinic, or None when it is not the expected shape."""
    rooms = list(ProcedureRoom.objects.filter(site=site).order_by("id").values_list("id", flat=True))
    c_arms = dict(
        Equipment.objects.filter(site=site, kind=EquipmentKind.C_ARM, room__isnull=False).values_list("room_id", "id")
    )
    bays = list(RecoveryBay.objects.filter(site=site).order_by("id").values_list("id", flat=True))
    staff = StaffMember.objects.filter(email__endswith=f"@{STAFF_EMAIL_DOMAIN}").order_by("id")

    def of(role: str) -> list[int]:
        return list(staff.filter(role=role).values_list("id", flat=True))

    physicians, techs, nurses = of(StaffRole.PHYSICIAN), of(StaffRole.RAD_TECH), of(StaffRole.NURSE)
    sizes = {len(rooms), len(c_arms), len(physicians), len(techs), len(nurses)}
    if site.address != CLINIC_MARKER or sizes != {LANES} or len(bays) != BAYS_PER_LANE * LANES:
        return None
    return [
        Lane(room, c_arms[room], physicians[i], techs[i], nurses[i], tuple(bays[BAYS_PER_LANE * i :][:BAYS_PER_LANE]))
        for i, room in enumerate(rooms)
    ]


def delete_clinic(site: Site) -> None:
    Booking.objects.filter(site=site).delete()
    StaffMember.objects.filter(email__endswith=f"@{STAFF_EMAIL_DOMAIN}").delete()
    Equipment.objects.filter(site=site).delete()
    RecoveryBay.objects.filter(site=site).delete()
    ProcedureRoom.objects.filter(site=site).delete()
    site.delete()


def ensure_patients(count: int) -> list[int]:
    existing = list(Patient.objects.filter(mrn__startswith=MRN_PREFIX).order_by("id").values_list("id", flat=True))
    if len(existing) < count:
        Patient.objects.bulk_create(
            (
                Patient(
                    mrn=f"{MRN_PREFIX}{i:07d}",
                    first_name=f"Bench{i:05d}",
                    last_name="Patient",
                    date_of_birth=date(1940 + i % 50, 1 + i % 12, 1 + i % 28),
                )
                for i in range(len(existing), count)
            ),
            batch_size=1000,
        )
        existing = list(Patient.objects.filter(mrn__startswith=MRN_PREFIX).order_by("id").values_list("id", flat=True))
    return existing[:count]


def ensure_user(password: str) -> int:
    """The bench's scheduler account, with a fresh password each run.

    The hash is made with the PBKDF2 hasher directly: the server checks it with the production
    hasher list whatever hasher this process is configured with (tests use a fast one).
    """
    group, _ = Group.objects.get_or_create(name=SCHEDULER_GROUP)
    user, _ = get_user_model().objects.get_or_create(username=USERNAME)
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(password, hasher.salt())
    user.is_active = True
    user.save()
    user.groups.set([group])
    return int(user.pk)


def settle_tables() -> None:
    """Every run starts from the same state: on PostgreSQL the rows the last run deleted are
    vacuumed away and the statistics refreshed, so neither dead index entries nor a stale plan
    weigh on one run and not on another."""
    if connection.vendor != "postgresql":
        return
    tables = [model._meta.db_table for model in (Booking, Allocation, Notification)]
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(table)}")


def prepare_clinic(today: date, patients: int, password: str) -> tuple[Clinic, str]:
    """Reuse the bench clinic if it has the expected shape (else rebuild it), and remove every
    booking it holds, so each run books into an empty future."""
    install_default_catalogue(ProcedureType)
    procedure = ProcedureType.objects.get(code=PROCEDURE)
    plan = plan_legs(procedure, levels=LEVELS, sedation=SEDATION)
    if {spec.role for spec in plan} != EXPECTED_ROLES:
        raise CommandError(f"{PROCEDURE} no longer plans the legs this bench lays out; update the bench.")
    with transaction.atomic():
        site = Site.objects.filter(code=SITE_CODE).first()
        lanes = load_lanes(site) if site is not None else None
        if site is None or lanes is None:
            if site is not None:
                delete_clinic(site)
            site = build_clinic(today)
            lanes = load_lanes(site)
            assert lanes is not None
            state = "built"
        else:
            removed, _ = Booking.objects.filter(site=site).delete()
            state = f"reused, {removed:,} rows of earlier runs deleted"
        patient_ids = ensure_patients(patients)
        user_id = ensure_user(password)
    settle_tables()
    return Clinic(site, ZoneInfo(site.timezone), lanes, procedure, plan, patient_ids, user_id), state


class Calendar:
    """Hands out slots of the grid; every batch starts on a day no earlier batch touched."""

    def __init__(self, clinic: Clinic, first_day: date) -> None:
        self.clinic = clinic
        self.next_day = first_day
        self.next_patient = 0

    def patients(self, count: int) -> list[int]:
        ids = self.clinic.patient_ids[self.next_patient : self.next_patient + count]
        if len(ids) < count:
            raise CommandError("The bench planned fewer patients than it books; this is a bench bug.")
        self.next_patient += count
        return ids

    def take(self, count: int) -> list[Case]:
        per_day = LANES * SLOTS_PER_DAY
        days = max(1, math.ceil(count / per_day))
        patients = self.patients(count)
        cases = []
        for n in range(count):
            day = self.next_day + timedelta(days=n // per_day)
            slot, lane_index = divmod(n % per_day, LANES)
            minutes = FIRST_START_MINUTES + slot * SLOT_MINUTES
            start = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.clinic.zone)
            lane = self.clinic.lanes[lane_index]
            cases.append(Case(start, lane, lane.bay_ids[slot % BAYS_PER_LANE], patients[n]))
        self.next_day += timedelta(days=days)
        return cases


# --- load generation ----------------------------------------------------------------------------


class Worker(Protocol[ItemT]):
    """One client's connection: to the server, or straight to the database."""

    def send(self, item: ItemT) -> Answer: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)
    errors: int = 0


@dataclass
class Run:
    """One scenario at one client count: what came back and how fast."""

    name: str
    clients: int
    sent: int
    success: str
    wall: float
    latencies: list[float]
    answers: Counter[str]
    problems: Counter[str]
    errors: int

    @property
    def ok(self) -> int:
        return self.answers[self.success]

    @property
    def rate(self) -> float:
        return self.ok / self.wall if self.wall > 0 else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)

    def answers_text(self) -> str:
        return " ".join(f"{answer}:{count}" for answer, count in sorted(self.answers.items())) or "-"


def merged(parts: Sequence[Run]) -> Run:
    """One scenario's rounds as one run: their requests, answers and latencies together, and
    the time they took added up (so the rate is over the time the scenario itself ran)."""
    first = parts[0]
    run = Run(first.name, first.clients, 0, first.success, 0.0, [], Counter(), Counter(), 0)
    for part in parts:
        run.sent += part.sent
        run.wall += part.wall
        run.latencies += part.latencies
        run.answers += part.answers
        run.problems += part.problems
        run.errors += part.errors
    return run


def in_rounds(items: Sequence[T], rounds: int) -> list[Sequence[T]]:
    """``items`` cut into ``rounds`` nearly equal consecutive parts (none empty)."""
    rounds = max(1, min(rounds, len(items)))
    size, extra = divmod(len(items), rounds)
    parts, at = [], 0
    for n in range(rounds):
        step = size + (1 if n < extra else 0)
        parts.append(items[at : at + step])
        at += step
    return parts


CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OSError, http.client.HTTPException)


def drive(name: str, clients: int, items: Sequence[T], make_worker: Callable[[], Worker[T]], success: str) -> Run:
    """Send ``items`` from ``clients`` threads, each with its own connection opened before the
    clock starts; a barrier releases them together. Wall time runs from the release to the last
    answer. A connection error is counted, the connection reopened, and the item dropped."""
    work: queue.SimpleQueue[T] = queue.SimpleQueue()
    for item in items:
        work.put(item)
    barrier = threading.Barrier(clients + 1)
    tallies = [Tally() for _ in range(clients)]
    failures: list[BaseException] = []

    def client(tally: Tally) -> None:
        try:
            worker = make_worker()
        except Exception as exc:
            failures.append(exc)
            barrier.abort()
            return
        try:
            barrier.wait()
            while True:
                try:
                    item = work.get_nowait()
                except queue.Empty:
                    return
                started = clock.perf_counter()
                try:
                    answer, problem = worker.send(item)
                except CONNECTION_ERRORS:
                    tally.errors += 1
                    worker.reset()
                    continue
                except Exception as exc:
                    # Shown among the answers, where the verdict catches it.
                    answer, problem = f"error:{type(exc).__name__}", None
                tally.latencies.append((clock.perf_counter() - started) * 1000)
                tally.answers[answer] += 1
                if problem:
                    tally.problems[f"{answer} {problem}"] += 1
        except threading.BrokenBarrierError:
            return
        finally:
            worker.close()

    threads = [threading.Thread(target=client, args=(tally,), daemon=True) for tally in tallies]
    for thread in threads:
        thread.start()
    try:
        barrier.wait(timeout=STARTUP_SECONDS)
    except threading.BrokenBarrierError as exc:
        reason = repr(failures[0]) if failures else "timed out"
        raise CommandError(f"{name}: a client could not open its connection: {reason}") from exc
    started = clock.perf_counter()
    for thread in threads:
        thread.join()
    wall = clock.perf_counter() - started
    run = Run(name, clients, len(items), success, wall, [], Counter(), Counter(), 0)
    for tally in tallies:
        run.latencies += tally.latencies
        run.answers += tally.answers
        run.problems += tally.problems
        run.errors += tally.errors
    return run


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


def booking_call(body: dict[str, Any]) -> Call:
    """A POST as the README's clients send it: JSON, with an Idempotency-Key of its own."""
    headers = (("Content-Type", "application/json"), ("Idempotency-Key", uuid.uuid4().hex))
    return Call("POST", BOOKINGS_PATH, json.dumps(body).encode(), headers)


def problem_code(data: bytes) -> str | None:
    """The ``code`` of a problem document; the rest of an error body is never kept."""
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    code = parsed.get("code") if isinstance(parsed, dict) else None
    return str(code) if code else None


class HttpWorker:
    """One keep-alive connection to the server; it reconnects by itself after a reset."""

    def __init__(self, port: int, token: str | None) -> None:
        self.conn = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT)
        self.conn.connect()
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def send(self, item: Call) -> Answer:
        self.conn.request(item.method, item.path, body=item.body, headers={**self.headers, **dict(item.headers)})
        response = self.conn.getresponse()
        data = response.read()
        return str(response.status), problem_code(data) if response.status >= 400 else None

    def reset(self) -> None:
        self.conn.close()

    def close(self) -> None:
        self.conn.close()


def http_once(port: int, call: Call, timeout: float = REQUEST_TIMEOUT) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(call.method, call.path, body=call.body, headers=dict(call.headers))
        response = conn.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def server_database_url() -> str:
    """The URL of the database this command is connected to, for the server to use the same."""
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(config["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            raise CommandError("The booking benchmark needs an SQLite file the server can open too.")
        return f"sqlite:///{Path(name).resolve()}"
    if connection.vendor == "postgresql":
        user = quote(str(config.get("USER") or ""), safe="")
        password = str(config.get("PASSWORD") or "")
        auth = f"{user}:{quote(password, safe='')}" if password else user
        host = quote(str(config.get("HOST") or ""), safe="")
        port = f":{config['PORT']}" if config.get("PORT") else ""
        return f"postgres://{auth}@{host}{port}/{quote(str(config['NAME']), safe='')}"
    raise CommandError(f"No booking benchmark for the {connection.vendor} database.")


def server_command() -> list[str]:
    local = Path(sys.executable).with_name("gunicorn")
    return [str(local) if local.exists() else "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"]


def server_environment(port: int, database_url: str) -> dict[str, str]:
    # A server started from pytest must not believe it is under test.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env.update(
        PORT=str(port),
        HOST=LOOPBACK,
        DATABASE_URL=database_url,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
    )
    return env


def log_tail(log: IO[bytes], size: int = 4000) -> str:
    log.flush()
    end = log.seek(0, os.SEEK_END)
    log.seek(max(0, end - size))
    return log.read().decode(errors="replace")


def wait_until_healthy(process: subprocess.Popen[bytes], port: int, vendor: str, log: IO[bytes]) -> bool:
    """True once the health check answers from the expected database; False if the server
    exited first (a port taken meanwhile, a settings error)."""
    deadline = clock.monotonic() + STARTUP_SECONDS
    while clock.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with suppress(*CONNECTION_ERRORS):
            status, data, _ = http_once(port, Call("GET", HEALTH_PATH), timeout=5)
            if status == 200:
                answered = json.loads(data).get("database")
                if answered != vendor:
                    raise CommandError(f"The server answered from {answered!r}, not {vendor}.")
                return True
        clock.sleep(0.2)
    raise CommandError(f"The server did not answer {HEALTH_PATH} within {STARTUP_SECONDS:.0f} s:\n{log_tail(log)}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        # The arbiter stops its workers gracefully on SIGTERM.
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # A worker that outlived its arbiter is still in the group the server was started in.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def production_server(database_url: str, vendor: str) -> Iterator[int]:
    """The production web server on a free loopback port (yielded), in a process group of its
    own, stopped whole on every way out: normal end, error, Ctrl-C or SIGTERM. Its log goes to a
    temporary file, shown only if it fails to start."""
    for _ in range(3):
        port = free_port()
        with tempfile.TemporaryFile() as log:
            process = subprocess.Popen(  # noqa: S603 (a fixed argv: the project's gunicorn and its settings file)
                server_command(),
                cwd=settings.BASE_DIR,
                env=server_environment(port, database_url),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                if wait_until_healthy(process, port, vendor, log):
                    yield port
                    return
                tail = log_tail(log)
            finally:
                stop_server(process)
        if "already in use" not in tail:
            raise CommandError(f"The server did not start; the end of its log:\n{tail}")
    raise CommandError("The server found no free loopback port in three tries.")


def obtain_token(port: int, password: str) -> str:
    """One bearer token for the whole run: the endpoint is throttled per address and username,
    so it is asked once and the answer reused by every client."""
    body = json.dumps({"username": USERNAME, "password": password}).encode()
    call = Call("POST", TOKEN_PATH, body, (("Content-Type", "application/json"),))
    for _ in range(TOKEN_ATTEMPTS):
        status, data, headers = http_once(port, call)
        if status == 200:
            return str(json.loads(data)["token"])
        if status == 429:
            wait = int(headers.get("retry-after", "60") or 60)
            clock.sleep(min(max(wait, 1), 90))
            continue
        raise CommandError(f"POST {TOKEN_PATH} answered {status} {problem_code(data) or ''}".rstrip())
    raise CommandError(f"POST {TOKEN_PATH} stayed throttled after {TOKEN_ATTEMPTS} tries.")


# --- the raw-SQL floor --------------------------------------------------------------------------


@dataclass(frozen=True)
class FloorCase:
    lock_namespaces: list[int]
    lock_ids: list[int]
    booking: tuple[Any, ...]
    legs: list[tuple[Any, ...]]


def insert_fields(model: type[Model]) -> list[Field[Any, Any]]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def db_row(obj: Model, fields: list[Field[Any, Any]]) -> tuple[Any, ...]:
    """The values the ORM would send for an INSERT of ``obj``, computed before the clock runs."""
    return tuple(f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields)


class FloorSql:
    """The SQL of the floor transaction and the rows to feed it, derived from the models."""

    def __init__(self, clinic: Clinic) -> None:
        self.clinic = clinic
        self.booking_fields = insert_fields(Booking)
        self.leg_fields = insert_fields(Allocation)
        self.booking_slot = [f.column for f in self.leg_fields].index("booking_id")
        mark = "%s" if connection.vendor == "postgresql" else "?"
        quoted = connection.ops.quote_name

        def insert(model: type[Model], fields: list[Field[Any, Any]], rows: int) -> str:
            columns = ", ".join(quoted(f.column) for f in fields)
            values = ", ".join("(" + ", ".join([mark] * len(fields)) + ")" for _ in range(rows))
            return f"INSERT INTO {quoted(model._meta.db_table)} ({columns}) VALUES {values}"

        self.booking_sql = insert(Booking, self.booking_fields, 1)
        if connection.vendor == "postgresql":
            self.booking_sql += " RETURNING id"
        self.legs_sql = insert(Allocation, self.leg_fields, len(clinic.plan))

    def case(self, case: Case) -> FloorCase:
        legs = []
        for spec in self.clinic.plan:
            starts, ends = spec.window(case.start)
            legs.append((spec.role, case.resource_for(spec.role), starts, ends))
        room_start = next(s for r, _, s, _ in legs if r == LegRole.ROOM)
        arrival = next(s for r, _, s, _ in legs if r == LegRole.PATIENT)
        booking = Booking(
            patient_id=case.patient_id,
            procedure_type_id=self.clinic.procedure.pk,
            site_id=self.clinic.site.pk,
            levels=LEVELS,
            sedation=SEDATION,
            status=BookingStatus.SCHEDULED,
            starts_at=room_start,
            ends_at=max(e for _, _, _, e in legs),
            arrival_at=arrival,
            created_by_id=self.clinic.user_id,
        )
        leg_rows = [
            db_row(
                Allocation(
                    booking_id=0,
                    role=role,
                    starts_at=starts,
                    ends_at=ends,
                    is_active=True,
                    **{f"{ROLE_COLUMN[role]}_id": rid},
                ),
                self.leg_fields,
            )
            for role, rid, starts, ends in legs
        ]
        # The guard's order: one lock per (column namespace, id), ascending.
        keys = sorted({(LOCK_NAMESPACE[ROLE_COLUMN[role]], rid) for role, rid, _, _ in legs})
        return FloorCase([k for k, _ in keys], [i for _, i in keys], db_row(booking, self.booking_fields), leg_rows)

    def leg_params(self, floor: FloorCase, booking_id: int) -> list[Any]:
        params: list[Any] = []
        for row in floor.legs:
            values = list(row)
            values[self.booking_slot] = booking_id
            params += values
        return params


class PostgresFloor:
    """The floor on PostgreSQL: psycopg with its defaults, one explicit transaction per booking."""

    def __init__(self, sql: FloorSql) -> None:
        self.sql = sql
        self.conn = self.connect()

    @staticmethod
    def connect() -> psycopg.Connection[Any]:
        config = connection.settings_dict
        return psycopg.connect(
            dbname=str(config["NAME"]),
            user=str(config.get("USER") or "") or None,
            password=str(config.get("PASSWORD") or "") or None,
            host=str(config.get("HOST") or "") or None,
            port=str(config.get("PORT") or "") or None,
            autocommit=True,
            connect_timeout=10,
        )

    def send(self, item: FloorCase) -> Answer:
        try:
            with self.conn.transaction(), self.conn.cursor() as cursor:
                cursor.execute(LOCK_SQL, [item.lock_namespaces, item.lock_ids])
                cursor.execute(self.sql.booking_sql, item.booking)
                row = cursor.fetchone()
                assert row is not None
                cursor.execute(self.sql.legs_sql, self.sql.leg_params(item, int(row[0])))
        except psycopg.OperationalError as exc:
            if self.conn.closed:
                raise ConnectionError(str(exc)) from exc
            return type(exc).__name__, None
        except psycopg.Error as exc:
            return type(exc).__name__, None
        return "ok", None

    def reset(self) -> None:
        self.conn.close()
        self.conn = self.connect()

    def close(self) -> None:
        self.conn.close()


class SqliteFloor:
    """The floor on SQLite: the connection set up as the project's settings set up Django's,
    and the write lock taken at BEGIN, as the booking's IMMEDIATE transaction takes it."""

    def __init__(self, sql: FloorSql) -> None:
        self.sql = sql
        options = connection.settings_dict.get("OPTIONS", {})
        self.conn = sqlite3.connect(
            str(connection.settings_dict["NAME"]),
            timeout=float(options.get("timeout", 5)),
            isolation_level=None,
            check_same_thread=False,
        )
        # What Django does on every SQLite connection, plus the project's init command.
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.executescript(str(options.get("init_command", "")))

    def send(self, item: FloorCase) -> Answer:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            return type(exc).__name__, None
        try:
            cursor = self.conn.execute(self.sql.booking_sql, item.booking)
            booking_id = cursor.lastrowid
            assert booking_id is not None
            self.conn.execute(self.sql.legs_sql, self.sql.leg_params(item, booking_id))
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            return type(exc).__name__, None
        return "ok", None

    def reset(self) -> None:
        pass

    def close(self) -> None:
        self.conn.close()


# --- one request at a time, in process -----------------------------------------------------------


@dataclass
class Profile:
    label: str
    expected: str
    statuses: Counter[str] = field(default_factory=Counter)
    wall_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    statements: list[tuple[str, float]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.expected if self.as_expected else " ".join(f"{k}:{v}" for k, v in sorted(self.statuses.items()))

    @property
    def as_expected(self) -> bool:
        return set(self.statuses) == {self.expected}


def query_kind(sql: str) -> str:
    if "pg_advisory_xact_lock" in sql:
        return "lock"
    verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
    if verb in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
        return "savepoint"
    return verb


def query_shape(sql: str) -> str:
    """Kind and first table of a statement: enough to see where a request goes, and never a
    parameter (they can be patient data)."""
    kind = query_kind(sql)
    found = re.search(r'(?<!EPOCH )\b(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', sql, re.IGNORECASE)
    return f"{kind} {found.group(1)}" if found and kind not in ("lock", "savepoint") else kind


@contextmanager
def quiet_logs() -> Iterator[None]:
    """In-process requests write the app's access lines; they are not part of this report."""
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


class StatementTimer:
    """Time spent in statements, at the clock's resolution (the query log keeps milliseconds,
    coarser than most of these statements). A commit is not a statement and is not counted."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, float]] = []

    @property
    def seconds(self) -> float:
        return sum(seconds for _, seconds in self.statements)

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        started = clock.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements.append((query_shape(sql), clock.perf_counter() - started))


def profile_requests(label: str, expected: str, token: str, calls: list[Call]) -> Profile:
    """Send ``calls`` through the whole Django stack in this process, one at a time, counting
    queries and the time spent in their statements. The first call only warms up."""
    client = InProcessClient(headers={"Authorization": f"Bearer {token}"})
    result = Profile(label, expected)
    with quiet_logs():
        for i, call in enumerate(calls):
            headers = dict(call.headers)
            content_type = headers.pop("Content-Type", "application/json")
            timer = StatementTimer()
            with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timer):
                started = clock.perf_counter()
                response = client.generic(
                    call.method, call.path, data=call.body or b"", content_type=content_type, headers=headers
                )
                wall = (clock.perf_counter() - started) * 1000
            result.statuses[str(response.status_code)] += 1
            if i == 0:
                continue
            result.wall_ms.append(wall)
            result.sql_ms.append(timer.seconds * 1000)
            result.queries.append(len(captured.captured_queries))
            if i == 1:
                result.kinds = Counter(query_kind(q["sql"]) for q in captured.captured_queries)
                result.statements = timer.statements
    return result


# --- the command --------------------------------------------------------------------------------


class Command(BaseCommand):
    help = (
        "Benchmark bookings over HTTP against the production server (gunicorn) beside a raw-SQL and "
        "an authenticated-GET floor. Only runs on a database whose name contains 'bench'. With -v 2 it also "
        "lists the statements of one pinned and one auto-assigned booking, with their times."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--requests", type=int, default=200, help="Requests per scenario and client count.")
        parser.add_argument("--clients", default="1,8,32", help="Concurrent clients, comma-separated.")
        parser.add_argument(
            "--rounds",
            type=int,
            default=5,
            help="Rounds per client count: the scenarios take turns, a part of their requests each round.",
        )
        parser.add_argument(
            "--contenders", type=int, default=32, help="Clients racing for one pinned start in the contention run."
        )
        parser.add_argument(
            "--allow-any-database",
            action="store_true",
            help="For tests only: skip the check that the database name contains 'bench'.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = int(options["verbosity"])
        name = database_name()
        if "bench" not in name.lower() and not options["allow_any_database"]:
            raise CommandError(
                f"Refusing to run on database {name!r}: the benchmark deletes and writes bookings, so it "
                "only runs on a database whose name contains 'bench' (bin/bench-booking sets one up)."
            )
        requests, contenders = options["requests"], options["contenders"]
        clients = parse_clients(options["clients"])
        if requests < 1 or contenders < 2:
            raise CommandError("--requests must be positive and --contenders at least 2.")
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self.run(requests=requests, clients=clients, contenders=contenders, rounds=options["rounds"])
        except KeyboardInterrupt:
            raise CommandError("Interrupted; the server it started has been stopped.") from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def run(self, *, requests: int, clients: list[int], contenders: int, rounds: int) -> None:
        vendor = connection.vendor
        zone = ZoneInfo(ZONE_NAME)
        today = timezone.now().astimezone(zone).date()
        load_before = os.getloadavg()[0]
        # Profile (pinned, auto, refused), warm-up (pinned, auto), then per client count the
        # floor's rows, pinned and auto; the contention slot and its racers.
        patients = 3 * (PROFILE_RUNS + 1) + 2 * WARMUP_BOOKINGS + 3 * len(clients) * requests + 1 + contenders
        password = secrets.token_urlsafe(24)
        clinic, state = prepare_clinic(today, patients, password)
        calendar = Calendar(clinic, today + timedelta(days=1))
        floor_sql = FloorSql(clinic)
        site_path = f"/api/v1/sites/{clinic.site.pk}/"

        with production_server(server_database_url(), vendor) as port:
            token = obtain_token(port, password)

            def http_worker() -> Worker[Call]:
                return HttpWorker(port, token)

            def floor_worker() -> Worker[FloorCase]:
                return PostgresFloor(floor_sql) if vendor == "postgresql" else SqliteFloor(floor_sql)

            profiles = self.profile(token, calendar, site_path)
            self.warm_up(calendar, max(clients), site_path, http_worker)

            runs: list[Run] = []
            for count in clients:
                # The scenarios take turns, a round at a time, so that a change in the machine's
                # load (other processes, the database's background work) falls on all of them
                # alike and the ratios between them hold.
                scenarios: list[tuple[str, Sequence[Any], Callable[[], Worker[Any]], str]] = [
                    ("floor: raw SQL", [floor_sql.case(c) for c in calendar.take(requests)], floor_worker, "ok"),
                    ("floor: GET site", [Call("GET", site_path)] * requests, http_worker, "200"),
                    (
                        "pinned booking",
                        [booking_call(c.pinned_body()) for c in calendar.take(requests)],
                        http_worker,
                        "201",
                    ),
                    (
                        "auto-assigned booking",
                        [booking_call(c.auto_body()) for c in calendar.take(requests)],
                        http_worker,
                        "201",
                    ),
                ]
                parts: dict[str, list[Run]] = {name: [] for name, *_ in scenarios}
                cuts = {name: in_rounds(items, rounds) for name, items, *_ in scenarios}
                for n in range(max(len(c) for c in cuts.values())):
                    for name, _, worker, success in scenarios:
                        if n < len(cuts[name]):
                            parts[name].append(drive(name, count, cuts[name][n], worker, success))
                runs += [merged(parts[name]) for name, *_ in scenarios]

            (slot,) = calendar.take(1)
            racers = [booking_call(replace(slot, patient_id=p).pinned_body()) for p in calendar.patients(contenders)]
            contention = drive("contention: one start", contenders, racers, http_worker, "201")

        self.report(
            clinic=clinic,
            state=state,
            port=port,
            load=(load_before, os.getloadavg()[0]),
            requests=requests,
            clients=clients,
            site_path=site_path,
            profiles=profiles,
            runs=runs,
            contention=contention,
        )
        self.verdict(profiles, runs, contention)

    @staticmethod
    def profile(token: str, calendar: Calendar, site_path: str) -> list[Profile]:
        pinned = calendar.take(PROFILE_RUNS + 1)
        auto = calendar.take(PROFILE_RUNS + 1)
        refused = calendar.patients(PROFILE_RUNS + 1)
        return [
            profile_requests("pinned booking", "201", token, [booking_call(c.pinned_body()) for c in pinned]),
            profile_requests("auto-assigned booking", "201", token, [booking_call(c.auto_body()) for c in auto]),
            profile_requests(
                "refused booking",
                "409",
                token,
                [booking_call(replace(pinned[-1], patient_id=p).pinned_body()) for p in refused],
            ),
            profile_requests("GET site", "200", token, [Call("GET", site_path)] * (PROFILE_RUNS + 1)),
        ]

    @staticmethod
    def warm_up(calendar: Calendar, clients: int, site_path: str, http_worker: Callable[[], Worker[Call]]) -> None:
        """Every server thread opens its database connection and every code path is imported
        before anything is timed."""
        runs = [drive("warm-up GET", clients, [Call("GET", site_path)] * (4 * clients), http_worker, "200")]
        for pinned in (True, False):
            cases = calendar.take(WARMUP_BOOKINGS)
            calls = [booking_call(c.pinned_body() if pinned else c.auto_body()) for c in cases]
            runs.append(drive("warm-up booking", min(clients, WARMUP_BOOKINGS), calls, http_worker, "201"))
        for run in runs:
            if run.errors or run.ok != run.sent:
                problems = ", ".join(f"{k} x{v}" for k, v in run.problems.items())
                raise CommandError(f"{run.name}: {run.answers_text()} {problems}, {run.errors} connection errors")

    def report(
        self,
        *,
        clinic: Clinic,
        state: str,
        port: int,
        load: tuple[float, float],
        requests: int,
        clients: list[int],
        site_path: str,
        profiles: list[Profile],
        runs: list[Run],
        contention: Run,
    ) -> None:
        out = self.stdout.write
        gunicorn = importlib.import_module("config.gunicorn")
        legs = len(clinic.plan)
        out("")
        out(f"== Booking load benchmark: {connection.vendor} (database {database_name()})")
        out(
            f"server: gunicorn -c config/gunicorn.py config.wsgi on {LOOPBACK}:{port}, "
            f"{gunicorn.workers} workers x {gunicorn.threads} threads ({gunicorn.worker_class}), DEBUG=false; "
            f"{os.cpu_count()} CPUs shared by server, database and clients (load average {load[0]:.1f} before, "
            f"{load[1]:.1f} after)"
        )
        out(
            f"clinic ({state}): {LANES} lanes (room with fixed C-arm, physician, rad tech, sedation nurse, "
            f"{BAYS_PER_LANE} bays), "
            f"{len(clinic.patient_ids):,} patients; every booking {PROCEDURE} {LEVELS} level, {SEDATION} "
            f"sedation: {legs} legs, {legs + 1} rows"
        )
        out(
            f"requests: {requests} per scenario and client count, keep-alive connections, one bearer token, "
            "a fresh Idempotency-Key per POST"
        )
        out(
            "floors: raw SQL = locks (advisory on the guard's keys / BEGIN IMMEDIATE) + booking row + leg rows, "
            f"committed, straight on the driver; GET = {site_path} with the token"
        )
        out("")
        out(f"one request at a time, in process (median of {PROFILE_RUNS}):")
        out(
            f"  {'request':<26}{'status':>7}{'total ms':>10}{'SQL ms':>9}{'statements':>11}"
            "   (statements include BEGIN and COMMIT; SQL ms is time in them)"
        )
        for prof in profiles:
            out(
                f"  {prof.label:<26}{prof.status:>7}{statistics.median(prof.wall_ms):>10.2f}"
                f"{statistics.median(prof.sql_ms):>9.2f}{statistics.median(prof.queries):>11.0f}"
            )
        for prof in profiles[:2]:
            kinds = ", ".join(f"{kind} {n}" for kind, n in prof.kinds.most_common())
            out(f"  statements of one {prof.label}: {kinds}")
            if self.verbosity >= 2:
                for shape, seconds in prof.statements:
                    out(f"    {seconds * 1000:7.2f} ms  {shape}")
        out("")
        header = (
            f"{'scenario':<24}{'clients':>8}{'requests':>9}{'ok/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
            f"  {'answers':<16}{'conn err':>9}"
        )
        out(header)
        order = ["pinned booking", "auto-assigned booking", "floor: raw SQL", "floor: GET site"]
        for name in order:
            for run in (r for r in runs if r.name == name):
                out(self.row(run))
        verdict = "exactly one 201: ok" if self.contention_ok(contention) else "exactly one 201: MISSED"
        out(f"{self.row(contention)}  {verdict}")
        unexpected = Counter[str]()
        for run in runs:
            unexpected += run.problems
        unexpected += Counter({k: v for k, v in contention.problems.items() if not k.startswith("409 ")})
        if unexpected:
            out(
                "unexpected answers (status and problem code): " + ", ".join(f"{k} x{v}" for k, v in unexpected.items())
            )
        out("")
        out(
            f"{'booking / floor, same clients':<34}{'p50/SQL':>9}{'p95/SQL':>9}{'p50/GET':>9}{'p95/GET':>9}"
            f"{'SQL ops/s per booking/s':>26}{'GET/s per booking/s':>22}"
        )
        by_key = {(r.name, r.clients): r for r in runs}
        for name in order[:2]:
            for count in clients:
                run, sql, get = (
                    by_key[(name, count)],
                    by_key[("floor: raw SQL", count)],
                    by_key[("floor: GET site", count)],
                )
                label = f"{name}, {count} client{'s' if count > 1 else ''}"
                out(
                    f"{label:<34}"
                    f"{ratio(run.p(50), sql.p(50)):>9}{ratio(run.p(95), sql.p(95)):>9}"
                    f"{ratio(run.p(50), get.p(50)):>9}{ratio(run.p(95), get.p(95)):>9}"
                    f"{ratio(sql.rate, run.rate):>26}{ratio(get.rate, run.rate):>22}"
                )
        goals = []
        for name in order[:2]:
            if (name, 1) in by_key:
                run, get = by_key[(name, 1)], by_key[("floor: GET site", 1)]
                goals.append(
                    f"{name} p50 at 1 client: {run.p(50):.2f} ms = {fraction(run.p(50), get.p(50))} the GET's "
                    f"{get.p(50):.2f} ms" + (" (goal: at most 3 x)" if name == "pinned booking" else "")
                )
            if (name, 8) in by_key:
                run, get = by_key[(name, 8)], by_key[("floor: GET site", 8)]
                goals.append(
                    f"{name}s/s at 8 clients: {run.rate:.1f} = {fraction(run.rate, get.rate)} the GET's "
                    f"{get.rate:.1f}/s" + (" (goal: at least 0.4 x)" if name == "pinned booking" else "")
                )
        if goals:
            out("")
            out("against the GET floor:")
            for line in goals:
                out(f"  {line}")

    @staticmethod
    def row(run: Run) -> str:
        return (
            f"{run.name:<24}{run.clients:>8}{run.sent:>9}{run.rate:>9.1f}{run.p(50):>9.2f}{run.p(95):>9.2f}"
            f"{run.p(99):>9.2f}  {run.answers_text():<16}{run.errors:>9}"
        )

    @staticmethod
    def contention_ok(run: Run) -> bool:
        return run.errors == 0 and run.answers == Counter({"201": 1, "409": run.sent - 1})

    def verdict(self, profiles: list[Profile], runs: list[Run], contention: Run) -> None:
        wrong = [f"{p.label} in process: {p.status}" for p in profiles if not p.as_expected]
        wrong += [
            f"{run.name} at {run.clients} clients: {run.answers_text()}, {run.errors} connection errors"
            for run in runs
            if run.errors or run.answers != Counter({run.success: run.sent})
        ]
        if not self.contention_ok(contention):
            wrong.append(f"contention: {contention.answers_text()}, {contention.errors} connection errors")
        if wrong:
            raise CommandError("The bench did not run as planned:\n  " + "\n  ".join(wrong))


def fraction(value: float, floor: float) -> str:
    if not floor or math.isnan(value) or math.isnan(floor):
        return "- x"
    return f"{value / floor:.2f} x"


def ratio(value: float, floor: float) -> str:
    if not floor or math.isnan(value) or math.isnan(floor):
        return "-"
    return f"{value / floor:.1f}x"


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
