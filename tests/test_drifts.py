"""Regression tests, through the API, for the cases the product used to book although its own
search, reasons or readiness gate said they must not happen. Each asks the three questions
(search, reasons, booking) and checks they agree."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from outbox.models import Notification
from patients.models import MedicationHold
from scheduling.models import Allocation, Booking
from tests import factories as f
from tests.api_helpers import client_for, post
from tests.conftest import MONDAY, local
from tests.factories import drug

FRIDAY = MONDAY + dt.timedelta(days=4)


@pytest.fixture
def scheduler(clinic):
    return client_for(f.UserFactory(username="sched", groups=["scheduler"]))


@pytest.fixture
def nurse(clinic):
    return client_for(f.UserFactory(username="nurse", groups=["nurse"]))


def first_start(client, **query) -> str:
    response = client.get("/api/v1/availability/", {"limit": 1, **query})
    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    assert results, query
    return results[0]["start"]


def reasons(client, **query) -> list[str]:
    response = client.get("/api/v1/availability/reasons/", query)
    assert response.status_code == 200, response.json()
    return [reason["code"] for reason in response.json()["reasons"]]


def checklist_item(client, booking_id: int, code: str) -> dict:
    response = client.get(f"/api/v1/bookings/{booking_id}/checklist/")
    assert response.status_code == 200, response.json()
    return next(item for item in response.json()["items"] if item["code"] == code)


# --- a warfarin patient booked at a start searched without them ----------------------------------


def test_a_start_searched_without_the_patient_is_refused_inside_their_warfarin_hold(clinic, scheduler):
    patient = clinic.patients[0]
    # Warfarin until Saturday the 9th: five whole days without it make the 15th the first day.
    MedicationHold.objects.create(patient=patient, drug=drug("warfarin"), last_dose_on=dt.date(2027, 1, 9))
    week = {"procedure_type": "VP", "levels": 2, "from": MONDAY.isoformat(), "to": FRIDAY.isoformat()}
    start = first_start(scheduler, **week)
    assert start.startswith("2027-01-11")

    refused = post(
        scheduler, "/api/v1/bookings/", {"patient": patient.pk, "procedure_type": "VP", "levels": 2, "start": start}
    )

    assert refused.status_code == 422, refused.json()
    assert [e["code"] for e in refused.json()["errors"]] == ["anticoagulant_hold"]
    assert refused.json()["errors"][0]["extra"]["earliest_date"] == "2027-01-15"
    assert not Booking.objects.exists()
    assert reasons(scheduler, procedure_type="VP", levels=2, start=start, patient=patient.pk) == ["anticoagulant_hold"]
    # With the patient, the search offers nothing before the hold ends.
    assert first_start(scheduler, **week, patient=patient.pk).startswith("2027-01-15")


# --- holds count at every bleeding risk the drug list names -------------------------------------


def test_an_epidural_is_not_offered_inside_a_clopidogrel_hold_and_the_gate_agrees(clinic, scheduler):
    patient = clinic.patients[0]
    f.CredentialFactory(staff=clinic.physicians[0], procedure_code="ESI-IL")
    # Clopidogrel until Friday the 8th: seven whole days make the 16th (a Saturday) the first
    # day, so the first weekday is Monday the 18th.
    hold = MedicationHold.objects.create(patient=patient, drug=drug("clopidogrel"), last_dose_on=dt.date(2027, 1, 8))
    query = {"procedure_type": "ESI-IL", "from": MONDAY.isoformat(), "to": (MONDAY + dt.timedelta(days=7)).isoformat()}
    inside = first_start(scheduler, **query)
    offered = first_start(scheduler, **query, patient=patient.pk)
    assert inside.startswith("2027-01-11")
    assert offered.startswith("2027-01-18")

    refused = post(scheduler, "/api/v1/bookings/", {"patient": patient.pk, "procedure_type": "ESI-IL", "start": inside})
    assert refused.status_code == 422, refused.json()
    assert [e["code"] for e in refused.json()["errors"]] == ["anticoagulant_hold"]
    assert reasons(scheduler, procedure_type="ESI-IL", start=inside, patient=patient.pk) == ["anticoagulant_hold"]

    booked = post(scheduler, "/api/v1/bookings/", {"patient": patient.pk, "procedure_type": "ESI-IL", "start": offered})
    assert booked.status_code == 201, booked.json()
    case_day = dt.datetime.fromisoformat(offered)
    with time_machine.travel(case_day - dt.timedelta(hours=2), tick=False):
        # Tokens from two weeks ago have expired: sign in again on the day.
        nurse = client_for(f.UserFactory(username="day-nurse", groups=["nurse"]))
        scheduler = client_for(f.UserFactory(username="day-sched", groups=["scheduler"]))
        assert checklist_item(nurse, booked.json()["id"], "holds")["status"] == "ok"
        # The patient took one more dose: on the day the gate refuses what booking would.
        hold.last_dose_on = dt.date(2027, 1, 12)
        hold.save()
        assert checklist_item(nurse, booked.json()["id"], "holds")["status"] == "failed"
        # Booking it again now would be refused for the hold (and for the case it already has).
        again = reasons(scheduler, procedure_type="ESI-IL", start=offered, patient=patient.pk)
        assert sorted(again) == ["anticoagulant_hold", "patient_busy"]


def test_a_low_risk_block_is_not_held_for_clopidogrel(clinic, scheduler):
    patient = clinic.patients[0]
    f.CredentialFactory(staff=clinic.physicians[0], procedure_code="MBB")
    MedicationHold.objects.create(patient=patient, drug=drug("clopidogrel"), last_dose_on=None)
    start = first_start(scheduler, procedure_type="MBB", **{"from": MONDAY.isoformat(), "to": MONDAY.isoformat()})
    booked = post(scheduler, "/api/v1/bookings/", {"patient": patient.pk, "procedure_type": "MBB", "start": start})
    assert booked.status_code == 201, booked.json()


# --- general anaesthesia needs an anaesthesia-capable room ----------------------------------------


def test_a_kyphoplasty_under_general_anaesthesia_is_refused_in_a_room_without_anaesthesia(clinic, scheduler):
    f.CredentialFactory(staff=clinic.physicians[0], procedure_code="KP")
    body = {
        "patient": clinic.patients[0].pk,
        "procedure_type": "KP",
        "sedation": "general",
        "start": local(MONDAY, 9).isoformat(),
        "room": clinic.rooms[1].pk,  # fluoroscopy and a sterile field, but no anaesthesia
        "c_arm": clinic.c_arms[1].pk,
    }
    refused = post(scheduler, "/api/v1/bookings/", body)

    assert refused.status_code == 422, refused.json()
    assert [e["code"] for e in refused.json()["errors"]] == ["room_lacks_capability"]
    assert "anesthesia" in refused.json()["errors"][0]["message"]
    query = {k: v for k, v in body.items() if k not in ("patient",)}
    assert reasons(scheduler, **query) == ["room_lacks_capability"]
    # Left to the engine, it goes to the room that can take it.
    unpinned = {k: v for k, v in body.items() if k not in ("room", "c_arm")}
    booked = post(scheduler, "/api/v1/bookings/", unpinned)
    assert booked.status_code == 201, booked.json()
    rooms = [leg["resource"]["name"] for leg in booked.json()["legs"] if leg["role"] == "room"]
    assert rooms == ["Fluoro 1"]


# --- a hold's confirmation asks the rules again ---------------------------------------------------


def test_confirming_a_hold_is_refused_when_downtime_was_recorded_meanwhile(clinic, scheduler):
    held = post(
        scheduler,
        "/api/v1/bookings/",
        {"patient": clinic.patients[0].pk, "procedure_type": "VP", "start": local(MONDAY, 9).isoformat(), "hold": True},
    )
    assert held.status_code == 201, held.json()
    room = next(leg["resource"]["id"] for leg in held.json()["legs"] if leg["role"] == "room")
    downtime = post(
        scheduler,
        "/api/v1/downtime/",
        {
            "room": room,
            "starts_at": local(MONDAY, 8).isoformat(),
            "ends_at": local(MONDAY, 12).isoformat(),
            "reason": "repair",
        },
    )
    assert downtime.status_code == 201, downtime.json()

    refused = post(scheduler, f"/api/v1/bookings/{held.json()['id']}/confirm/", {})

    assert refused.status_code == 422, refused.json()
    assert [e["code"] for e in refused.json()["errors"]] == ["resource_downtime"]
    assert Booking.objects.get().status == "hold"


# --- the preparation reminder comes before the patient must stop the drug ------------------------


def prep_due(booking_id: int) -> dt.datetime:
    return Notification.objects.get(booking_id=booking_id, kind="prep_reminder").due_at


def test_the_prep_reminder_is_due_before_the_patient_must_stop_warfarin(clinic, scheduler):
    patient = clinic.patients[0]
    MedicationHold.objects.create(patient=patient, drug=drug("warfarin"))
    case_day = MONDAY + dt.timedelta(days=7)  # the 18th: last dose on the 12th at the latest
    booked = post(
        scheduler,
        "/api/v1/bookings/",
        {"patient": patient.pk, "procedure_type": "VP", "start": local(case_day, 9).isoformat()},
    )
    assert booked.status_code == 201, booked.json()

    # The day before the last dose, at 10:00 site time: not 48 h before the case (the 16th).
    assert prep_due(booked.json()["id"]) == local(dt.date(2027, 1, 11), 10)
    day_before = Notification.objects.get(booking_id=booked.json()["id"], kind="day_before_reminder")
    assert day_before.due_at == local(dt.date(2027, 1, 17), 9)


def test_the_prep_reminder_is_due_at_once_when_the_last_dose_day_has_passed(clinic):
    patient = clinic.patients[0]
    MedicationHold.objects.create(patient=patient, drug=drug("warfarin"))
    # A case on Friday the 8th needs the last dose on the 2nd, which is past on the 4th: only an
    # override books it, and the reminder goes at once.
    body = {
        "patient": patient.pk,
        "procedure_type": "VP",
        "start": local(dt.date(2027, 1, 8), 9).isoformat(),
        "anticoagulant_override_reason": "INR 1.1 this morning; cardiology agrees.",
    }
    admin = client_for(f.UserFactory(username="boss", groups=["admin"]))
    booked = post(admin, "/api/v1/bookings/", body)
    assert booked.status_code == 201, booked.json()
    assert prep_due(booked.json()["id"]) == dt.datetime(2027, 1, 4, 12, tzinfo=dt.UTC)


def test_recording_a_hold_after_booking_moves_the_prep_reminder_earlier(clinic, scheduler):
    patient = clinic.patients[0]
    case_day = MONDAY + dt.timedelta(days=7)
    booked = post(
        scheduler,
        "/api/v1/bookings/",
        {"patient": patient.pk, "procedure_type": "VP", "start": local(case_day, 9).isoformat()},
    )
    assert booked.status_code == 201, booked.json()
    assert prep_due(booked.json()["id"]) == local(dt.date(2027, 1, 16), 9)

    added = post(scheduler, "/api/v1/medication-holds/", {"patient": patient.pk, "drug": "clopidogrel"})

    assert added.status_code == 201, added.json()
    # Clopidogrel for a case on the 18th: last dose on the 10th, so the reminder goes on the 9th.
    assert prep_due(booked.json()["id"]) == local(dt.date(2027, 1, 9), 10)
    assert Allocation.objects.filter(booking_id=booked.json()["id"], is_active=True).count() == 7
