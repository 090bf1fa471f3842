"""Anticoagulant and antiplatelet holds as data: the drug list's days per bleeding risk, a
patient's holds named from it, and the override a physician or an administrator gives to book
inside one (audited, shown on the case, the daily list and the checklist)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from core.models import AuditEvent
from outbox.models import Notification
from outbox.registry import build_message
from patients.models import Drug, MedicationHold
from scheduling.models import Booking
from tests import factories as f
from tests.api_helpers import client_for, persona_users, post
from tests.conftest import MONDAY, NOW, local
from tests.factories import drug

NINE = local(MONDAY, 9)


@pytest.fixture
def users(clinic):
    return persona_users(clinic)


@pytest.fixture
def clients(users):
    return {name: client_for(user) for name, user in users.items()}


@pytest.fixture
def on_warfarin(clinic):
    """Warfarin until Saturday the 9th: a VP may take place from the 15th."""
    patient = clinic.patients[0]
    MedicationHold.objects.create(patient=patient, drug=drug("warfarin"), last_dose_on=dt.date(2027, 1, 9))
    return patient


def body(patient, start=NINE, **extra):
    return {"patient": patient.pk, "procedure_type": "VP", "start": start.isoformat(), **extra}


REASON = "INR 1.1 this morning; cardiology agrees to proceed."


def test_a_scheduler_may_not_override_a_hold(clients, on_warfarin):
    refused = post(clients["scheduler"], "/api/v1/bookings/", body(on_warfarin, anticoagulant_override_reason=REASON))
    assert refused.status_code == 403, refused.json()
    assert refused.json()["code"] == "override_not_permitted"
    assert not Booking.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="booking.").exists()


def test_without_a_reason_the_hold_refuses_the_booking_for_everyone(clients, on_warfarin):
    for persona in ("admin", "physician"):
        refused = post(clients[persona], "/api/v1/bookings/", body(on_warfarin))
        assert refused.status_code == 422, refused.json()
        assert [e["code"] for e in refused.json()["errors"]] == ["anticoagulant_hold"]
    assert not Booking.objects.exists()


def test_a_physician_override_is_kept_audited_and_shown_on_the_case_the_list_and_the_gate(
    clinic, clients, users, on_warfarin
):
    booked = post(clients["physician"], "/api/v1/bookings/", body(on_warfarin, anticoagulant_override_reason=REASON))

    assert booked.status_code == 201, booked.json()
    override = booked.json()["anticoagulant_override"]
    assert override == {"reason": REASON, "by": "physician-user", "at": "2027-01-04T06:00:00-06:00"}
    booking = Booking.objects.get()
    assert (booking.anticoagulant_override_by, booking.anticoagulant_override_at) == (users["physician"], NOW)
    audit = AuditEvent.objects.get(action="booking.anticoagulant_override")
    assert audit.actor == users["physician"]
    assert audit.details == {
        "hold": MedicationHold.objects.get().pk,
        "drug": "warfarin",
        "earliest_date": "2027-01-15",
    }
    assert clients["scheduler"].get(f"/api/v1/bookings/{booking.pk}/").json()["anticoagulant_override"] == override
    daily = clients["nurse"].get(
        "/api/v1/daily-list/", {"physician": clinic.physicians[0].pk, "date": MONDAY.isoformat()}
    )
    assert daily.json()["cases"][0]["anticoagulant_override"] == override

    with time_machine.travel(local(MONDAY, 7), tick=False):
        nurse = client_for(f.UserFactory(username="day-nurse", groups=["nurse"]))
        checklist = nurse.get(f"/api/v1/bookings/{booking.pk}/checklist/").json()
    holds = next(item for item in checklist["items"] if item["code"] == "holds")
    assert holds["status"] == "overridden"
    assert holds["detail"] == f"Booked inside the hold by physician-user: {REASON}"


def test_an_override_reason_where_no_hold_is_in_the_way_is_not_stored(clients, on_warfarin):
    later = local(MONDAY + dt.timedelta(days=4), 9)  # Friday the 15th: the hold is done
    booked = post(clients["admin"], "/api/v1/bookings/", body(on_warfarin, later, anticoagulant_override_reason=REASON))
    assert booked.status_code == 201, booked.json()
    assert booked.json()["anticoagulant_override"] is None
    assert not AuditEvent.objects.filter(action="booking.anticoagulant_override").exists()


def test_moving_an_overridden_case_later_keeps_the_override_and_earlier_needs_a_new_one(clients, on_warfarin):
    tuesday = local(MONDAY + dt.timedelta(days=1), 9)
    booked = post(
        clients["admin"], "/api/v1/bookings/", body(on_warfarin, tuesday, anticoagulant_override_reason=REASON)
    )
    assert booked.status_code == 201, booked.json()
    url = f"/api/v1/bookings/{booked.json()['id']}/reschedule/"

    later = post(clients["scheduler"], url, {"start": local(MONDAY + dt.timedelta(days=2), 9).isoformat()})
    assert later.status_code == 200, later.json()
    assert later.json()["anticoagulant_override"]["reason"] == REASON

    earlier = post(clients["scheduler"], url, {"start": NINE.isoformat()})
    assert earlier.status_code == 422, earlier.json()
    assert [e["code"] for e in earlier.json()["errors"]] == ["anticoagulant_hold"]

    out_of_the_hold = post(clients["scheduler"], url, {"start": local(MONDAY + dt.timedelta(days=4), 9).isoformat()})
    assert out_of_the_hold.status_code == 200, out_of_the_hold.json()
    assert out_of_the_hold.json()["anticoagulant_override"] is None


# --- the drug list ---------------------------------------------------------------------------


def test_the_drug_list_is_seeded_and_read_by_every_role(clients):
    listed = clients["tech"].get("/api/v1/drugs/", {"page_size": 100})
    assert listed.status_code == 200
    by_code = {row["code"]: row for row in listed.json()["results"]}
    assert (by_code["warfarin"]["hold_days_high"], by_code["warfarin"]["hold_days_intermediate"]) == (5, 5)
    assert by_code["clopidogrel"]["hold_days_low"] == 0
    assert by_code["aspirin-primary"]["hold_days_high"] == 6
    refused = clients["scheduler"].patch(
        f"/api/v1/drugs/{by_code['warfarin']['id']}/", {"hold_days_high": 7}, format="json"
    )
    assert refused.status_code == 403


def test_a_clinic_edit_of_the_drug_list_changes_what_may_be_booked(clinic, clients, on_warfarin):
    assert post(clients["scheduler"], "/api/v1/bookings/", body(on_warfarin)).status_code == 422
    warfarin = Drug.objects.get(code="warfarin")
    edited = clients["admin"].patch(f"/api/v1/drugs/{warfarin.pk}/", {"hold_days_high": 0}, format="json")
    assert edited.status_code == 200, edited.json()
    assert post(clients["scheduler"], "/api/v1/bookings/", body(on_warfarin)).status_code == 201


def test_a_hold_names_a_drug_from_the_list_and_may_carry_the_patient_s_own_days(clinic, clients):
    patient = clinic.patients[1]
    unknown = post(clients["scheduler"], "/api/v1/medication-holds/", {"patient": patient.pk, "drug": "heparin-x"})
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "unknown_reference"
    own = post(
        clients["scheduler"],
        "/api/v1/medication-holds/",
        {"patient": patient.pk, "drug": "dabigatran", "hold_days": 6, "last_dose_on": "2027-01-03"},
    )
    assert own.status_code == 201, own.json()
    assert own.json()["medication"] == "Dabigatran"
    # Six days where the list holds it; still none where the list asks for none.
    assert own.json()["days"] == {"low": 0, "intermediate": 6, "high": 6}
    twice = post(clients["scheduler"], "/api/v1/medication-holds/", {"patient": patient.pk, "drug": "dabigatran"})
    assert twice.status_code == 409
    assert twice.json()["code"] == "not_unique"
    audit = AuditEvent.objects.get(action="medication_hold.create")
    assert audit.details == {"patient": patient.pk, "drug": "dabigatran"}


def test_the_prep_reminder_names_the_last_day_to_take_the_drug(clinic, clients):
    patient = clinic.patients[0]
    MedicationHold.objects.create(patient=patient, drug=drug("warfarin"))
    booked = post(clients["scheduler"], "/api/v1/bookings/", body(patient, local(MONDAY + dt.timedelta(days=7), 9)))
    assert booked.status_code == 201, booked.json()
    row = Notification.objects.get(booking_id=booked.json()["id"], kind="prep_reminder")
    message = build_message(row, now=row.due_at)
    assert (
        "Take your last dose of Warfarin on Tuesday 12 January at the latest; check with the doctor who "
        "prescribes it before you stop." in message.body
    )
