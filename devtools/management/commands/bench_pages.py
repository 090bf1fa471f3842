"""Server time of the pages people open most: the physician's day, the slot finder and the day
board, on a day of 1 case and of N (default 40), and the board on a full day (default 60
cases), beside a floor measured in the same run (an authenticated request for the home address,
which loads the session and the user and redirects).

Runs in-process through Django's test client against the configured database, on a clinic of
its own that it removes afterwards. Prints, per page: median and 90th percentile in
milliseconds, the ratio to the floor's median, and the statements per request (which must be
the same for 1 and N cases).

    python manage.py bench_pages --cases 40 --board-cases 60 --runs 30
"""

from __future__ import annotations

import statistics
import time as clock
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devtools.management.commands.bench_availability import percentile
from patients.models import Patient
from rooms.models import Capability, Equipment, EquipmentKind, OpeningHours, ProcedureRoom, RecoveryBay, Site
from scheduling.availability.search import SearchQuery, availability_search
from scheduling.catalogue import install_default_catalogue
from scheduling.models import Booking, ProcedureType
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from staff.models import Credential, CredentialKind, Shift, StaffMember, StaffRole

SITE_CODE = "bench-pages"
MRN_PREFIX = "BPG"
USERNAME = "bench-pages"
EMAIL_DOMAIN = "bench-pages.example"
PROCEDURE = "ESI-IL"
LANES = 4


@dataclass
class Bench:
    site: Site
    physician: StaffMember
    day: date
    others: list[StaffMember]


def build(today: date) -> Bench:
    site = Site.objects.create(
        name="Pages Benchmark Center", code=SITE_CODE, timezone="America/Chicago", jurisdiction="TX"
    )
    OpeningHours.objects.bulk_create(
        OpeningHours(site=site, weekday=weekday, opens_at=time(0), closes_at=time(23, 59)) for weekday in range(7)
    )
    rooms = [
        ProcedureRoom.objects.create(site=site, name=f"Fluoro {i + 1}", capabilities=[Capability.FLUOROSCOPY.value])
        for i in range(LANES)
    ]
    for i, room in enumerate(rooms):
        Equipment.objects.create(site=site, kind=EquipmentKind.C_ARM, name=f"C-arm {i + 1}", room=room)
    RecoveryBay.objects.bulk_create(RecoveryBay(site=site, name=f"Bay {i + 1}") for i in range(2 * LANES))
    physician = StaffMember.objects.create(
        first_name="Page", last_name="Bench", role=StaffRole.PHYSICIAN, email=f"physician@{EMAIL_DOMAIN}"
    )
    techs = [
        StaffMember.objects.create(
            first_name=f"Tech{i}", last_name="Bench", role=StaffRole.RAD_TECH, email=f"tech{i}@{EMAIL_DOMAIN}"
        )
        for i in range(LANES)
    ]
    # More physicians fill the board's full day; the physician's day is the first one's.
    others = [
        StaffMember.objects.create(
            first_name=f"Other{i}", last_name="Bench", role=StaffRole.PHYSICIAN, email=f"physician{i}@{EMAIL_DOMAIN}"
        )
        for i in range(LANES - 1)
    ]
    issued = today - timedelta(days=365)
    for member in (physician, *others):
        Credential.objects.create(
            staff=member, kind=CredentialKind.PRIVILEGE, procedure_code=PROCEDURE, valid_from=issued
        )
    for tech in techs:
        Credential.objects.create(staff=tech, kind=CredentialKind.FLUOROSCOPY, jurisdiction="TX", valid_from=issued)
    Shift.objects.bulk_create(
        Shift(staff=member, site=site, weekday=weekday, starts_at=time(0), ends_at=time(23, 59))
        for member in [physician, *others, *techs]
        for weekday in range(7)
    )
    return Bench(site, physician, today + timedelta(days=2), others)


def remove(site: Site) -> None:
    Booking.objects.filter(site=site).delete()
    StaffMember.objects.filter(email__endswith=f"@{EMAIL_DOMAIN}").delete()
    Equipment.objects.filter(site=site).delete()
    RecoveryBay.objects.filter(site=site).delete()
    ProcedureRoom.objects.filter(site=site).delete()
    Patient.objects.filter(mrn__startswith=MRN_PREFIX).delete()
    site.delete()


def book_up_to(bench: Bench, count: int, *, any_physician: bool = False) -> None:
    """Book the day up to ``count`` cases, each at the first start after the last one: with the
    bench's physician, or (``any_physician``) whichever physician is free."""
    procedure = ProcedureType.objects.get(code=PROCEDURE)
    have = Booking.objects.filter(site=bench.site).count()
    moment = datetime.combine(bench.day, time(0, 30), tzinfo=bench.site.zone)
    last = Booking.objects.filter(site=bench.site).order_by("-starts_at").first()
    if last is not None:
        moment = last.starts_at
    for index in range(have, count):
        patient = Patient.objects.create(
            mrn=f"{MRN_PREFIX}{index:05d}",
            first_name=f"Page{index}",
            last_name="Bench",
            date_of_birth=date(1945, 1, 1),
            allergies="Latex" if index % 3 == 0 else "",
        )
        pins = {} if any_physician else {"physician": bench.physician.pk}
        case = CaseRequest(procedure_type=procedure, patient=patient, site_id=bench.site.pk, pins=pins)
        found = availability_search(
            SearchQuery(request=case, date_from=bench.day, date_to=bench.day, count=1, not_before=moment)
        )
        if not found:
            raise CommandError(f"Only {index} cases fit on {bench.day}; ask for fewer.")
        booking_create(actor=None, request=case, starts_at=found[0].start)
        moment = found[0].start


def timed(runs: int, call: Callable[[], Any]) -> tuple[list[float], int]:
    with CaptureQueriesContext(connection) as queries:
        call()
    statements = len(queries)
    times = []
    for _ in range(runs):
        started = clock.perf_counter()
        call()
        times.append((clock.perf_counter() - started) * 1000)
    return times, statements


class Command(BaseCommand):
    help = "Server time of the physician's day and the slot finder, 1 case against N, beside a floor."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cases", type=int, default=40)
        parser.add_argument("--board-cases", dest="board_cases", type=int, default=60)
        parser.add_argument("--runs", type=int, default=30)

    def handle(self, *args: Any, **options: Any) -> None:
        cases, runs, board_cases = options["cases"], options["runs"], options["board_cases"]
        if cases < 1 or runs < 1 or board_cases < cases:
            raise CommandError("--cases and --runs must be at least 1, and --board-cases at least --cases.")
        install_default_catalogue(ProcedureType)
        old = Site.objects.filter(code=SITE_CODE).first()
        if old is not None:
            remove(old)
        bench = build(timezone.now().date())
        try:
            self.run(bench, cases, runs, board_cases)
        finally:
            remove(bench.site)
            get_user_model().objects.filter(username=USERNAME).delete()

    def run(self, bench: Bench, cases: int, runs: int, board_cases: int) -> None:
        user, _ = get_user_model().objects.get_or_create(username=USERNAME)
        user.groups.add(Group.objects.get_or_create(name="scheduler")[0])
        client = Client()
        client.force_login(user)
        day_url = f"/day/?site={bench.site.pk}&physician={bench.physician.pk}&date={bench.day.isoformat()}"
        finder = {
            "patient": Patient.objects.create(
                mrn=f"{MRN_PREFIX}-finder", first_name="Finder", last_name="Bench", date_of_birth=date(1950, 1, 1)
            ).pk,
            "procedure_type": ProcedureType.objects.get(code=PROCEDURE).pk,
            "prior_auth_status": "not_required",
            "site": bench.site.pk,
            "date_from": bench.day.isoformat(),
            "date_to": (bench.day + timedelta(days=20)).isoformat(),
            "physician": bench.physician.pk,
        }

        def day_page() -> None:
            assert client.get(day_url).status_code == 200

        def slot_finder() -> None:
            assert client.post(f"/book/search/?site={bench.site.pk}", finder).status_code == 200

        board_url = f"/board/?site={bench.site.pk}&date={bench.day.isoformat()}"

        def board() -> None:
            assert client.get(board_url).status_code == 200

        def floor() -> None:
            assert client.get("/").status_code == 302

        rows = []
        floor_times, floor_statements = timed(runs, floor)
        rows.append(("floor: authenticated GET / (302)", floor_times, floor_statements))
        for count in (1, cases):
            book_up_to(bench, count)
            rows.append((f"physician's day, {count} case{'s' if count != 1 else ''}", *timed(runs, day_page)))
            rows.append((f"slot finder, 3 weeks, {count} case{'s' if count != 1 else ''}", *timed(runs, slot_finder)))
            rows.append((f"day board, {count} case{'s' if count != 1 else ''}", *timed(runs, board)))
        if board_cases > cases:
            book_up_to(bench, board_cases, any_physician=True)
            rows.append((f"day board, {board_cases} cases", *timed(runs, board)))
        floor_median = statistics.median(floor_times)
        self.stdout.write(f"bench_pages on {connection.vendor}: {runs} runs each, times in ms\n")
        self.stdout.write(f"{'page':<38}{'median':>9}{'p90':>9}{'x floor':>9}{'queries':>9}\n")
        for name, times, statements in rows:
            median = statistics.median(times)
            self.stdout.write(
                f"{name:<38}{median:>9.2f}{percentile(times, 90):>9.2f}{median / floor_median:>9.1f}{statements:>9}\n"
            )
