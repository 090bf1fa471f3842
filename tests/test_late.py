"""A case that ends later (or earlier) than planned moves its legs, takes another recovery bay
when its own is taken, and flags a clash it cannot solve; it never double-books."""

import datetime as dt
import threading

import pytest
import time_machine

from core.models import AuditEvent
from outbox.models import Alert, Notification
from procedure_day.services import late
from procedure_day.services.late import EndProcedureResult, booking_end_procedure
from scheduling.models import Allocation, Booking, ProcedureType
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from tests.conftest import MONDAY, local, overlapping_active_legs

pytestmark = pytest.mark.django_db


def at(hour: int, minute: int = 0):
    return time_machine.travel(local(MONDAY, hour, minute), tick=False)


def vp_at_nine(clinic) -> Booking:
    """Vertebroplasty 09:00 in Fluoro 1: room 09:00-10:20, C-arm, tech and nurse 09:00-10:00,
    physician 09:20-10:00, Bay 1 10:00-12:00, patient 08:00-12:00."""
    return booking_create(
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[0], pins=clinic.resources()),
        actor=None,
        starts_at=local(MONDAY, 9),
    )


def esi(clinic, hour: int, minute: int, *, bay: int, patient: int, room: int = 1, c_arm: int = 1) -> Booking:
    """An interlaminar ESI (local, 30 min room + 10 turnover, 30 min recovery) with the second
    physician and tech, so it only competes for the bay (or the room/C-arm named)."""
    return booking_create(
        request=CaseRequest(
            procedure_type=ProcedureType.objects.get(code="ESI-IL"),
            patient=clinic.patients[patient],
            pins=clinic.resources(
                room=clinic.rooms[room],
                c_arm=clinic.c_arms[c_arm],
                physician=clinic.physicians[1],
                rad_tech=clinic.techs[1],
                sedation_staff=None,
                recovery_bay=clinic.bays[bay],
            ),
        ),
        actor=None,
        starts_at=local(MONDAY, hour, minute),
    )


def in_procedure(booking: Booking) -> Booking:
    Booking.objects.filter(pk=booking.pk).update(status="in_procedure", procedure_started_at=local(MONDAY, 9))
    booking.refresh_from_db()
    return booking


def windows(booking: Booking) -> dict[str, tuple]:
    return {
        leg.role: (leg.starts_at, leg.ends_at, str(getattr(leg, leg.resource_column)) if leg.role != "patient" else "")
        for leg in Allocation.objects.filter(booking=booking, is_active=True).select_related(
            "room", "equipment", "staff", "bay"
        )
    }


def span(h1: int, m1: int, h2: int, m2: int) -> tuple:
    return local(MONDAY, h1, m1), local(MONDAY, h2, m2)


def test_a_late_end_moves_the_recovery_leg_and_the_room_phase(clinic):
    booking = in_procedure(vp_at_nine(clinic))
    with at(10, 30):
        result = booking_end_procedure(actor=None, booking=booking)
    legs = Allocation.objects.filter(booking=booking, is_active=True)
    assert {leg.role: (leg.starts_at, leg.ends_at) for leg in legs} == {
        "patient": span(8, 0, 12, 30),
        "room": span(9, 0, 10, 50),
        "c_arm": span(9, 0, 10, 30),
        "physician": span(9, 20, 10, 30),
        "rad_tech": span(9, 0, 10, 30),
        "sedation_nurse": span(9, 0, 10, 30),
        "recovery_bay": span(10, 30, 12, 30),
    }
    assert legs.get(role="recovery_bay").bay == clinic.bays[0]
    assert (result.alerts, result.kept, result.released) == ([], [], [])
    assert {move.role for move in result.moved} == {
        "patient",
        "room",
        "c_arm",
        "physician",
        "rad_tech",
        "sedation_nurse",
        "recovery_bay",
    }
    booking.refresh_from_db()
    assert (booking.status, booking.procedure_ended_at, booking.ends_at) == (
        "in_procedure",
        local(MONDAY, 10, 30),
        local(MONDAY, 12, 30),
    )
    audit = AuditEvent.objects.get(action="booking.end_procedure")
    assert audit.details["minutes_late"] == 30
    assert dt.datetime.fromisoformat(audit.details["ended_at"]) == local(MONDAY, 10, 30)
    recovery = next(m for m in audit.details["moved"] if m["role"] == "recovery_bay")
    assert recovery["to"]["id"] == clinic.bays[0].pk
    assert (dt.datetime.fromisoformat(recovery["to"]["start"]), dt.datetime.fromisoformat(recovery["to"]["end"])) == (
        span(10, 30, 12, 30)
    )
    assert overlapping_active_legs() == []


def test_a_late_end_takes_another_bay_when_its_own_is_taken_next(clinic):
    booking = in_procedure(vp_at_nine(clinic))
    # The next patient recovers in Bay 1 from 12:00.
    nextcase = esi(clinic, 11, 30, bay=0, patient=1)
    with at(10, 30):
        result = booking_end_procedure(actor=None, booking=booking)
    recovery = Allocation.objects.get(booking=booking, role="recovery_bay", is_active=True)
    assert (recovery.bay, recovery.starts_at, recovery.ends_at) == (clinic.bays[1], *span(10, 30, 12, 30))
    assert windows(nextcase)["recovery_bay"] == (*span(12, 0, 12, 30), "Bay 1")
    [move] = [m for m in result.moved if m.role == "recovery_bay"]
    assert (move.from_resource, move.to_resource) == (clinic.bays[0].pk, clinic.bays[1].pk)
    assert result.alerts == []
    assert not Alert.objects.exists()
    assert overlapping_active_legs() == []


def test_when_every_bay_is_taken_the_clash_is_flagged_and_nothing_is_double_booked(clinic):
    booking = in_procedure(vp_at_nine(clinic))
    esi(clinic, 11, 30, bay=0, patient=1)  # Bay 1 12:00-12:30
    esi(clinic, 10, 0, bay=1, patient=2)  # Bay 2 10:30-11:00
    esi(clinic, 10, 40, bay=2, patient=3)  # Bay 3 11:10-11:40
    with at(10, 30):
        result = booking_end_procedure(actor=None, booking=booking)

    assert overlapping_active_legs() == []
    legs = windows(booking)
    assert legs["recovery_bay"] == (*span(10, 0, 12, 0), "Bay 1")
    assert legs["patient"][:2] == span(8, 0, 12, 30)
    assert legs["c_arm"][:2] == span(9, 0, 10, 30)
    [alert] = Alert.objects.all()
    assert result.alerts == [alert]
    blocker = Allocation.objects.get(role="recovery_bay", bay=clinic.bays[0], starts_at=local(MONDAY, 12))
    assert (alert.kind, alert.site, alert.booking, alert.resolved_at) == ("recovery_clash", clinic.site, booking, None)
    assert alert.message == (
        f"Booking {booking.pk} ran 30 min late (procedure ended 10:30). Its recovery needs a bay 10:30–12:30: "
        f"Bay 1 is taken (booking {blocker.booking_id} holds it 12:00–12:30, Dr. Ben Okafor's case at 11:30) "
        "and no other recovery bay is free "
        "then. Recovery stays booked in Bay 1 10:00–12:00; find a bed for the rest."
    )
    patient = clinic.patients[0]
    assert patient.first_name not in alert.message
    assert patient.last_name not in alert.message
    [notification] = Notification.objects.filter(kind="recovery_clash")
    assert (notification.dedupe_key, notification.booking, notification.site, notification.due_at) == (
        f"recovery_clash:booking:{booking.pk}",
        booking,
        clinic.site,
        local(MONDAY, 10, 30),
    )
    recovery_leg = Allocation.objects.get(booking=booking, role="recovery_bay")
    assert result.kept == [recovery_leg.pk]
    assert AuditEvent.objects.get(action="booking.end_procedure").details["alerts"] == [alert.pk]


def test_a_leg_that_cannot_run_over_is_kept_and_flagged(clinic):
    booking = in_procedure(vp_at_nine(clinic))
    # The next case uses Fluoro 1 and its C-arm from 10:40.
    nextcase = esi(clinic, 10, 40, bay=1, patient=1, room=0, c_arm=0)
    with at(10, 30):
        result = booking_end_procedure(actor=None, booking=booking)
    legs = windows(booking)
    assert legs["room"] == (*span(9, 0, 10, 20), "Fluoro 1")
    assert legs["c_arm"] == (*span(9, 0, 10, 30), "C-arm 1")
    assert legs["recovery_bay"] == (*span(10, 30, 12, 30), "Bay 1")
    [alert] = result.alerts
    assert alert.kind == "leg_clash"
    assert alert.message == (
        f"Booking {booking.pk} ran 30 min late (procedure ended 10:30). Fluoro 1 is needed as procedure room "
        f"until 10:50, but booking {nextcase.pk} holds it 10:40–11:20, Dr. Ben Okafor's case at 10:40. "
        "It stays booked until 10:20; the next case "
        "there may start late."
    )
    assert not Notification.objects.filter(kind="recovery_clash").exists()
    assert overlapping_active_legs() == []


def test_an_early_end_shortens_the_room_phase_and_moves_recovery_earlier(clinic):
    booking = in_procedure(vp_at_nine(clinic))
    with at(9, 45):
        result = booking_end_procedure(actor=None, booking=booking)
    legs = windows(booking)
    assert legs["room"][:2] == span(9, 0, 10, 5)
    assert legs["c_arm"][:2] == span(9, 0, 9, 45)
    assert legs["physician"][:2] == span(9, 20, 9, 45)
    assert legs["recovery_bay"] == (*span(9, 45, 11, 45), "Bay 1")
    assert legs["patient"][:2] == span(8, 0, 11, 45)
    assert result.alerts == []
    booking.refresh_from_db()
    assert booking.ends_at == local(MONDAY, 11, 45)
    assert AuditEvent.objects.get(action="booking.end_procedure").details["minutes_late"] == -15


def test_an_early_end_waits_for_a_bay_rather_than_double_booking(clinic):
    booking = in_procedure(vp_at_nine(clinic))
    esi(clinic, 9, 0, bay=0, patient=1)  # Bay 1 09:30-10:00
    esi(clinic, 9, 40, bay=1, patient=2)  # Bay 2 10:10-10:40
    esi(clinic, 10, 20, bay=2, patient=3)  # Bay 3 10:50-11:20
    with at(9, 45):
        result = booking_end_procedure(actor=None, booking=booking)
    # No bay is free from 09:45, and the planned one still covers a full recovery from 10:00.
    legs = windows(booking)
    assert legs["recovery_bay"] == (*span(10, 0, 12, 0), "Bay 1")
    assert legs["patient"][:2] == span(8, 0, 12, 0)
    assert legs["c_arm"][:2] == span(9, 0, 9, 45)
    assert (result.alerts, result.kept) == ([], [Allocation.objects.get(booking=booking, role="recovery_bay").pk])
    assert not Notification.objects.filter(kind="recovery_clash").exists()
    assert overlapping_active_legs() == []


def test_an_end_before_the_physician_joined_releases_that_leg(clinic):
    booking = in_procedure(vp_at_nine(clinic))
    with at(9, 10):
        result = booking_end_procedure(actor=None, booking=booking)
    physician_leg = Allocation.objects.get(booking=booking, role="physician")
    assert physician_leg.is_active is False
    assert result.released == [physician_leg.pk]
    assert windows(booking)["c_arm"][:2] == span(9, 0, 9, 10)


def test_the_database_refusal_is_handled_when_the_check_misses_a_clash(clinic, monkeypatch):
    booking = in_procedure(vp_at_nine(clinic))
    esi(clinic, 11, 30, bay=0, patient=1)  # Bay 1 12:00-12:30
    esi(clinic, 10, 0, bay=1, patient=2)  # Bay 2 10:30-11:00
    esi(clinic, 10, 40, bay=2, patient=3)  # Bay 3 11:10-11:40
    # A writer that skipped the locks: the clash is only found by the database.
    monkeypatch.setattr(late, "_first_clash", lambda *args: None)
    with at(10, 30):
        result = booking_end_procedure(actor=None, booking=booking)
    assert windows(booking)["recovery_bay"] == (*span(10, 0, 12, 0), "Bay 1")
    [alert] = result.alerts
    assert "Bay 1 is taken (another booking holds it)" in alert.message
    assert overlapping_active_legs() == []


@pytest.mark.django_db(transaction=True)
def test_a_late_end_raced_by_a_booking_for_its_bay_never_double_books(frozen_now):
    from django.db import connection

    from core.errors import SlotUnavailable
    from tests.conftest import build_clinic

    clinic = build_clinic()
    booking = in_procedure(vp_at_nine(clinic))
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def end_late():
        try:
            barrier.wait(timeout=30)
            outcomes["end"] = booking_end_procedure(actor=None, booking=booking)
        except BaseException as exc:
            outcomes["end"] = exc
        finally:
            connection.close()

    def book_bay_one():
        try:
            barrier.wait(timeout=30)
            outcomes["book"] = esi(clinic, 11, 30, bay=0, patient=1)
        except BaseException as exc:
            outcomes["book"] = exc
        finally:
            connection.close()

    with at(10, 30):
        threads = [threading.Thread(target=end_late), threading.Thread(target=book_bay_one)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert isinstance(outcomes["end"], EndProcedureResult), outcomes["end"]
    recovery = windows(booking)["recovery_bay"]
    if isinstance(outcomes["book"], SlotUnavailable):
        assert recovery == (*span(10, 30, 12, 30), "Bay 1")
    else:
        assert isinstance(outcomes["book"], Booking), outcomes["book"]
        assert recovery == (*span(10, 30, 12, 30), "Bay 2")
    assert overlapping_active_legs() == []
