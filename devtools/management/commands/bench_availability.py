"""Benchmark the availability search against a large, realistic clinic.

Prints figures and asserts nothing: timing belongs in a report, not in a test that fails on a
busy machine. The clinic and its history are generated once per database and size, then reused,
so reruns only measure.

The data, by construction free of overlaps per resource:

- one site (America/Chicago, TX, open Mon-Sat 06:00-20:00), 8 rooms, 8 C-arms (6 fixed, 2
  mobile), 2 RF generators, 14 recovery bays, 10 physicians, 8 rad techs, 6 nurses (4 sedation
  capable), 2 anesthesia providers, 5000 patients;
- every room is a "lane" with its own C-arm, rad tech, sedation provider and recovery bays, and a
  physician that rotates between lanes day by day; a lane lays its cases back to back, so none of
  its resources can be double-booked. Recovery bays are picked greedily (a case waits for a free
  bay), and patients rotate through all 5000, so a patient comes back only weeks later;
- history: Mon-Sat days going back from yesterday until at least ``--legs`` legs exist (about
  five years for a million). Past cases are 'discharged' with active legs, as the booking services
  leave them; about 3% are cancelled with inactive legs, as cancellations leave them;
- the next 35 days are 'scheduled' at 60-80% of room time, so every measured window (up to 28
  days starting at most a week from tomorrow) lies in booked time;
- every booking has its patient leg, so the patient column is as large as in a real clinic.
"""

from __future__ import annotations

import gc
import importlib
import random
import re
import statistics
import time as clock
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.management.color import no_style
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from patients.models import Patient
from rooms.models import Capability, Equipment, EquipmentKind, OpeningHours, ProcedureRoom, RecoveryBay, Site
from scheduling.availability.search import SearchQuery, availability_search
from scheduling.catalogue import install_default_catalogue
from scheduling.legs import plan_legs
from scheduling.models import ROLE_COLUMN, Allocation, Booking, LegRole, ProcedureType
from scheduling.request import CaseRequest
from scheduling.rules import rulebook as rulebook_module
from scheduling.rules.inputs import legs_sql, load_window
from staff.models import Credential, CredentialKind, Shift, StaffMember, StaffRole

# The migration's module name starts with a digit, so it cannot be imported by name.
overlap_guard = importlib.import_module("scheduling.migrations.0002_no_overlap_guard")

SITE_CODE = "bench"
SITE_NAME = "Benchmark Spine & Pain Center"
ZONE_NAME = "America/Chicago"
JURISDICTION = "TX"
STAFF_EMAIL_DOMAIN = "bench-clinic.example"
MRN_PREFIX = "BENCH"
# Bump when the generated data changes shape, so older bench databases are rebuilt.
DATA_VERSION = 2
# The clinic is the same whatever --seed says: the seed varies the measured queries only.
DATA_SEED = 20_240_601

OPENS, CLOSES = time(6, 0), time(20, 0)
DAY_MINUTES = 14 * 60
WEEKDAYS = (0, 1, 2, 3, 4, 5)
PATIENT_COUNT = 5000
FUTURE_DAYS = 35
UTILISATION_DAYS = 28
CANCEL_RATE = 0.03
# Above this many legs the overlap guard is dropped for the load and rebuilt afterwards:
# rebuilding an index once is far cheaper than maintaining it row by row.
BULK_THRESHOLD = 100_000

WEEK_TARGET_MS = {"postgresql": 50.0, "sqlite": 80.0}
MONTH_TARGET_MS = 200.0
RATIO_TARGET = 10.0
QUERY_TARGET = 2

TABLE = Allocation._meta.db_table
BOOKING_TABLE = Booking._meta.db_table
LEG_COLUMNS = (
    "booking_id",
    "role",
    "patient_id",
    "room_id",
    "equipment_id",
    "staff_id",
    "bay_id",
    "starts_at",
    "ends_at",
    "is_active",
)
# The case order of a bench booking: nothing named, no authorisation needed.
ORDER_VALUES = {
    "level_names": "[]",
    "side": "",
    "indication_code": "",
    "indication_text": "",
    "referring_provider": "",
    "external_order_id": "",
    "prior_auth_number": "",
    "prior_auth_status": "not_required",
    "order_notes": "",
}
ORDER_COLUMNS = tuple(ORDER_VALUES)
BOOKING_COLUMNS = (
    "id",
    "patient_id",
    "procedure_type_id",
    "site_id",
    "levels",
    "sedation",
    "status",
    "starts_at",
    "ends_at",
    "arrival_at",
    "cancel_reason",
    "cancel_note",
    "anticoagulant_override_reason",
    "created_at",
    "updated_at",
    *ORDER_COLUMNS,
)
# Position of each resource column in a leg row.
SLOT_OF_COLUMN = {"patient": 2, "room": 3, "equipment": 4, "staff": 5, "bay": 6}

Mix = tuple[tuple[str, int, tuple[tuple[str, int], ...]], ...]
LOCAL: tuple[tuple[str, int], ...] = (("local", 1),)
# (procedure, weight, sedation weights) per kind of lane. Sedation follows what the lane can
# staff: lanes with a sedation nurse do moderate sedation, the anesthesia lanes MAC, the
# injection lanes local only.
SEDATION_LANE: Mix = (
    ("VP", 30, (("moderate", 85), ("local", 15))),
    ("KP", 15, (("moderate", 1),)),
    ("ESI-TF", 15, (("local", 90), ("moderate", 10))),
    ("ESI-IL", 10, (("local", 90), ("moderate", 10))),
    ("MBB", 15, LOCAL),
    ("SIJ", 15, LOCAL),
)
ANESTHESIA_LANE: Mix = (
    ("KP", 40, (("mac", 1),)),
    ("VP", 30, (("mac", 1),)),
    ("ESI-TF", 10, LOCAL),
    ("MBB", 10, LOCAL),
    ("SIJ", 10, LOCAL),
)
INJECTION_LANE: Mix = (
    ("ESI-TF", 25, LOCAL),
    ("ESI-IL", 20, LOCAL),
    ("MBB", 20, LOCAL),
    ("RFA", 20, LOCAL),
    ("SIJ", 15, LOCAL),
)
LEVEL_WEIGHTS: dict[str, tuple[int, ...]] = {
    "VP": (70, 25, 5),
    "KP": (75, 20, 5),
    "ESI-TF": (60, 40),
    "MBB": (30, 50, 20),
    "RFA": (50, 50),
    "SIJ": (40, 60),
}
ALL_CODES = ("VP", "KP", "ESI-IL", "ESI-TF", "MBB", "RFA", "SIJ", "SCS-T")


def database_name() -> str:
    name = str(settings.DATABASES["default"]["NAME"])
    return Path(name).name if connection.vendor == "sqlite" else name


def epoch_minute(moment: datetime) -> int:
    return int(moment.timestamp()) // 60


# --- the clinic -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lane:
    """A room with the resources that work only in it, so its cases never overlap each other."""

    index: int
    room_id: int
    c_arm_id: int
    rf_generator_id: int | None
    rad_tech_id: int
    sedation_id: int | None
    bay_ids: tuple[int, ...]
    mix: Mix


@dataclass
class Clinic:
    site: Site
    zone: ZoneInfo
    lanes: list[Lane]
    physician_ids: list[int]
    patient_ids: list[int]
    summary: str


@dataclass(frozen=True)
class Marker:
    """What the bench site says about its data, kept in its address field."""

    version: int
    legs: int
    today: date
    seconds: float

    def text(self) -> str:
        return f"bench-data v{self.version} legs={self.legs} today={self.today.isoformat()} secs={self.seconds:.1f}"

    @classmethod
    def parse(cls, text: str) -> Marker | None:
        found = re.fullmatch(r"bench-data v(\d+) legs=(\d+) today=(\S+) secs=([\d.]+)", text or "")
        if not found:
            return None
        return cls(int(found[1]), int(found[2]), date.fromisoformat(found[3]), float(found[4]))


def build_clinic(today: date) -> Site:
    site = Site.objects.create(
        name=SITE_NAME, code=SITE_CODE, timezone=ZONE_NAME, jurisdiction=JURISDICTION, address="building"
    )
    OpeningHours.objects.bulk_create(
        OpeningHours(site=site, weekday=weekday, opens_at=OPENS, closes_at=CLOSES) for weekday in WEEKDAYS
    )
    capabilities = [Capability.FLUOROSCOPY.value, Capability.STERILE_FIELD.value]
    rooms = ProcedureRoom.objects.bulk_create(
        ProcedureRoom(site=site, name=f"Fluoro {i}", capabilities=capabilities) for i in range(1, 9)
    )
    equipment = [
        Equipment(site=site, kind=EquipmentKind.C_ARM, name=f"C-arm {i + 1}", room=room)
        for i, room in enumerate(rooms[:6])
    ]
    equipment += [Equipment(site=site, kind=EquipmentKind.C_ARM, name=f"C-arm {i} (mobile)") for i in (7, 8)]
    equipment += [Equipment(site=site, kind=EquipmentKind.RF_GENERATOR, name=f"RF generator {i}") for i in (1, 2)]
    Equipment.objects.bulk_create(equipment)
    RecoveryBay.objects.bulk_create(RecoveryBay(site=site, name=f"Bay {i:02d}") for i in range(1, 15))

    people = (
        [(StaffRole.PHYSICIAN, False)] * 10
        + [(StaffRole.RAD_TECH, False)] * 8
        + [(StaffRole.NURSE, True)] * 4
        + [(StaffRole.NURSE, False)] * 2
        + [(StaffRole.ANESTHESIA, False)] * 2
    )
    staff = StaffMember.objects.bulk_create(
        StaffMember(
            first_name=f"{role.label.split()[0]}{i:02d}",
            last_name="Bench",
            role=role,
            sedation_capable=sedation,
            email=f"{role.value}{i:02d}@{STAFF_EMAIL_DOMAIN}",
        )
        for i, (role, sedation) in enumerate(people)
    )
    Shift.objects.bulk_create(
        Shift(staff=member, site=site, weekday=weekday, starts_at=OPENS, ends_at=CLOSES)
        for member in staff
        for weekday in WEEKDAYS
    )
    issued = today - timedelta(days=365 * 12)
    credentials = [
        Credential(staff=member, kind=CredentialKind.PRIVILEGE, procedure_code=code, valid_from=issued)
        for member in staff
        if member.role == StaffRole.PHYSICIAN
        for code in ALL_CODES
    ]
    credentials += [
        Credential(
            staff=member,
            kind=CredentialKind.FLUOROSCOPY,
            jurisdiction=JURISDICTION,
            identifier=f"TX-MRT-{member.pk:06d}",
            valid_from=issued,
            expires_on=today + timedelta(days=365 * 10),
        )
        for member in staff
        if member.role == StaffRole.RAD_TECH
    ]
    Credential.objects.bulk_create(credentials)
    rng = random.Random(DATA_SEED)
    Patient.objects.bulk_create(
        (
            Patient(
                mrn=f"{MRN_PREFIX}{i:06d}",
                first_name=f"Patient{i:04d}",
                last_name="Bench",
                date_of_birth=date(rng.randint(1935, 1990), rng.randint(1, 12), rng.randint(1, 28)),
            )
            for i in range(PATIENT_COUNT)
        ),
        batch_size=1000,
    )
    return site


def load_clinic(site: Site) -> Clinic:
    rooms = list(ProcedureRoom.objects.filter(site=site).order_by("id").values_list("id", flat=True))
    fixed = dict(
        Equipment.objects.filter(site=site, kind=EquipmentKind.C_ARM, room__isnull=False).values_list("room_id", "id")
    )
    mobile = list(
        Equipment.objects.filter(site=site, kind=EquipmentKind.C_ARM, room__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    rf = list(
        Equipment.objects.filter(site=site, kind=EquipmentKind.RF_GENERATOR).order_by("id").values_list("id", flat=True)
    )
    bays = list(RecoveryBay.objects.filter(site=site).order_by("id").values_list("id", flat=True))
    staff = list(
        StaffMember.objects.filter(email__endswith=f"@{STAFF_EMAIL_DOMAIN}")
        .order_by("id")
        .values_list("id", "role", "sedation_capable")
    )

    def of(role: str, sedation: bool | None = None) -> list[int]:
        return [pk for pk, r, s in staff if r == role and (sedation is None or s == sedation)]

    physicians, techs = of(StaffRole.PHYSICIAN), of(StaffRole.RAD_TECH)
    sedation_nurses, anesthesia = of(StaffRole.NURSE, True), of(StaffRole.ANESTHESIA)
    patients = list(Patient.objects.filter(mrn__startswith=MRN_PREFIX).order_by("id").values_list("id", flat=True))
    if len(rooms) != 8 or len(mobile) != 2 or len(fixed) != 6 or len(bays) != 14 or len(physicians) < len(rooms):
        raise CommandError("The bench clinic is incomplete; run again with --regenerate.")

    lanes = []
    # Lanes 0-5 recover in two bays each (recovery may outlast one room slot); lanes 6-7 do
    # short injections whose recovery fits in one slot, so one bay each covers them.
    bay_sets = [tuple(bays[2 * i : 2 * i + 2]) for i in range(6)] + [(bays[12],), (bays[13],)]
    for i, room in enumerate(rooms):
        if i < 4:
            sedation, mix, rf_id = sedation_nurses[i], SEDATION_LANE, None
        elif i < 6:
            sedation, mix, rf_id = anesthesia[i - 4], ANESTHESIA_LANE, None
        else:
            sedation, mix, rf_id = None, INJECTION_LANE, rf[i - 6]
        c_arm = fixed[room] if room in fixed else mobile[i - 6]
        lanes.append(Lane(i, room, c_arm, rf_id, techs[i], sedation, bay_sets[i], mix))
    resources = len(rooms) + len(fixed) + len(mobile) + len(rf) + len(bays) + len(staff)
    summary = (
        f"{len(rooms)} rooms, {len(fixed) + len(mobile)} C-arms ({len(fixed)} fixed, {len(mobile)} mobile), "
        f"{len(rf)} RF generators, {len(bays)} recovery bays, {len(staff)} staff ({len(physicians)} physicians, "
        f"{len(techs)} rad techs, {len(of(StaffRole.NURSE))} nurses of whom {len(sedation_nurses)} sedation "
        f"capable, {len(anesthesia)} anesthesia) = {resources} resources; {len(patients)} patients"
    )
    return Clinic(site, ZoneInfo(site.timezone), lanes, physicians, patients, summary)


def delete_clinic(site: Site) -> None:
    Patient.objects.filter(mrn__startswith=MRN_PREFIX).delete()
    StaffMember.objects.filter(email__endswith=f"@{STAFF_EMAIL_DOMAIN}").delete()
    Equipment.objects.filter(site=site).delete()
    RecoveryBay.objects.filter(site=site).delete()
    ProcedureRoom.objects.filter(site=site).delete()
    site.delete()


def delete_bookings(site: Site, *, starting_from: datetime | None = None) -> None:
    """Delete the bench site's bookings and legs (all, or those starting from a moment)."""
    with connection.cursor() as cursor:
        others = Booking.objects.exclude(site=site).exists()
        if starting_from is None and not others and connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {TABLE}, {BOOKING_TABLE}")
            return
        condition = "site_id = %s"
        params: list[Any] = [site.pk]
        if starting_from is not None:
            condition += " AND starts_at >= %s"
            params.append(connection.ops.adapt_datetimefield_value(starting_from))
        cursor.execute(
            f"DELETE FROM {TABLE} WHERE booking_id IN (SELECT id FROM {BOOKING_TABLE} WHERE {condition})", params
        )
        cursor.execute(f"DELETE FROM {BOOKING_TABLE} WHERE {condition}", params)


# --- the schedule -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CasePlan:
    """One (procedure, levels, sedation) with its legs as minutes from the room start."""

    procedure_type_id: int
    code: str
    levels: int
    sedation: str
    room: int  # room minutes without turnover
    turnover: int
    recovery: int
    arrival: int
    legs: tuple[tuple[str, str, int, int], ...]  # (role, column, offset, minutes)

    @property
    def slot(self) -> int:
        return self.room + self.turnover


@dataclass(slots=True)
class Case:
    base: int  # epoch minute of the site's opening on the case's day
    lane: int
    plan: CasePlan
    start: int  # minutes after opening
    bay_id: int
    physician_id: int
    future: bool
    cancelled: bool
    booking_id: int = 0
    patient_id: int = 0


class Planner:
    """Lays out cases lane by lane, day by day; the same day always gets the same cases."""

    def __init__(self, clinic: Clinic, procedures: dict[str, ProcedureType]) -> None:
        self.clinic = clinic
        self.plans: dict[tuple[str, int, str], CasePlan] = {}
        for lane in clinic.lanes:
            for code, _, sedations in lane.mix:
                procedure = procedures[code]
                for levels in range(1, procedure.max_levels + 1):
                    for sedation, _ in sedations:
                        self.plans[(code, levels, sedation)] = self._plan(procedure, levels, sedation)

    @staticmethod
    def _plan(procedure: ProcedureType, levels: int, sedation: str) -> CasePlan:
        specs = plan_legs(procedure, levels=levels, sedation=sedation)
        room = next(s for s in specs if s.role == LegRole.ROOM)
        patient = next(s for s in specs if s.role == LegRole.PATIENT)
        legs = tuple((str(s.role), ROLE_COLUMN[s.role], s.offset, s.minutes) for s in specs)
        return CasePlan(
            procedure_type_id=procedure.pk,
            code=procedure.code,
            levels=levels,
            sedation=sedation,
            room=room.minutes - procedure.turnover_minutes,
            turnover=procedure.turnover_minutes,
            recovery=procedure.recovery_minutes,
            arrival=-patient.offset,
            legs=legs,
        )

    def pick(self, rng: random.Random, lane: Lane) -> CasePlan:
        code, _, sedations = rng.choices(lane.mix, weights=[w for _, w, _ in lane.mix])[0]
        max_levels = max(levels for c, levels, _ in self.plans if c == code)
        weights = LEVEL_WEIGHTS.get(code, (1,))[:max_levels]
        levels = rng.choices(range(1, len(weights) + 1), weights=weights)[0]
        sedation = rng.choices([s for s, _ in sedations], weights=[w for _, w in sedations])[0]
        return self.plans[(code, levels, sedation)]

    def day(self, day: date, *, future: bool) -> list[Case]:
        rng = random.Random(f"{DATA_SEED}:{day.isoformat()}:{future}")
        base = epoch_minute(datetime.combine(day, OPENS, tzinfo=self.clinic.zone))
        physicians = self.clinic.physician_ids
        cases = []
        for lane in self.clinic.lanes:
            # The physician of each lane changes every day; on one day no two lanes share one.
            physician = physicians[(lane.index + day.toordinal()) % len(physicians)]
            # Booked share of room time for the coming days; the past is packed.
            booked = rng.uniform(0.66, 0.9) if future else 1.0
            bay_free = dict.fromkeys(lane.bay_ids, 0)
            cursor, misses = 0, 0
            while misses < 3:
                plan = self.pick(rng, lane)
                bay = min(bay_free, key=lambda b: (bay_free[b], b))
                start = max(cursor, plan.arrival, bay_free[bay] - plan.room)
                start = -(-start // 5) * 5
                if start + plan.slot > DAY_MINUTES or start + plan.room + plan.recovery > DAY_MINUTES:
                    misses += 1
                    continue
                cases.append(Case(base, lane.index, plan, start, bay, physician, future, rng.random() < CANCEL_RATE))
                bay_free[bay] = start + plan.room + plan.recovery
                if future:
                    idle = plan.slot * (1 - booked) / booked
                    gap = int(idle * rng.uniform(0.2, 1.8) / 5) * 5
                else:
                    gap = rng.choice((0, 0, 0, 5, 10, 15))
                cursor = start + plan.slot + gap
        return cases


def legs_of(case: Case) -> int:
    return len(case.plan.legs)


@dataclass
class Schedule:
    history: list[Case] = field(default_factory=list)
    future: list[Case] = field(default_factory=list)
    first_day: date | None = None
    last_history_day: date | None = None

    @property
    def cases(self) -> list[Case]:
        return self.history + self.future


def plan_schedule(planner: Planner, *, legs: int, today: date, history_from: date | None) -> Schedule:
    """History back from yesterday until ``legs`` legs (or from ``history_from``), then the
    coming days."""
    schedule = Schedule()
    days: list[list[Case]] = []
    count = 0
    day = today - timedelta(days=1)
    while (count < legs) if history_from is None else (day >= history_from):
        if day.weekday() in WEEKDAYS:
            cases = planner.day(day, future=False)
            count += sum(legs_of(c) for c in cases)
            days.append(cases)
            schedule.first_day = day
            schedule.last_history_day = schedule.last_history_day or day
        day -= timedelta(days=1)
    for cases in reversed(days):
        schedule.history.extend(cases)
    for offset in range(1, FUTURE_DAYS + 1):
        day = today + timedelta(days=offset)
        if day.weekday() in WEEKDAYS:
            schedule.future.extend(planner.day(day, future=True))
    return schedule


def number_cases(cases: list[Case], *, first_booking_id: int, patient_ids: list[int]) -> None:
    """Booking ids in time order, and patients in rotation: a patient comes back only after
    every other patient has had a case, weeks later, so patient legs cannot overlap."""
    by_day: dict[int, int] = {}
    for case in cases:
        by_day[case.base] = by_day.get(case.base, 0) + 1
    if by_day and max(by_day.values()) >= len(patient_ids):
        raise CommandError("More cases in one day than patients; the rotation would double-book someone.")
    for i, case in enumerate(cases):
        case.booking_id = first_booking_id + i
        case.patient_id = patient_ids[i % len(patient_ids)]


# --- rows ---------------------------------------------------------------------------------------


class Stamps:
    """Timestamps as the database stores them, cached by minute (legs of a case share them)."""

    def __init__(self) -> None:
        self.cache: dict[int, str] = {}
        self.postgres = connection.vendor == "postgresql"
        sample = datetime(2024, 3, 10, 13, 5, tzinfo=UTC)
        if not self.postgres and self.text(epoch_minute(sample)) != connection.ops.adapt_datetimefield_value(sample):
            raise CommandError("Unexpected SQLite datetime format; the bench rows would not compare with the app's.")

    def text(self, minute: int) -> str:
        value = self.cache.get(minute)
        if value is None:
            moment = datetime.fromtimestamp(minute * 60, UTC)
            value = f"{moment:%Y-%m-%d %H:%M:%S}" + ("+00" if self.postgres else "")
            self.cache[minute] = value
        return value


def booking_rows(cases: Iterable[Case], site_id: int, stamps: Stamps) -> Iterator[tuple[Any, ...]]:
    for case in cases:
        plan = case.plan
        start = case.base + case.start
        end = start + max(offset + minutes for _, _, offset, minutes in plan.legs)
        status = "cancelled" if case.cancelled else ("scheduled" if case.future else "discharged")
        created = stamps.text(start - 14 * 24 * 60)
        yield (
            case.booking_id,
            case.patient_id,
            plan.procedure_type_id,
            site_id,
            plan.levels,
            plan.sedation,
            status,
            stamps.text(start),
            stamps.text(end),
            stamps.text(start - plan.arrival),
            "patient_request" if case.cancelled else "",
            "",
            "",
            created,
            created,
            *ORDER_VALUES.values(),
        )


def leg_rows(cases: Iterable[Case], lanes: list[Lane], stamps: Stamps) -> Iterator[tuple[Any, ...]]:
    for case in cases:
        lane = lanes[case.lane]
        fixed = {
            LegRole.PATIENT: case.patient_id,
            LegRole.ROOM: lane.room_id,
            LegRole.C_ARM: lane.c_arm_id,
            LegRole.RF_GENERATOR: lane.rf_generator_id,
            LegRole.PHYSICIAN: case.physician_id,
            LegRole.RAD_TECH: lane.rad_tech_id,
            LegRole.SEDATION_NURSE: lane.sedation_id,
            LegRole.ANESTHESIA: lane.sedation_id,
            LegRole.RECOVERY_BAY: case.bay_id,
        }
        start = case.base + case.start
        active = not case.cancelled
        for role, column, offset, minutes in case.plan.legs:
            resource = fixed.get(LegRole(role))
            if resource is None:
                raise CommandError(f"Lane {lane.index} has no resource for a {role} leg ({case.plan.code}).")
            row: list[Any] = [case.booking_id, role, None, None, None, None, None]
            row[SLOT_OF_COLUMN[column]] = resource
            row += [stamps.text(start + offset), stamps.text(start + offset + minutes), active]
            yield tuple(row)


# --- loading ------------------------------------------------------------------------------------


@dataclass
class LoadTimes:
    rows: float = 0.0
    foreign_keys: float = 0.0
    guard: float = 0.0
    check: float = 0.0
    analyze: float = 0.0


def drop_guard(cursor: Any) -> None:
    for column in overlap_guard.COLUMNS:
        name = overlap_guard.constraint_name(column)
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT IF EXISTS {name}")
        else:
            for suffix in ("insert", "update"):
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}_{suffix}")


def restore_guard(cursor: Any) -> None:
    """Re-create the guard exactly as migration 0002 does; on PostgreSQL that fails if any
    resource holds two overlapping active legs, so it is also the overlap check."""
    for column in overlap_guard.COLUMNS:
        if connection.vendor == "postgresql":
            cursor.execute(overlap_guard.postgres_sql(column))
        else:
            for statement in overlap_guard.sqlite_triggers(column):
                cursor.execute(statement)


def count_overlaps(cursor: Any) -> int:
    """Active legs starting before an earlier leg of the same resource has ended."""
    total = 0
    for column in overlap_guard.COLUMNS:
        cursor.execute(
            "SELECT COUNT(*) FROM (SELECT starts_at, MAX(ends_at) OVER (PARTITION BY "
            f"{column}_id ORDER BY starts_at, id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before_end "
            f"FROM {TABLE} WHERE is_active AND {column}_id IS NOT NULL) AS t WHERE before_end > starts_at"
        )
        total += int(cursor.fetchone()[0])
    return total


def insert_rows(cases: list[Case], clinic: Clinic, stamps: Stamps) -> None:
    with connection.cursor() as wrapper:
        raw = wrapper.cursor
        bookings = booking_rows(cases, clinic.site.pk, stamps)
        legs = leg_rows(cases, clinic.lanes, stamps)
        if connection.vendor == "postgresql":
            for table, columns, rows in ((BOOKING_TABLE, BOOKING_COLUMNS, bookings), (TABLE, LEG_COLUMNS, legs)):
                with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        else:
            for table, columns, rows in ((BOOKING_TABLE, BOOKING_COLUMNS, bookings), (TABLE, LEG_COLUMNS, legs)):
                marks = ", ".join("?" * len(columns))
                raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def load(cases: list[Case], clinic: Clinic) -> LoadTimes:
    """Write the cases in the current transaction; the guard is rebuilt (and checked) afterwards
    when the load is large."""
    times = LoadTimes()
    stamps = Stamps()
    bulk = sum(legs_of(c) for c in cases) >= BULK_THRESHOLD
    with connection.cursor() as cursor:
        started = clock.perf_counter()
        if bulk:
            drop_guard(cursor)
        insert_rows(cases, clinic, stamps)
        times.rows = clock.perf_counter() - started
        if bulk and connection.vendor == "postgresql":
            # The foreign keys are deferred, and PostgreSQL will not alter a table with checks
            # still queued: run them now rather than at commit.
            started = clock.perf_counter()
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            times.foreign_keys = clock.perf_counter() - started
        if bulk:
            started = clock.perf_counter()
            restore_guard(cursor)
            times.guard = clock.perf_counter() - started
        for statement in connection.ops.sequence_reset_sql(no_style(), [Booking, Allocation]):
            cursor.execute(statement)
        if connection.vendor == "sqlite" or not bulk:
            # PostgreSQL has just proven it by rebuilding the exclusion constraints; SQLite's
            # triggers only check rows inserted while they exist.
            started = clock.perf_counter()
            overlaps = count_overlaps(cursor)
            times.check = clock.perf_counter() - started
            if overlaps:
                raise CommandError(f"The generated schedule has {overlaps} overlapping legs; this is a bench bug.")
    return times


def analyze() -> float:
    started = clock.perf_counter()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # What autovacuum would have done to a table this old: statistics and visibility
            # map. VACUUM cannot run inside a transaction (a test's, say); ANALYZE can.
            verb = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
            cursor.execute(f"{verb} {TABLE}, {BOOKING_TABLE}")
        elif not connection.in_atomic_block:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return clock.perf_counter() - started


# --- measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    date_from: date
    date_to: date
    physician_id: int | None
    levels: int


@dataclass
class Measured:
    search_ms: list[float] = field(default_factory=list)
    floor_ms: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    busy: list[int] = field(default_factory=list)
    slots: list[int] = field(default_factory=list)
    floor_args: list[dict[str, Any]] = field(default_factory=list)


def make_probes(rng: random.Random, clinic: Clinic, tomorrow: date, days: int, starts: int, runs: int) -> list[Probe]:
    probes = []
    for _ in range(runs):
        first = tomorrow + timedelta(days=rng.randrange(starts))
        physician = rng.choice(clinic.physician_ids) if rng.random() < 0.5 else None
        probes.append(Probe(first, first + timedelta(days=days - 1), physician, rng.choice((1, 1, 2, 3))))
    return probes


def query_for(probe: Probe, vp: ProcedureType) -> SearchQuery:
    pins = {"physician": probe.physician_id} if probe.physician_id is not None else {}
    return SearchQuery(
        request=CaseRequest(procedure_type=vp, levels=probe.levels, pins=pins),
        date_from=probe.date_from,
        date_to=probe.date_to,
        count=10,
    )


def busy_floor(kwargs: dict[str, Any]) -> int:
    """The busy-interval part of the window query alone, with the search's own arguments."""
    ops = connection.ops
    sql, params = legs_sql(
        kwargs["ids"],
        lo=ops.adapt_datetimefield_value(kwargs["start"]),
        hi=ops.adapt_datetimefield_value(kwargs["end"]),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return len(cursor.fetchall())


def measure(probes: list[Probe], vp: ProcedureType, warmup: int) -> Measured:
    result = Measured()
    queries = [query_for(p, vp) for p in probes]
    for query in queries[:warmup]:
        availability_search(query)

    # Untimed pass: what the search asks the database, and the busy query's exact arguments,
    # which the floor then replays alone.
    calls: list[tuple[dict[str, Any], int]] = []

    def recorder(**kwargs: Any) -> Any:
        window = load_window(**kwargs)
        calls.append((kwargs, len(window.all_busy()) + len(window.stale)))
        return window

    with mock.patch.object(rulebook_module, "load_window", recorder):
        for query in queries:
            calls.clear()
            with CaptureQueriesContext(connection) as captured:
                availability_search(query)
            if len(calls) != 1:
                raise CommandError(f"The search ran the busy-interval query {len(calls)} times; expected once.")
            result.queries.append(len(captured.captured_queries))
            result.floor_args.append(calls[0][0])
            result.busy.append(calls[0][1])

    gc.collect()
    for query in queries:
        started = clock.perf_counter()
        slots = availability_search(query)
        result.search_ms.append((clock.perf_counter() - started) * 1000)
        result.slots.append(len(slots))

    for kwargs in result.floor_args[:warmup]:
        busy_floor(kwargs)
    gc.collect()
    for kwargs in result.floor_args:
        started = clock.perf_counter()
        busy_floor(kwargs)
        result.floor_ms.append((clock.perf_counter() - started) * 1000)
    return result


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def explain_busy(kwargs: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The busy query's plan, and the names of the overlap-guard indexes it uses."""
    with CaptureQueriesContext(connection) as captured:
        busy_floor(kwargs)
    sql = captured.captured_queries[-1]["sql"]
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql)
        rows = cursor.fetchall()
    lines = [str(row[0]) if connection.vendor == "postgresql" else str(row[-1]) for row in rows]
    used = sorted(set(re.findall(r"\b(\w+_no_overlap)\b", "\n".join(lines))))
    return lines, used


# --- the command --------------------------------------------------------------------------------


class Command(BaseCommand):
    help = (
        "Benchmark the availability search on a generated clinic with a large booking history. "
        "Only runs on a database whose name contains 'bench'."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--legs", type=int, default=1_000_000, help="Legs of history to generate (at least).")
        parser.add_argument("--runs", type=int, default=200, help="Timed runs per measurement.")
        parser.add_argument("--seed", type=int, default=1, help="Seed for the measured queries (windows, pins).")
        parser.add_argument(
            "--keep",
            action="store_true",
            default=True,
            help="Reuse data already generated at this size (the default).",
        )
        parser.add_argument("--regenerate", action="store_true", help="Delete the bench data and generate it again.")
        parser.add_argument(
            "--allow-any-database",
            action="store_true",
            help="For tests only: skip the check that the database name contains 'bench'.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = database_name()
        if "bench" not in name.lower() and not options["allow_any_database"]:
            raise CommandError(
                f"Refusing to run on database {name!r}: the benchmark writes a million rows and drops the "
                "overlap guard while loading, so it only runs on a database whose name contains 'bench' "
                "(bin/bench sets one up)."
            )
        if options["legs"] < 1 or options["runs"] < 1:
            raise CommandError("--legs and --runs must be positive.")
        install_default_catalogue(ProcedureType)
        clinic, generation = self.prepare(options["legs"], regenerate=options["regenerate"])
        self.benchmark(clinic, generation, runs=options["runs"], seed=options["seed"])

    # -- data --

    def prepare(self, legs: int, *, regenerate: bool) -> tuple[Clinic, str]:
        zone = ZoneInfo(ZONE_NAME)
        today = timezone.now().astimezone(zone).date()
        site = Site.objects.filter(code=SITE_CODE).first()
        marker = Marker.parse(site.address) if site else None
        if site and marker and not regenerate and marker.version == DATA_VERSION and marker.legs == legs:
            if marker.today == today:
                return load_clinic(site), f"reused (generated on {marker.today}, in {marker.seconds:.1f} s)"
            if marker.today < today:
                return self.refresh(site, marker, today)

        started = clock.perf_counter()
        replaced = site is not None
        with transaction.atomic():
            if site is not None:
                delete_bookings(site)
                delete_clinic(site)
            wiped = clock.perf_counter()
            site = build_clinic(today)
            clinic = load_clinic(site)
            planner = Planner(clinic, {p.code: p for p in ProcedureType.objects.all()})
            built = clock.perf_counter()
            schedule = plan_schedule(planner, legs=legs, today=today, history_from=None)
            cases = schedule.cases
            number_cases(cases, first_booking_id=next_booking_id(), patient_ids=clinic.patient_ids)
            planned = clock.perf_counter()
            times = load(cases, clinic)
        times.analyze = analyze()
        seconds = clock.perf_counter() - started
        Site.objects.filter(pk=site.pk).update(address=Marker(DATA_VERSION, legs, today, seconds).text())
        history_legs = sum(legs_of(c) for c in schedule.history)
        future_legs = sum(legs_of(c) for c in schedule.future)
        engine = "COPY" if connection.vendor == "postgresql" else "executemany"
        parts = [
            f"generated in {seconds:.1f} s: {len(cases):,} bookings, {history_legs:,} history legs "
            f"({schedule.first_day} to {schedule.last_history_day}) + {future_legs:,} legs in the next "
            f"{FUTURE_DAYS} days",
        ]
        if replaced:
            parts.append(f"old bench data deleted {wiped - started:.1f} s")
        parts += [
            f"clinic {built - wiped:.1f} s",
            f"schedule planned {planned - built:.1f} s",
            f"rows built and written ({engine}) {times.rows:.1f} s",
        ]
        if times.foreign_keys:
            parts.append(f"foreign-key checks {times.foreign_keys:.1f} s")
        if times.guard and connection.vendor == "postgresql":
            parts.append(f"exclusion constraints rebuilt {times.guard:.1f} s")
        elif times.guard:
            parts.append(f"triggers re-created {times.guard:.1f} s")
        if times.check:
            parts.append(f"overlap check {times.check:.1f} s")
        parts.append(f"{'vacuum/analyze' if connection.vendor == 'postgresql' else 'checkpoint'} {times.analyze:.1f} s")
        return clinic, "; ".join(parts)

    def refresh(self, site: Site, marker: Marker, today: date) -> tuple[Clinic, str]:
        """Days have passed since generation: the former coming days become history and a new
        coming month is added, leaving older history untouched."""
        started = clock.perf_counter()
        clinic = load_clinic(site)
        cutoff = datetime.combine(marker.today, time(0), tzinfo=clinic.zone)
        with transaction.atomic():
            delete_bookings(site, starting_from=cutoff)
            planner = Planner(clinic, {p.code: p for p in ProcedureType.objects.all()})
            schedule = plan_schedule(planner, legs=0, today=today, history_from=marker.today)
            cases = schedule.cases
            # Patients restart their rotation: everything before the cutoff ended the day before.
            number_cases(cases, first_booking_id=next_booking_id(), patient_ids=clinic.patient_ids)
            load(cases, clinic)
        analyze()
        seconds = clock.perf_counter() - started
        Site.objects.filter(pk=site.pk).update(address=Marker(DATA_VERSION, marker.legs, today, marker.seconds).text())
        return clinic, (
            f"reused (generated on {marker.today} in {marker.seconds:.1f} s); moved on to {today} in {seconds:.1f} s "
            f"({len(cases):,} bookings rewritten from {marker.today})"
        )

    # -- measurements --

    def benchmark(self, clinic: Clinic, generation: str, *, runs: int, seed: int) -> None:
        vendor = connection.vendor
        out = self.stdout.write
        vp = ProcedureType.objects.get(code="VP")
        today = timezone.now().astimezone(clinic.zone).date()
        tomorrow = today + timedelta(days=1)
        warmup = min(10, runs)
        rng = random.Random(seed)
        week_probes = make_probes(rng, clinic, tomorrow, 7, FUTURE_DAYS - 7 + 1, runs)
        month_probes = make_probes(rng, clinic, tomorrow, 28, FUTURE_DAYS - 28 + 1, runs)

        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*), SUM(CASE WHEN is_active THEN 1 ELSE 0 END) FROM {TABLE}")
            total_legs, active_legs = cursor.fetchone()
        utilisation = room_utilisation(clinic, tomorrow)

        week = measure(week_probes, vp, warmup)
        month = measure(month_probes, vp, warmup)

        out("")
        out(f"== Availability search benchmark: {vendor} (database {database_name()})")
        out(f"clinic: {clinic.summary}")
        out(f"data: {generation}")
        out(f"legs in the table: {total_legs:,} ({active_legs or 0:,} active)")
        out(f"room time booked in the next {UTILISATION_DAYS} days: {utilisation:.0%}")
        out(
            f"busy legs per window (median, min-max): week {statistics.median(week.busy):,.0f} "
            f"({min(week.busy):,}-{max(week.busy):,}), 28-day {statistics.median(month.busy):,.0f} "
            f"({min(month.busy):,}-{max(month.busy):,})"
        )
        out(
            f"slots found per search (median, min): week {statistics.median(week.slots):.0f} ({min(week.slots)}), "
            f"28-day {statistics.median(month.slots):.0f} ({min(month.slots)})"
        )
        out(
            f"runs: {runs} per measurement after {warmup} warm-up runs, seed {seed}; VP, 1-3 levels, "
            "half the runs with a physician pinned"
        )
        out("")
        week_target = WEEK_TARGET_MS[vendor]
        out(f"{'measurement':<22}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}   target")
        rows = (
            ("week search", week.search_ms, f"p95 <= {week_target:.0f} ms", week_target),
            ("28-day search", month.search_ms, f"p95 <= {MONTH_TARGET_MS:.0f} ms", MONTH_TARGET_MS),
            ("week floor", week.floor_ms, "busy-interval query alone", None),
            ("28-day floor", month.floor_ms, "busy-interval query alone", None),
        )
        for label, values, target, limit in rows:
            p50, p95, p99 = (percentile(values, p) for p in (50, 95, 99))
            verdict = "" if limit is None else ("  ok" if p95 <= limit else "  MISSED")
            out(f"{label:<22}{p50:>10.2f}{p95:>10.2f}{p99:>10.2f}   {target}{verdict}")
        for label, measured in (("search/floor week", week), ("search/floor 28-day", month)):
            r50 = percentile(measured.search_ms, 50) / percentile(measured.floor_ms, 50)
            r95 = percentile(measured.search_ms, 95) / percentile(measured.floor_ms, 95)
            verdict = "ok" if max(r50, r95) <= RATIO_TARGET else "MISSED"
            out(f"{label:<22}{r50:>9.1f}x{r95:>9.1f}x{'':>10}   <= {RATIO_TARGET:.0f}x  {verdict}")
        most = max(week.queries + month.queries)
        out(
            f"queries per search: {most} (week {min(week.queries)}-{max(week.queries)}, 28-day "
            f"{min(month.queries)}-{max(month.queries)}; target {QUERY_TARGET})"
            + ("" if most <= QUERY_TARGET else "  MISSED")
        )

        plan, used = explain_busy(week.floor_args[0])
        title = "EXPLAIN (ANALYZE, BUFFERS)" if vendor == "postgresql" else "EXPLAIN QUERY PLAN"
        out("")
        out(f"{title} of the busy-interval query, one-week window:")
        for line in plan:
            out(f"  {line}")
        if vendor == "postgresql":
            verdict = f"yes ({', '.join(used)})" if used else "NO"
            out(f"uses an index named *_no_overlap: {verdict}")


def next_booking_id() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {BOOKING_TABLE}")
        return int(cursor.fetchone()[0]) + 1


def room_utilisation(clinic: Clinic, tomorrow: date) -> float:
    """Active room-leg minutes over opening minutes, in the next ``UTILISATION_DAYS`` days."""
    days = [tomorrow + timedelta(days=i) for i in range(UTILISATION_DAYS)]
    open_days = [d for d in days if d.weekday() in WEEKDAYS]
    if not open_days:
        return 0.0
    lo = datetime.combine(days[0], time(0), tzinfo=clinic.zone)
    hi = datetime.combine(days[-1] + timedelta(days=1), time(0), tzinfo=clinic.zone)
    rooms = [lane.room_id for lane in clinic.lanes]
    legs = Allocation.objects.filter(
        is_active=True, room_id__in=rooms, starts_at__gte=lo, starts_at__lt=hi
    ).values_list("starts_at", "ends_at")
    booked = sum((end - start).total_seconds() / 60 for start, end in legs)
    return booked / (DAY_MINUTES * len(open_days) * len(rooms))
