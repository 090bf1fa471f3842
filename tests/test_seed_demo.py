"""The demo seed builds the clinic it promises, through the booking services, the same way every time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from io import StringIO
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command

from patients.models import Patient
from rooms.models import Equipment, OpeningHours, ProcedureRoom, RecoveryBay, Site
from scheduling.models import ACTIVE_STATUSES, Allocation, Booking, BookingStatus
from staff.models import Credential, StaffMember
from tests.conftest import overlapping_active_legs

WEEK_OF = "2026-12-07"
MONDAY = dt.date(2026, 12, 7)
FRIDAY = dt.date(2026, 12, 11)
ZONE = ZoneInfo("America/Chicago")
ROLES = ("admin", "scheduler", "physician", "nurse", "tech")


def seed(**options: object) -> str:
    out = StringIO()
    call_command("seed_demo", seed=7, week_of=WEEK_OF, stdout=out, **options)
    return out.getvalue()


def start_times() -> list[dt.datetime]:
    return sorted(Booking.objects.values_list("starts_at", flat=True))


def row_counts() -> dict[str, int]:
    models = (Site, ProcedureRoom, Equipment, RecoveryBay, StaffMember, Credential, Patient, Booking, Allocation)
    counts = {model.__name__: model.objects.count() for model in models}
    counts["User"] = get_user_model().objects.count()
    return counts


@pytest.fixture
def seeded(db: None, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[str]:
    settings.DEMO_PASSWORD = "demo-pass-for-tests"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.setenv("PORT", "8123")
    with time_machine.travel(dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC), tick=False):
        yield seed()


def test_seed_builds_the_clinic(seeded: str) -> None:
    site = Site.objects.get()
    assert (site.code, site.timezone, site.jurisdiction) == ("demo-main", "America/Chicago", "TX")
    hours = OpeningHours.objects.filter(site=site)
    assert sorted(h.weekday for h in hours) == [0, 1, 2, 3, 4]
    assert {(h.room_id, h.opens_at, h.closes_at) for h in hours} == {(None, dt.time(7), dt.time(18))}

    rooms = {room.name: room for room in ProcedureRoom.objects.all()}
    assert sorted(rooms) == ["Fluoro 1", "Fluoro 2", "Fluoro 3"]
    assert "anesthesia" in rooms["Fluoro 1"].capabilities
    assert all({"fluoroscopy", "sterile_field"} <= set(room.capabilities) for room in rooms.values())

    c_arms = Equipment.objects.filter(kind="c_arm")
    assert c_arms.count() == 3
    assert c_arms.filter(room__isnull=True).count() == 1
    assert {c.room.name for c in c_arms.filter(room__isnull=False)} == {"Fluoro 1", "Fluoro 2"}
    assert Equipment.objects.filter(kind="rf_generator").count() == 1
    assert sorted(RecoveryBay.objects.values_list("name", flat=True)) == sorted(f"Bay {i}" for i in range(1, 9))


def test_seed_staff_and_credentials(seeded: str) -> None:
    by_role = {role: StaffMember.objects.filter(role=role) for role in ("physician", "rad_tech", "nurse", "anesthesia")}
    assert {role: members.count() for role, members in by_role.items()} == {
        "physician": 4,
        "rad_tech": 4,
        "nurse": 3,
        "anesthesia": 1,
    }
    assert by_role["nurse"].filter(sedation_capable=True).count() == 2
    assert StaffMember.objects.filter(role="device_rep").count() == 1

    privileges = [
        set(Credential.objects.filter(staff=p, kind="privilege").values_list("procedure_code", flat=True))
        for p in by_role["physician"]
    ]
    assert len({frozenset(p) for p in privileges}) == 4
    assert {"VP", "KP", "ESI-IL", "ESI-TF", "MBB", "RFA", "SIJ", "SCS-T"} in privileges

    permits = Credential.objects.filter(staff__role="rad_tech", kind="fluoroscopy", jurisdiction="TX")
    assert sorted(permits.values_list("staff_id", flat=True)) == sorted(m.pk for m in by_role["rad_tech"])
    expiring = [c for c in permits if c.expires_on and c.expires_on <= MONDAY + dt.timedelta(days=30)]
    assert len(expiring) == 1
    assert expiring[0].valid_on(MONDAY)
    assert expiring[0].valid_on(FRIDAY)


def test_seed_books_a_week_without_overlaps(seeded: str) -> None:
    week = Booking.objects.filter(
        starts_at__gte=dt.datetime.combine(MONDAY, dt.time(0), tzinfo=ZONE),
        starts_at__lt=dt.datetime.combine(MONDAY + dt.timedelta(days=5), dt.time(0), tzinfo=ZONE),
    )
    assert week.count() == Booking.objects.count()
    assert week.filter(status__in=ACTIVE_STATUSES).count() >= 25
    assert week.filter(status=BookingStatus.CANCELLED, cancel_reason="patient_request").count() == 2
    assert {b.starts_at.astimezone(ZONE).weekday() for b in week} == {0, 1, 2, 3, 4}
    codes = set(week.values_list("procedure_type__code", flat=True))
    assert {"VP", "KP", "SCS-T"} <= codes
    assert week.filter(procedure_type__code="SCS-T").count() == 1
    assert week.filter(procedure_type__code__in=["VP", "KP"]).count() * 2 >= week.count() - 2
    assert not Allocation.objects.filter(booking__status=BookingStatus.CANCELLED, is_active=True).exists()
    assert overlapping_active_legs() == []


def test_seed_creates_role_accounts(seeded: str) -> None:
    users = {u.username: u for u in get_user_model().objects.filter(username__in=ROLES).prefetch_related("groups")}
    assert sorted(users) == sorted(ROLES)
    for name, user in users.items():
        assert [g.name for g in user.groups.all()] == [name]
        assert user.check_password("demo-pass-for-tests")
    assert users["admin"].is_superuser
    assert users["admin"].is_staff
    assert not any(users[name].is_superuser for name in ROLES if name != "admin")
    assert StaffMember.objects.get(user=users["physician"]).role == "physician"
    assert StaffMember.objects.get(user=users["nurse"]).role == "nurse"
    assert StaffMember.objects.get(user=users["tech"]).role == "rad_tech"


def test_seed_output_shows_login_but_no_patient_names(seeded: str) -> None:
    assert "Sign in at http://127.0.0.1:8123/  (configuration at /admin/)" in seeded
    assert "demo-pass-for-tests" in seeded
    for name in ROLES:
        assert name in seeded
    for patient in Patient.objects.all():
        assert patient.last_name not in seeded
        assert patient.mrn not in seeded


def test_seed_again_without_reset_changes_nothing(seeded: str) -> None:
    before = row_counts()
    times = start_times()

    output = seed()

    assert "already exists" in output
    assert row_counts() == before
    assert start_times() == times


def test_seed_is_deterministic_per_seed(seeded: str) -> None:
    first = start_times()
    mrns = sorted(Patient.objects.values_list("mrn", flat=True))

    seed(reset=True)

    assert start_times() == first
    assert sorted(Patient.objects.values_list("mrn", flat=True)) == mrns
    assert Site.objects.count() == 1
    assert StaffMember.objects.count() == 13
    assert overlapping_active_legs() == []


@pytest.mark.django_db
def test_a_demo_seeded_during_the_day_brings_todays_cases_up_to_the_clock():
    noon = dt.datetime(2026, 12, 9, 12, 0, tzinfo=ZONE)  # the Wednesday of the demo week
    with time_machine.travel(noon, tick=False):
        seed()
    today = [
        b
        for b in Booking.objects.exclude(status=BookingStatus.CANCELLED).select_related("site")
        if b.starts_at.astimezone(ZONE).date() == noon.date()
    ]
    assert today
    for booking in today:
        if booking.ends_at + dt.timedelta(minutes=15) <= noon:
            assert booking.status == BookingStatus.DISCHARGED, booking.pk
            assert booking.discharged_at is not None
        elif booking.starts_at > noon:
            assert booking.status in (BookingStatus.SCHEDULED, BookingStatus.CHECKED_IN), booking.pk
        else:
            assert booking.status in (
                BookingStatus.IN_PROCEDURE,
                BookingStatus.IN_RECOVERY,
                BookingStatus.READY_FOR_DISCHARGE,
            ), booking.pk
    assert {b.status for b in Booking.objects.exclude(pk__in=[b.pk for b in today])} <= {
        BookingStatus.SCHEDULED,
        BookingStatus.CANCELLED,
    }
