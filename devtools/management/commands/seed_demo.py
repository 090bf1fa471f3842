"""Seed a believable demo clinic: one site, its rooms, equipment, staff, patients and a week of cases.

Every case is placed by the availability engine and booked through ``booking_create``, as a
scheduler's would be, so the demo holds only what the rules allow.
"""

from __future__ import annotations

import os
import random
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.audit import audit_record
from core.errors import BookingInvalid, SlotUnavailable
from patients.models import Drug, MedicationHold, Patient, Sex
from procedure_day.models import CaseChecklist
from rooms.models import Capability, Equipment, EquipmentKind, OpeningHours, ProcedureRoom, RecoveryBay, Site
from scheduling.availability.search import SearchQuery, availability_search
from scheduling.legs import room_minutes
from scheduling.models import Allocation, Booking, BookingStatus, ProcedureType, Sedation
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_cancel, booking_create
from staff.models import Credential, CredentialKind, Shift, StaffMember, StaffRole

SITE_CODE = "demo-main"
SITE_NAME = "Demo Spine & Pain Center"
SITE_ZONE = "America/Chicago"
JURISDICTION = "TX"
# Markers that tell demo rows from real ones, so --reset never touches a clinic's own data.
DEMO_EMAIL_DOMAIN = "demo-clinic.example"
DEMO_MRN_PREFIX = "MRN9"

OPENS, CLOSES = time(7, 0), time(18, 0)
WEEKDAYS = (0, 1, 2, 3, 4)
SLOT_MINUTES = 15
PATIENT_COUNT = 40
# Vertebral augmentation treats osteoporotic fractures, so most of its patients are old.
ELDERLY_COUNT = 26
CANCELLED_COUNT = 2
AUGMENTATION = frozenset({"VP", "KP", "SCS-T"})
# Cases with a long recovery start early so the patient is home before the clinic closes.
MORNING_STARTS = (time(7, 0), time(7, 0), time(8, 0), time(9, 0), time(10, 0), time(11, 0))
DAY_STARTS = tuple(time(hour, minute) for hour in range(7, 16) for minute in (0, 30))

DEMO_ROLES = ("admin", "scheduler", "physician", "nurse", "tech")

# (code, weight) of the cases booked on an ordinary day; one SCS-T is added to the week.
CASE_MIX: tuple[tuple[str, int], ...] = (
    ("VP", 30),
    ("KP", 20),
    ("ESI-TF", 12),
    ("ESI-IL", 8),
    ("MBB", 10),
    ("RFA", 10),
    ("SIJ", 10),
)
LEVEL_WEIGHTS: dict[str, tuple[int, ...]] = {
    "VP": (70, 25, 5),
    "KP": (75, 20, 5),
    "ESI-TF": (60, 40),
    "MBB": (30, 50, 20),
    "RFA": (50, 50),
    "SIJ": (40, 60),
}
SEDATION_WEIGHTS: dict[str, tuple[tuple[str, int], ...]] = {
    "VP": ((Sedation.MODERATE, 85), (Sedation.MAC, 15)),
    "KP": ((Sedation.MAC, 75), (Sedation.MODERATE, 25)),
    "ESI-TF": ((Sedation.LOCAL, 90), (Sedation.MODERATE, 10)),
    "ESI-IL": ((Sedation.LOCAL, 90), (Sedation.MODERATE, 10)),
    "RFA": ((Sedation.LOCAL, 70), (Sedation.MODERATE, 30)),
}

ALL_CODES = ("VP", "KP", "ESI-IL", "ESI-TF", "MBB", "RFA", "SIJ", "SCS-T")


@dataclass(frozen=True)
class StaffSpec:
    first_name: str
    last_name: str
    role: str
    weekdays: tuple[int, ...] = WEEKDAYS
    starts: time = OPENS
    ends: time = CLOSES
    privileges: tuple[str, ...] = ()
    sedation_capable: bool = False
    permit_expires_soon: bool = False
    login: str = ""


STAFF: tuple[StaffSpec, ...] = (
    StaffSpec("Elena", "Marquez", StaffRole.PHYSICIAN, privileges=("VP", "KP", "SCS-T"), login="physician"),
    StaffSpec("Samuel", "Okafor", StaffRole.PHYSICIAN, weekdays=(0, 1, 2, 3), privileges=("VP", "KP", "RFA", "MBB")),
    StaffSpec("Priya", "Raman", StaffRole.PHYSICIAN, privileges=("ESI-IL", "ESI-TF", "MBB", "SIJ", "RFA")),
    StaffSpec("Thomas", "Lindqvist", StaffRole.PHYSICIAN, starts=time(7, 30), privileges=ALL_CODES),
    StaffSpec("Jordan", "Ellis", StaffRole.RAD_TECH, login="tech"),
    StaffSpec("Maria", "Delgado", StaffRole.RAD_TECH),
    StaffSpec("Kevin", "Tran", StaffRole.RAD_TECH, permit_expires_soon=True),
    StaffSpec("Aisha", "Brooks", StaffRole.RAD_TECH, starts=time(8, 0)),
    StaffSpec("Grace", "Whitfield", StaffRole.NURSE, sedation_capable=True, login="nurse"),
    StaffSpec("Luis", "Carrillo", StaffRole.NURSE, sedation_capable=True),
    StaffSpec("Hannah", "Cole", StaffRole.NURSE, ends=time(16, 30)),
    StaffSpec("Robert", "Nakamura", StaffRole.ANESTHESIA),
    # An external rep covers several clinics and comes in on set days only.
    StaffSpec("Dana", "Fischer", StaffRole.DEVICE_REP, weekdays=(1, 3)),
)

FIRST_NAMES = (
    "Margaret", "Dorothy", "Harold", "Walter", "Betty", "Gloria", "Raymond", "Eugene", "Shirley", "Frances",
    "Rosa", "Guadalupe", "Ernesto", "Alfredo", "Mei", "Hiroshi", "Linh", "Kwame", "Abena", "Irene",
    "Curtis", "Loretta", "Bernice", "Wendell", "Marvin", "Juanita", "Esperanza", "Arthur", "Evelyn", "Lucille",
    "Daniel", "Jessica", "Marcus", "Tanya", "Brian", "Nicole", "Anthony", "Keisha", "Ryan", "Sofia",
)  # fmt: skip
MALE_FIRST_NAMES = frozenset(
    {"Harold", "Walter", "Raymond", "Eugene", "Ernesto", "Alfredo", "Hiroshi", "Kwame", "Curtis", "Wendell",
     "Marvin", "Arthur", "Daniel", "Marcus", "Brian", "Anthony", "Ryan"}
)  # fmt: skip
LAST_NAMES = (
    "Anderson", "Baker", "Castillo", "Dawson", "Espinoza", "Fletcher", "Garza", "Hoffman", "Ibarra", "Jenkins",
    "Kowalski", "Lambert", "Morales", "Nguyen", "Ortega", "Patterson", "Quintero", "Rhodes", "Salazar", "Thibodeaux",
    "Underwood", "Villarreal", "Washington", "Yates", "Zamora", "Bishop", "Cervantes", "Dominguez", "Ellison",
    "Fuentes", "Gallagher", "Holloway", "Kim", "Lopez", "McAllister", "Okonkwo", "Pham", "Reyes", "Schultz", "Tate",
)  # fmt: skip
ESCORT_FIRST_NAMES = (
    "Linda", "James", "Patricia", "Robert", "Carmen", "Michael", "Teresa", "David", "Angela", "Jose",
    "Karen", "Steven", "Maria", "Paul", "Diane", "Victor", "Julie", "Andre", "Rachel", "Tommy",
)  # fmt: skip
# (patient index, drug code, days before the demo Monday of the last dose)
DEMO_HOLDS = ((1, "warfarin", 8), (3, "apixaban", 1), (5, "aspirin-primary", 10))
ALLERGIES = ("", "", "", "", "", "Iodinated contrast", "Latex", "Penicillin", "Sulfa drugs", "Shellfish")
# 555-0100 to 555-0199 are reserved for fiction, so no real person is ever dialled.
AREA_CODES = ("512", "737", "210", "254")


@dataclass(frozen=True)
class CaseWanted:
    code: str
    levels: int
    sedation: str
    # The patient's preferred time; the case goes to the first free slot from here, wrapping
    # round to the morning, so a day is not packed into its first hours.
    not_before: time


@dataclass
class Clinic:
    site: Site
    zone: ZoneInfo
    rooms: list[ProcedureRoom]
    c_arms: list[Equipment]
    rf_generators: list[Equipment]
    bays: list[RecoveryBay]
    staff: dict[str, list[StaffMember]]
    specs: dict[int, StaffSpec]
    patients: list[Patient]
    elderly: list[Patient]
    procedures: dict[str, ProcedureType]


@dataclass
class Outcome:
    bookings: list[Booking] = field(default_factory=list)
    cancelled: int = 0
    unplaced: int = 0
    per_day: dict[date, int] = field(default_factory=dict)


def parse_week_of(value: str | date | None, zone: ZoneInfo) -> date:
    if value is None or value == "":
        return timezone.now().astimezone(zone).date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--week-of must be a date like 2026-12-07, not {value!r}.") from exc


class Command(BaseCommand):
    help = "Seed a demo clinic with staff, patients and a week of bookings (deterministic per --seed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=42, help="Random seed; the same seed gives the same week.")
        parser.add_argument(
            "--week-of", dest="week_of", default=None, help="A date in the demo week (default: today at the site)."
        )
        parser.add_argument("--reset", action="store_true", help="Delete the demo data first, then seed again.")

    def handle(self, *args: Any, **options: Any) -> None:
        zone = ZoneInfo(SITE_ZONE)
        week_of = parse_week_of(options.get("week_of"), zone)
        monday = week_of - timedelta(days=week_of.weekday())
        rng = random.Random(options.get("seed", 42))

        with transaction.atomic():
            seeded = Site.objects.filter(code=SITE_CODE).exists() or demo_patients().exists() or demo_staff().exists()
            if seeded:
                if not options.get("reset"):
                    self.stdout.write(
                        f"Demo data already exists (site {SITE_CODE!r}); nothing changed. "
                        "Run with --reset to delete and seed it again."
                    )
                    if settings.DEMO_PASSWORD:
                        # Keep the printed password true when the demo is started again.
                        hashed = make_password(settings.DEMO_PASSWORD)
                        get_user_model().objects.filter(username__in=DEMO_ROLES).update(password=hashed)
                        self.login_block(list(DEMO_ROLES), settings.DEMO_PASSWORD)
                    return
                removed = reset_demo()
                self.stdout.write(f"Removed the previous demo data ({removed} bookings).")
            clinic = build_clinic(rng, monday, zone)
            outcome = book_week(rng, clinic, monday)
            play_today(outcome.bookings, now=timezone.now())
            password = settings.DEMO_PASSWORD or secrets.token_urlsafe(12)
            accounts = create_accounts(clinic, password)

        self.report(clinic, outcome, monday, accounts, password)

    def report(self, clinic: Clinic, outcome: Outcome, monday: date, accounts: list[str], password: str) -> None:
        out = self.stdout.write
        active = len(outcome.bookings) - outcome.cancelled
        out(self.style.SUCCESS(f"Seeded demo site {clinic.site.code} ({clinic.site.timezone})."))
        out(
            f"  rooms {len(clinic.rooms)}, C-arms {len(clinic.c_arms)}, RF generators {len(clinic.rf_generators)}, "
            f"recovery bays {len(clinic.bays)}"
        )
        out("  staff " + ", ".join(f"{role} {len(members)}" for role, members in clinic.staff.items()))
        out(f"  patients {len(clinic.patients)}")
        out(
            f"  bookings created {len(outcome.bookings)} for the week of {monday:%Y-%m-%d} "
            f"({active} active, {outcome.cancelled} cancelled, {outcome.unplaced} could not be placed)"
        )
        out("  per day " + ", ".join(f"{day:%a} {count}" for day, count in sorted(outcome.per_day.items())))
        self.login_block(accounts, password)

    def login_block(self, accounts: list[str], password: str) -> None:
        out = self.stdout.write
        port = os.environ.get("PORT", "8000")
        out("")
        out("=" * 60)
        out(f"  Sign in at http://127.0.0.1:{port}/  (configuration at /admin/)")
        out(f"  Users      {', '.join(accounts)}")
        out(f"  Password   {password}")
        out("=" * 60)


def demo_patients() -> QuerySet[Patient]:
    return Patient.objects.filter(mrn__startswith=DEMO_MRN_PREFIX, mrn__regex=rf"^{DEMO_MRN_PREFIX}\d{{5}}$")


def demo_staff() -> QuerySet[StaffMember]:
    return StaffMember.objects.filter(email__iendswith=f"@{DEMO_EMAIL_DOMAIN}")


def reset_demo() -> int:
    """Delete demo rows children first: legs and bookings protect patients, staff and rooms."""
    site = Site.objects.filter(code=SITE_CODE).first()
    staff = demo_staff()
    bookings = Booking.objects.filter(site=site) if site else Booking.objects.none()
    removed = bookings.count()
    if site is not None:
        # The trail is append-only, so the reset itself is recorded rather than the old
        # booking records being erased.
        audit_record(actor=None, action="demo.reset", obj=site, details={"bookings": removed})
    Allocation.objects.filter(booking__in=bookings).delete()
    bookings.delete()
    demo_patients().exclude(bookings__isnull=False).delete()
    staff.delete()
    if site is not None:
        Equipment.objects.filter(site=site).delete()
        RecoveryBay.objects.filter(site=site).delete()
        OpeningHours.objects.filter(site=site).delete()
        Shift.objects.filter(site=site).delete()
        ProcedureRoom.objects.filter(site=site).delete()
        site.delete()
    return removed


def build_clinic(rng: random.Random, monday: date, zone: ZoneInfo) -> Clinic:
    site = Site.objects.create(
        name=SITE_NAME,
        code=SITE_CODE,
        timezone=SITE_ZONE,
        jurisdiction=JURISDICTION,
        address="1200 Demo Parkway, Austin, TX 78701",
    )
    OpeningHours.objects.bulk_create(
        OpeningHours(site=site, room=None, weekday=weekday, opens_at=OPENS, closes_at=CLOSES) for weekday in WEEKDAYS
    )
    base = [Capability.FLUOROSCOPY.value, Capability.STERILE_FIELD.value]
    rooms = [
        ProcedureRoom.objects.create(site=site, name="Fluoro 1", capabilities=[*base, Capability.ANESTHESIA.value]),
        ProcedureRoom.objects.create(site=site, name="Fluoro 2", capabilities=base),
        ProcedureRoom.objects.create(site=site, name="Fluoro 3", capabilities=base),
    ]
    c_arms = [
        Equipment.objects.create(
            site=site, kind=EquipmentKind.C_ARM, name="C-arm 1", serial_number="CA-10441", room=rooms[0]
        ),
        Equipment.objects.create(
            site=site, kind=EquipmentKind.C_ARM, name="C-arm 2", serial_number="CA-10587", room=rooms[1]
        ),
        Equipment.objects.create(
            site=site, kind=EquipmentKind.C_ARM, name="C-arm 3 (mobile)", serial_number="CA-11302"
        ),
    ]
    rf_generators = [
        Equipment.objects.create(
            site=site, kind=EquipmentKind.RF_GENERATOR, name="RF generator", serial_number="RF-2208"
        )
    ]
    bays = [RecoveryBay.objects.create(site=site, name=f"Bay {i}") for i in range(1, 9)]

    # Credentials must hold for the demo week even when it lies in the past.
    today = timezone.now().astimezone(zone).date()
    issued = min(today, monday) - timedelta(days=365)
    staff: dict[str, list[StaffMember]] = defaultdict(list)
    specs: dict[int, StaffSpec] = {}
    for index, spec in enumerate(STAFF):
        member = StaffMember.objects.create(
            first_name=spec.first_name,
            last_name=spec.last_name,
            role=spec.role,
            sedation_capable=spec.sedation_capable,
            email=f"{spec.first_name}.{spec.last_name}@{DEMO_EMAIL_DOMAIN}".lower(),
        )
        staff[spec.role].append(member)
        specs[member.pk] = spec
        Shift.objects.bulk_create(
            Shift(staff=member, site=site, weekday=weekday, starts_at=spec.starts, ends_at=spec.ends)
            for weekday in spec.weekdays
        )
        for code in spec.privileges:
            # Privileges are re-granted every two years at most clinics; some have no end date on file.
            expires = None if index % 2 else monday + timedelta(days=rng.randint(300, 700))
            Credential.objects.create(
                staff=member,
                kind=CredentialKind.PRIVILEGE,
                procedure_code=code,
                identifier=f"PRIV-{member.pk:03d}-{code}",
                valid_from=issued,
                expires_on=expires,
            )
        if spec.role == StaffRole.RAD_TECH:
            # One permit runs out just after the demo week, so the expiry warning has something to show.
            lapse = rng.randint(10, 25) if spec.permit_expires_soon else rng.randint(200, 700)
            Credential.objects.create(
                staff=member,
                kind=CredentialKind.FLUOROSCOPY,
                jurisdiction=JURISDICTION,
                identifier=f"TX-MRT-{rng.randint(100000, 999999)}",
                valid_from=issued,
                expires_on=monday + timedelta(days=lapse),
            )

    patients = create_patients(rng, monday)
    procedures = {pt.code: pt for pt in ProcedureType.objects.filter(code__in=ALL_CODES, is_active=True)}
    return Clinic(
        site=site,
        zone=zone,
        rooms=rooms,
        c_arms=c_arms,
        rf_generators=rf_generators,
        bays=bays,
        staff=dict(staff),
        specs=specs,
        patients=patients,
        elderly=patients[:ELDERLY_COUNT],
        procedures=procedures,
    )


def fictional_phone(rng: random.Random) -> str:
    return f"({rng.choice(AREA_CODES)}) 555-{rng.randint(100, 199):04d}"


def create_patients(rng: random.Random, monday: date) -> list[Patient]:
    mrns = rng.sample(range(100000), PATIENT_COUNT)
    patients = []
    for i, number in enumerate(mrns):
        age = rng.randint(60, 90) if i < ELDERLY_COUNT else rng.randint(32, 78)
        last_name = rng.choice(LAST_NAMES)
        # Escorts are mostly family, so they often share the surname.
        escort_last = last_name if rng.random() < 0.6 else rng.choice(LAST_NAMES)
        first_name = rng.choice(FIRST_NAMES)
        patients.append(
            Patient(
                mrn=f"{DEMO_MRN_PREFIX}{number:05d}",
                first_name=first_name,
                sex=Sex.MALE if first_name in MALE_FIRST_NAMES else Sex.FEMALE,
                last_name=last_name,
                date_of_birth=date(monday.year - age, rng.randint(1, 12), rng.randint(1, 28)),
                phone=fictional_phone(rng),
                escort_name=f"{rng.choice(ESCORT_FIRST_NAMES)} {escort_last}",
                escort_phone=fictional_phone(rng),
                allergies=rng.choice(ALLERGIES),
            )
        )
    created = Patient.objects.bulk_create(patients)
    # Some patients take blood thinners: one has finished a warfarin hold, one stops apixaban
    # the day before the demo week (their high-risk case is found from Thursday), one takes
    # aspirin for primary prevention and stopped in good time.
    drugs = {drug.code: drug for drug in Drug.objects.filter(code__in=[code for _, code, _ in DEMO_HOLDS])}
    MedicationHold.objects.bulk_create(
        MedicationHold(patient=created[index], drug=drugs[code], last_dose_on=monday - timedelta(days=before))
        for index, code, before in DEMO_HOLDS
        if code in drugs
    )
    return created


def day_requests(rng: random.Random, with_scs_trial: bool) -> list[CaseWanted]:
    codes = [code for code, _ in CASE_MIX]
    weights = [weight for _, weight in CASE_MIX]
    picked = rng.choices(codes, weights=weights, k=rng.randint(7, 9))
    if with_scs_trial:
        picked.append("SCS-T")
    requests = []
    for code in picked:
        level_weights = LEVEL_WEIGHTS.get(code, (1,))
        levels = rng.choices(range(1, len(level_weights) + 1), weights=level_weights)[0]
        options = SEDATION_WEIGHTS.get(code)
        sedation = rng.choices([s for s, _ in options], weights=[w for _, w in options])[0] if options else ""
        hours = MORNING_STARTS if code in AUGMENTATION else DAY_STARTS
        requests.append(CaseWanted(code=code, levels=levels, sedation=str(sedation), not_before=rng.choice(hours)))
    rng.shuffle(requests)
    # Long cases with long recoveries go first, or they no longer fit before the recovery area closes.
    requests.sort(key=lambda r: r.code not in AUGMENTATION)
    return requests


def book_week(rng: random.Random, clinic: Clinic, monday: date) -> Outcome:
    outcome = Outcome()
    rep_days = [
        d for d in WEEKDAYS if all(d in clinic.specs[m.pk].weekdays for m in clinic.staff[StaffRole.DEVICE_REP])
    ]
    scs_day = rng.choice(rep_days) if rep_days and "SCS-T" in clinic.procedures else None
    queues = {
        "elderly": rng.sample(clinic.elderly, len(clinic.elderly)),
        "any": rng.sample(clinic.patients, len(clinic.patients)),
    }
    booked_patients: set[int] = set()

    for weekday in WEEKDAYS:
        day = monday + timedelta(days=weekday)
        placed = 0
        for request in day_requests(rng, with_scs_trial=weekday == scs_day):
            if request.code not in clinic.procedures:
                outcome.unplaced += 1
                continue
            pool = "elderly" if request.code in {"VP", "KP"} else "any"
            patient = next_patient(queues[pool], booked_patients)
            booking = place_case(clinic, request, patient, day)
            if booking is None:
                outcome.unplaced += 1
                continue
            booked_patients.add(patient.pk)
            outcome.bookings.append(booking)
            placed += 1
        outcome.per_day[day] = placed

    for booking in rng.sample(outcome.bookings, min(CANCELLED_COUNT, len(outcome.bookings))):
        booking_cancel(actor=None, booking=booking, reason="patient_request")
        outcome.cancelled += 1
    return outcome


def play_today(bookings: list[Booking], *, now: datetime) -> int:
    """Bring today's cases up to the clock, so the board and the flow of a demo started during
    the day look like a day in progress: cases over are discharged, one in its recovery time is
    in recovery, one in its room time is in procedure, a patient due in the hour is checked in,
    each with its step times and a completed checklist. Demo data only; returns how many moved."""
    moved = 0
    for booking in bookings:
        booking.refresh_from_db()
        zone = booking.site.zone
        if (
            booking.status != BookingStatus.SCHEDULED
            or booking.starts_at.astimezone(zone).date() != now.astimezone(zone).date()
        ):
            continue
        procedure = booking.procedure_type
        procedure_end = booking.starts_at + timedelta(minutes=room_minutes(procedure, booking.levels))
        recovered = procedure_end + timedelta(minutes=procedure.recovery_minutes)
        steps: dict[str, Any] = {}
        if now >= booking.arrival_at:
            steps.update(checked_in_at=booking.arrival_at + timedelta(minutes=5), status=BookingStatus.CHECKED_IN)
        if now >= booking.starts_at:
            steps.update(
                ready_at=booking.starts_at - timedelta(minutes=10),
                procedure_started_at=booking.starts_at,
                status=BookingStatus.IN_PROCEDURE,
            )
        if now >= procedure_end:
            steps.update(
                procedure_ended_at=procedure_end, recovery_started_at=procedure_end, status=BookingStatus.IN_RECOVERY
            )
        if now >= recovered:
            steps.update(ready_for_discharge_at=recovered, status=BookingStatus.READY_FOR_DISCHARGE)
        if now >= recovered + timedelta(minutes=15):
            steps.update(discharged_at=recovered + timedelta(minutes=15), status=BookingStatus.DISCHARGED)
        if not steps:
            continue
        Booking.objects.filter(pk=booking.pk).update(**steps)
        patient = booking.patient
        screen = "negative" if patient.may_be_pregnant(booking.starts_at.astimezone(zone).date()) else "not_applicable"
        CaseChecklist.objects.update_or_create(
            booking=booking,
            defaults={
                "consent_signed_at": min(booking.arrival_at + timedelta(minutes=10), now),
                "escort_confirmed": True,
                "allergies_reviewed": True,
                "last_solids_at": booking.starts_at - timedelta(hours=10),
                "last_clears_at": booking.starts_at - timedelta(hours=3),
                "pregnancy_status": screen,
                **({"escort_present_at": steps["discharged_at"]} if "discharged_at" in steps else {}),
            },
        )
        moved += 1
    return moved


def next_patient(queue: list[Patient], booked: set[int]) -> Patient:
    """The next patient without a case this week, or the least recently used one once all have one."""
    for i, patient in enumerate(queue):
        if patient.pk not in booked:
            queue.append(queue.pop(i))
            return patient
    patient = queue.pop(0)
    queue.append(patient)
    return patient


def place_case(clinic: Clinic, request: CaseWanted, patient: Patient, day: date) -> Booking | None:
    """Book the case where the availability engine finds the first feasible start at or after
    the patient's preferred time that day, else the first one earlier that day. The engine
    picks every resource, exactly as for a scheduler's booking."""
    case = CaseRequest(
        procedure_type=clinic.procedures[request.code],
        levels=request.levels,
        sedation=request.sedation or None,
        patient=patient,
        site_id=clinic.site.pk,
    )
    for earliest, latest in ((request.not_before, None), (OPENS, request.not_before)):
        slots = availability_search(
            SearchQuery(
                request=case,
                date_from=day,
                date_to=day,
                earliest=earliest,
                latest=latest,
                count=1,
                grid_minutes=SLOT_MINUTES,
                allow_past=True,
            )
        )
        if not slots:
            continue
        try:
            return booking_create(actor=None, request=case, starts_at=slots[0].start, allow_past=True)
        except (BookingInvalid, SlotUnavailable):
            # The rulebook has the last word; the search read the same rules, so this is rare.
            continue
    return None


def create_accounts(clinic: Clinic, password: str) -> list[str]:
    """One login per role, linked to a demo staff member where the role is clinical."""
    user_model = get_user_model()
    # Every demo account shares the one printed password, so it is hashed once: each hash
    # costs a deliberate fraction of a second.
    hashed = make_password(password)
    linked = {spec.login: pk for pk, spec in clinic.specs.items() if spec.login}
    members = {m.pk: m for group in clinic.staff.values() for m in group}
    for name in DEMO_ROLES:
        group, _ = Group.objects.get_or_create(name=name)
        user, _ = user_model.objects.get_or_create(username=name)
        user.is_superuser = name == "admin"
        user.is_staff = name in ("admin", "scheduler")
        user.is_active = True
        user.email = f"{name}@{DEMO_EMAIL_DOMAIN}"
        member = members.get(linked.get(name, -1))
        if member is not None:
            user.first_name, user.last_name = member.first_name, member.last_name
        user.password = hashed
        user.save()
        user.groups.set([group])
        if member is not None and not StaffMember.objects.filter(user=user).exclude(pk=member.pk).exists():
            member.user = user
            member.save(update_fields=["user"])
    return list(DEMO_ROLES)
