"""Holds: a found start kept for ten minutes, then confirmed or given back."""

import datetime as dt

import pytest
import time_machine

from core.errors import InvalidTransition, SlotUnavailable
from core.models import AuditEvent
from outbox.models import Notification
from scheduling.availability.search import SearchQuery, availability_search
from scheduling.models import Allocation, Booking
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_cancel, booking_create, booking_reschedule, hold_confirm
from scheduling.services.holds import holds_release_expired
from scheduling.tasks import release_expired_holds
from tests.api_helpers import client_for, persona_users, post
from tests.conftest import MONDAY, NOW, Clinic, local, overlapping_active_legs

NINE = local(MONDAY, 9)
EXPIRES = NOW + dt.timedelta(minutes=10)
LATER = EXPIRES + dt.timedelta(minutes=1)


def hold(clinic: Clinic, start: dt.datetime = NINE, patient: int = 0) -> Booking:
    return booking_create(
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[patient], pins=clinic.resources()),
        actor=None,
        starts_at=start,
        status="hold",
    )


def book(clinic: Clinic, start: dt.datetime = NINE, patient: int = 1) -> Booking:
    return booking_create(
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[patient], pins=clinic.resources()),
        actor=None,
        starts_at=start,
    )


def starts_offered(clinic: Clinic) -> list[dt.datetime]:
    slots = availability_search(
        SearchQuery(
            request=CaseRequest(
                procedure_type=clinic.vp(), pins={"room": clinic.rooms[0].pk, "physician": clinic.physicians[0].pk}
            ),
            date_from=MONDAY,
            date_to=MONDAY,
            count=200,
        )
    )
    return [slot.start for slot in slots]


def test_a_hold_blocks_its_resources_until_it_expires(clinic):
    held = hold(clinic)

    assert held.status == "hold"
    assert held.hold_expires_at == EXPIRES
    legs = list(held.legs.all())
    assert len(legs) == 7
    assert {leg.expires_at for leg in legs} == {EXPIRES}
    assert NINE not in starts_offered(clinic)
    with pytest.raises(SlotUnavailable):
        book(clinic)
    # A hold is not a case yet: no reminders until it is confirmed.
    assert Notification.objects.count() == 0


def test_confirming_in_time_books_the_case_and_schedules_its_reminders(clinic):
    held = hold(clinic)

    with time_machine.travel(NOW + dt.timedelta(minutes=9), tick=False):
        confirmed = hold_confirm(actor=None, booking=held)

    assert confirmed.status == "scheduled"
    assert confirmed.hold_expires_at is None
    assert set(Allocation.objects.filter(booking=held).values_list("expires_at", flat=True)) == {None}
    reminders = {n.kind: n for n in Notification.objects.all()}
    assert set(reminders) == {"prep_reminder", "day_before_reminder"}
    assert reminders["prep_reminder"].due_at == NINE - dt.timedelta(hours=48)
    assert reminders["day_before_reminder"].due_at == NINE - dt.timedelta(hours=24)
    assert {n.channel for n in reminders.values()} == {"sms"}
    assert AuditEvent.objects.filter(action="booking.confirm", object_id=str(held.pk)).count() == 1
    # Confirmed legs never expire: after the hold's time they still block.
    with time_machine.travel(LATER, tick=False):
        assert NINE not in starts_offered(clinic)
        with pytest.raises(SlotUnavailable):
            book(clinic)


def test_after_expiry_the_slot_is_offered_again_and_a_new_booking_takes_it(clinic):
    held = hold(clinic)

    with time_machine.travel(LATER, tick=False):
        assert NINE in starts_offered(clinic)
        taken = book(clinic)

    held.refresh_from_db()
    assert (held.status, held.cancel_reason) == ("cancelled", "hold_expired")
    assert not Allocation.objects.filter(booking=held, is_active=True).exists()
    assert taken.status == "scheduled"
    assert overlapping_active_legs() == []
    [event] = AuditEvent.objects.filter(action="booking.hold_expire")
    assert (event.actor, event.actor_label, event.object_id) == (None, "system", str(held.pk))


def test_an_expired_hold_cannot_be_confirmed(clinic):
    held = hold(clinic)

    with time_machine.travel(EXPIRES, tick=False), pytest.raises(InvalidTransition) as caught:
        hold_confirm(actor=None, booking=held)

    assert "expired" in caught.value.message
    held.refresh_from_db()
    assert held.status == "hold"
    assert Notification.objects.count() == 0
    assert not AuditEvent.objects.filter(action="booking.confirm").exists()


def test_only_a_hold_can_be_confirmed(clinic):
    booked = book(clinic, patient=0)
    with pytest.raises(InvalidTransition):
        hold_confirm(actor=None, booking=booked)


def test_the_periodic_release_cancels_expired_holds_and_frees_their_legs(clinic):
    expired = hold(clinic)
    with time_machine.travel(NOW + dt.timedelta(minutes=5), tick=False):
        fresh = hold(clinic, start=local(MONDAY, 13), patient=2)

    assert holds_release_expired(now=EXPIRES - dt.timedelta(seconds=1)) == 0
    with time_machine.travel(LATER, tick=False):
        assert release_expired_holds() == 1
        assert release_expired_holds() == 0

    expired.refresh_from_db()
    fresh.refresh_from_db()
    assert (expired.status, expired.cancel_reason) == ("cancelled", "hold_expired")
    assert Allocation.objects.filter(booking=expired, is_active=True).count() == 0
    assert fresh.status == "hold"
    assert Allocation.objects.filter(booking=fresh, is_active=True).count() == 7


def test_rescheduling_a_hold_keeps_its_expiry(clinic):
    held = hold(clinic)
    moved = booking_reschedule(actor=None, booking=held, starts_at=local(MONDAY, 13))

    assert moved.status == "hold"
    assert set(Allocation.objects.filter(booking=held, is_active=True).values_list("expires_at", flat=True)) == {
        EXPIRES
    }
    with time_machine.travel(LATER, tick=False), pytest.raises(InvalidTransition):
        # Its time is up: it is refused as a confirm would be.
        booking_reschedule(actor=None, booking=held, starts_at=local(MONDAY, 14))


def test_a_cancelled_hold_gives_its_resources_back_at_once(clinic):
    held = hold(clinic)
    booking_cancel(actor=None, booking=held, reason="patient_request")
    assert book(clinic).status == "scheduled"


# --- API ------------------------------------------------------------------------------------


@pytest.fixture
def clients(clinic):
    return {name: client_for(user) for name, user in persona_users(clinic).items()}


def body(clinic: Clinic, **extra):
    return {"patient": clinic.patients[0].pk, "procedure_type": "VP", "start": NINE.isoformat(), **extra}


def test_api_hold_then_confirm(clinic, clients):
    created = post(clients["scheduler"], "/api/v1/bookings/", body(clinic, hold=True))
    assert created.status_code == 201, created.json()
    assert created.json()["status"] == "hold"
    booking_id = created.json()["id"]
    assert Notification.objects.count() == 0

    confirmed = post(clients["scheduler"], f"/api/v1/bookings/{booking_id}/confirm/", {})
    assert confirmed.status_code == 200, confirmed.json()
    assert confirmed.json()["status"] == "scheduled"
    assert confirmed.json()["id"] == booking_id
    assert Notification.objects.filter(booking_id=booking_id).count() == 2

    again = post(clients["scheduler"], f"/api/v1/bookings/{booking_id}/confirm/", {})
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"


def test_api_without_hold_books_at_once(clinic, clients):
    created = post(clients["scheduler"], "/api/v1/bookings/", body(clinic))
    assert created.status_code == 201
    assert created.json()["status"] == "scheduled"


def test_api_confirm_of_an_expired_hold_is_409_and_changes_nothing(clinic, clients):
    booking_id = post(clients["scheduler"], "/api/v1/bookings/", body(clinic, hold=True)).json()["id"]

    with time_machine.travel(LATER, tick=False):
        response = post(clients["scheduler"], f"/api/v1/bookings/{booking_id}/confirm/", {})

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert response["Content-Type"] == "application/problem+json"
    assert Booking.objects.get(pk=booking_id).status == "hold"
    assert Notification.objects.count() == 0


@pytest.mark.parametrize(
    ("persona", "expected"),
    # The physician is the case's own: a physician confirms the holds they may make.
    [("admin", 200), ("scheduler", 200), ("physician", 200), ("nurse", 403), ("tech", 403), ("outsider", 403)],
)
def test_who_may_confirm(clinic, clients, persona, expected):
    booking_id = hold(clinic).pk
    response = post(clients[persona], f"/api/v1/bookings/{booking_id}/confirm/", {})
    assert response.status_code == expected
    assert Booking.objects.get(pk=booking_id).status == ("scheduled" if expected == 200 else "hold")


def test_a_physician_cannot_confirm_another_physicians_hold(clinic, clients):
    booking_id = hold(clinic).pk
    # The physician's account now belongs to the other physician: the case is not theirs.
    user = clinic.physicians[0].user
    clinic.physicians[0].user = None
    clinic.physicians[0].save()
    clinic.physicians[1].user = user
    clinic.physicians[1].save()
    response = post(clients["physician"], f"/api/v1/bookings/{booking_id}/confirm/", {})
    assert response.status_code == 404
    assert Booking.objects.get(pk=booking_id).status == "hold"


def test_confirm_of_an_unknown_booking_is_404(clinic, clients):
    assert post(clients["scheduler"], "/api/v1/bookings/999999/confirm/", {}).status_code == 404
