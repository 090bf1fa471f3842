"""FHIR R4: every answer validates as R4 (models and invariants), reads and searches follow
the policy, errors are OperationOutcomes, and the IHE operations book through the same
services as the REST API."""

from __future__ import annotations

import threading

import pytest
import time_machine
from django.db import connection
from rest_framework.test import APIClient

from core.models import AuditEvent
from interop.fhir import r4
from rooms.models import Downtime
from scheduling.models import Allocation, Booking
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from tests.api_helpers import client_for, persona_users, post
from tests.conftest import MONDAY, build_clinic, local
from tests.fhir_helpers import fhir_json, parameters, resources

pytestmark = pytest.mark.django_db
FHIR = "/fhir/r4"


def book(clinic, hour=9, patient=0, **pins):
    return booking_create(
        actor=None,
        request=CaseRequest(
            procedure_type=clinic.vp(), patient=clinic.patients[patient], pins=clinic.resources(**pins)
        ),
        starts_at=local(MONDAY, hour),
    )


def fhir_post(client: APIClient, url: str, body: object, content_type: str = "application/fhir+json"):
    import json

    return client.generic("POST", url, json.dumps(body), content_type=content_type)


def leg_set(booking_id: int) -> set[tuple[str, int, str, str]]:
    return {
        (leg.role, leg.resource_id, leg.starts_at.isoformat(), leg.ends_at.isoformat())
        for leg in Allocation.objects.filter(booking_id=booking_id)
    }


def active_legs() -> int:
    return Allocation.objects.filter(is_active=True).count()


# --- validation --------------------------------------------------------------------------


def test_every_resource_type_reads_and_searches_as_valid_r4(clinic):
    users = persona_users(clinic)
    case = book(clinic)
    client = client_for(users["scheduler"])
    meta = fhir_json(client.get(f"{FHIR}/metadata"))
    assert meta["fhirVersion"] == "4.0.1"
    kinds = [entry["type"] for entry in meta["rest"][0]["resource"]]
    assert set(kinds) == {
        "Appointment",
        "ServiceRequest",
        "Patient",
        "Practitioner",
        "Location",
        "Device",
        "Schedule",
        "Slot",
    }
    for kind in kinds:
        query = (
            f"?schedule=Schedule/room-{clinic.rooms[0].pk}&start=ge{MONDAY}&start=lt2027-01-12"
            if kind == "Slot"
            else ""
        )
        bundle = fhir_json(client.get(f"{FHIR}/{kind}{query}"))
        assert bundle["type"] == "searchset"
        found = resources(bundle)
        assert found, kind
        first = found[0]
        assert first["resourceType"] == kind
        assert fhir_json(client.get(f"{FHIR}/{kind}/{first['id']}"))["id"] == first["id"]
    appointment = fhir_json(client.get(f"{FHIR}/Appointment/{case.pk}"))
    assert appointment["status"] == "booked"
    assert appointment["basedOn"] == [{"reference": f"ServiceRequest/{case.pk}"}]


def test_an_appointment_carries_a_participant_per_leg_with_its_own_window(clinic):
    users = persona_users(clinic)
    case = book(clinic)
    body = fhir_json(client_for(users["scheduler"]).get(f"{FHIR}/Appointment/{case.pk}"))
    periods = {p["actor"]["reference"]: p["period"] for p in body["participant"]}
    legs = {leg.role: leg for leg in Allocation.objects.filter(booking=case)}
    bay, room = legs["recovery_bay"], legs["room"]
    assert periods[f"Location/bay-{clinic.bays[0].pk}"] == {
        "start": bay.starts_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": bay.ends_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert periods[f"Location/room-{clinic.rooms[0].pk}"]["start"] == room.starts_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"Device/{clinic.c_arms[0].pk}" in periods
    assert f"Practitioner/{clinic.physicians[0].pk}" in periods
    assert f"Patient/{clinic.patients[0].pk}" in periods
    performer = next(
        p
        for p in body["participant"]
        if p["actor"]["reference"].startswith("Practitioner/") and p["type"][0]["coding"][0]["code"] == "PPRF"
    )
    assert performer["actor"]["reference"] == f"Practitioner/{clinic.physicians[0].pk}"
    assert len(body["participant"]) == len(legs)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"participant": [{"status": "accepted"}]}, "app-1"),
        ({"end": None}, "app-2"),
        ({"start": None, "end": None}, "app-3"),
        ({"cancelationReason": {"text": "x"}}, "app-4"),
        ({"status": "confirmed"}, "status"),
        ({"participant": [{"actor": {"reference": "Organization/1"}, "status": "accepted"}]}, "Organization"),
        ({"participant": [{"actor": {"reference": "Patient/1"}, "status": "maybe"}]}, "participant.status"),
    ],
)
def test_the_r4_invariants_the_models_leave_out_are_checked(change, rule):
    base = {
        "resourceType": "Appointment",
        "status": "booked",
        "start": "2027-01-11T15:00:00Z",
        "end": "2027-01-11T16:00:00Z",
        "participant": [{"actor": {"reference": "Patient/1"}, "status": "accepted"}],
    }
    assert r4.validated(dict(base)) == base
    broken = {**base, **change}
    broken = {k: v for k, v in broken.items() if v is not None}
    with pytest.raises(r4.InvalidResource, match=rule):
        r4.validated(broken)
    cancelled = {**base, "status": "cancelled", "cancelationReason": {"text": "patient"}}
    assert r4.validated(cancelled)["status"] == "cancelled"
    proposed = {k: v for k, v in base.items() if k not in ("start", "end")} | {"status": "proposed"}
    assert r4.validated(proposed)["status"] == "proposed"


def test_a_slot_with_an_r4_status_outside_the_binding_is_refused():
    slot = {
        "resourceType": "Slot",
        "schedule": {"reference": "Schedule/room-1"},
        "status": "tentative",
        "start": "2027-01-11T15:00:00Z",
        "end": "2027-01-11T16:00:00Z",
    }
    with pytest.raises(r4.InvalidResource):
        r4.validated(slot)
    assert r4.validated({**slot, "status": "busy-tentative"})["status"] == "busy-tentative"


# --- slots --------------------------------------------------------------------------------


def test_slots_show_free_busy_held_and_unavailable_time(clinic):
    users = persona_users(clinic)
    book(clinic, hour=9)
    booking_create(
        actor=None,
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[1], pins=clinic.resources()),
        starts_at=local(MONDAY, 13),
        status="hold",
    )
    Downtime.objects.create(
        room=clinic.rooms[0], starts_at=local(MONDAY, 16), ends_at=local(MONDAY, 17), reason="repair"
    )
    query = f"schedule=Schedule/room-{clinic.rooms[0].pk}&start=ge{MONDAY}&start=lt2027-01-12"
    slots = resources(fhir_json(client_for(users["scheduler"]).get(f"{FHIR}/Slot?{query}")))
    spans = [(s["status"], s["start"], s["end"]) for s in slots]
    assert spans == [
        ("free", "2027-01-11T13:00:00Z", "2027-01-11T15:00:00Z"),
        ("busy", "2027-01-11T15:00:00Z", "2027-01-11T16:20:00Z"),
        ("free", "2027-01-11T16:20:00Z", "2027-01-11T19:00:00Z"),
        ("busy-tentative", "2027-01-11T19:00:00Z", "2027-01-11T20:20:00Z"),
        ("free", "2027-01-11T20:20:00Z", "2027-01-11T22:00:00Z"),
        ("busy-unavailable", "2027-01-11T22:00:00Z", "2027-01-11T23:00:00Z"),
        ("free", "2027-01-11T23:00:00Z", "2027-01-12T00:00:00Z"),
    ]
    free = client_for(users["scheduler"]).get(f"{FHIR}/Slot?{query}&status=free")
    assert {s["status"] for s in resources(fhir_json(free))} == {"free"}


def test_a_slot_search_without_a_schedule_or_with_a_huge_window_is_an_outcome(clinic):
    users = persona_users(clinic)
    client = client_for(users["scheduler"])
    missing = fhir_json(client.get(f"{FHIR}/Slot"), 400)
    assert missing["resourceType"] == "OperationOutcome"
    assert "schedule" in missing["issue"][0]["diagnostics"]
    huge = fhir_json(client.get(f"{FHIR}/Slot?schedule=Schedule/room-1&start=ge2027-01-01&start=lt2027-06-01"), 400)
    assert "31 days" in huge["issue"][0]["diagnostics"]


# --- search -------------------------------------------------------------------------------


def test_appointment_search_by_date_prefix_actor_patient_and_status_with_paging(clinic):
    users = persona_users(clinic)
    nine = book(clinic, hour=9)
    one = book(clinic, hour=13, patient=1, recovery_bay=clinic.bays[1])
    client = client_for(users["scheduler"])

    def ids(query: str) -> list[str]:
        return [r["id"] for r in resources(fhir_json(client.get(f"{FHIR}/Appointment?{query}")))]

    assert ids(f"date={MONDAY}") == [str(nine.pk), str(one.pk)]
    assert ids("date=ge2027-01-11T12:00:00-06:00") == [str(one.pk)]
    assert ids("date=lt2027-01-11T12:00:00-06:00") == [str(nine.pk)]
    assert ids("date=2027-01-12") == []
    assert ids(f"actor=Location/bay-{clinic.bays[1].pk}") == [str(one.pk)]
    assert ids(f"patient=Patient/{clinic.patients[0].pk}") == [str(nine.pk)]
    assert ids(f"practitioner=Practitioner/{clinic.physicians[0].pk}") == [str(nine.pk), str(one.pk)]
    assert ids("status=booked") == [str(nine.pk), str(one.pk)]
    assert ids("status=cancelled") == []
    first = fhir_json(client.get(f"{FHIR}/Appointment?date={MONDAY}&_count=1"))
    assert first["total"] == 2
    assert [r["id"] for r in resources(first)] == [str(nine.pk)]
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = fhir_json(client.get(next_url.replace("http://testserver", "")))
    assert [r["id"] for r in resources(second)] == [str(one.pk)]
    assert not [link for link in second["link"] if link["relation"] == "next"]
    bad = fhir_json(client.get(f"{FHIR}/Appointment?actor=Organization/1"), 400)
    assert bad["issue"][0]["code"] == "invalid"


def test_last_updated_and_etags(clinic):
    users = persona_users(clinic)
    case = book(clinic)
    client = client_for(users["scheduler"])
    assert len(resources(fhir_json(client.get(f"{FHIR}/Appointment?_lastUpdated=ge2027-01-04")))) == 1
    assert resources(fhir_json(client.get(f"{FHIR}/Appointment?_lastUpdated=gt2027-01-04"))) == []
    read = client.get(f"{FHIR}/Appointment/{case.pk}")
    etag = read["ETag"]
    assert client.get(f"{FHIR}/Appointment/{case.pk}", HTTP_IF_NONE_MATCH=etag).status_code == 304
    with time_machine.travel(local(MONDAY, 7), tick=False):
        Booking.objects.filter(pk=case.pk).update(status="checked_in", checked_in_at=local(MONDAY, 7))
        Booking.objects.get(pk=case.pk).save(update_fields=["updated_at"])
    changed = client.get(f"{FHIR}/Appointment/{case.pk}", HTTP_IF_NONE_MATCH=etag)
    assert fhir_json(changed)["status"] == "checked-in"
    assert changed["ETag"] != etag


# --- access -------------------------------------------------------------------------------


def test_errors_are_operation_outcomes(clinic):
    users = persona_users(clinic)
    unauthenticated = fhir_json(APIClient().get(f"{FHIR}/Appointment"), 401)
    assert unauthenticated["issue"][0]["code"] == "login"
    client = client_for(users["scheduler"])
    assert fhir_json(client.get(f"{FHIR}/Appointment/999999"), 404)["issue"][0]["code"] == "not-found"
    assert fhir_json(client.get(f"{FHIR}/Appointment/x;drop"), 404)["resourceType"] == "OperationOutcome"
    assert fhir_json(client.get(f"{FHIR}/Basic"), 404)["issue"][0]["code"] == "not-supported"
    assert fhir_json(client.get(f"{FHIR}/Appointment?_count=9999"), 400)["issue"][0]["code"] == "invalid"
    strict = client.get(f"{FHIR}/Appointment?colour=red", HTTP_PREFER="handling=strict")
    assert "colour" in fhir_json(strict, 400)["issue"][0]["diagnostics"]
    assert fhir_json(client.get(f"{FHIR}/Appointment?colour=red"))["type"] == "searchset"
    garbage = client.generic("POST", f"{FHIR}/Appointment/$hold", b"{not json", content_type="application/fhir+json")
    assert fhir_json(garbage, 400)["issue"][0]["code"] == "structure"


def test_patients_are_minimum_necessary_and_reads_are_audited(clinic):
    users = persona_users(clinic)
    case = book(clinic)
    tech = fhir_json(client_for(users["tech"]).get(f"{FHIR}/Patient/{case.patient_id}"))
    assert "telecom" not in tech
    assert tech["name"][0]["family"] == clinic.patients[0].last_name
    scheduler = fhir_json(client_for(users["scheduler"]).get(f"{FHIR}/Patient/{case.patient_id}"))
    assert scheduler["telecom"][0]["value"] == clinic.patients[0].phone
    # A tech reads only the patients of their own cases.
    fhir_json(client_for(users["tech"]).get(f"{FHIR}/Patient/{clinic.patients[5].pk}"), 404)
    assert AuditEvent.objects.filter(action="fhir.patient.read", actor=users["scheduler"]).count() == 1
    client_for(users["scheduler"]).get(f"{FHIR}/Appointment?date={MONDAY}")
    search = AuditEvent.objects.get(action="fhir.appointment.search")
    assert search.details["ids"] == [str(case.patient_id)]
    found = fhir_json(client_for(users["scheduler"]).get(f"{FHIR}/Patient?identifier={clinic.patients[3].mrn}"))
    assert [r["id"] for r in resources(found)] == [str(clinic.patients[3].pk)]


def test_a_read_scope_key_cannot_book_nor_read_patients(clinic):
    users = persona_users(clinic)
    issued = post(
        client_for(users["admin"]), "/api/v1/service-accounts/", {"name": "Portal", "scopes": ["schedule:read"]}
    ).json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued['key']}")
    found = fhir_json(client.get(f"{FHIR}/Appointment/$find?start={MONDAY}&end={MONDAY}&service-type=VP&_count=1"))
    proposal = resources(found)[0]
    refused = fhir_post(
        client, f"{FHIR}/Appointment/$book", parameters(appt_id=proposal["id"], patient_id=clinic.patients[0].pk)
    )
    assert fhir_json(refused, 403)["issue"][0]["code"] == "forbidden"
    assert not Booking.objects.exists()
    fhir_json(client.get(f"{FHIR}/Patient/{clinic.patients[0].pk}"), 403)
    uses = AuditEvent.objects.filter(action="api_key.use", object_id=str(issued["key_id"]))
    assert [u.details["path"] for u in uses.order_by("id")] == [
        f"{FHIR}/Appointment/$find",
        f"{FHIR}/Appointment/$book",
        f"{FHIR}/Patient/{clinic.patients[0].pk}",
    ]


# --- operations ---------------------------------------------------------------------------


def test_find_hold_book_read_cancel_books_and_frees_the_same_legs_as_the_rest_api(clinic):
    users = persona_users(clinic)
    client = client_for(users["scheduler"])
    found = fhir_json(client.get(f"{FHIR}/Appointment/$find?start={MONDAY}&end={MONDAY}&service-type=VP&_count=3"))
    proposals = resources(found)
    assert len(proposals) == 3
    proposal = proposals[0]
    assert proposal["status"] == "proposed"
    roles = {p["type"][0]["text"] for p in proposal["participant"]}
    assert {"Procedure room", "C-arm", "Physician", "Recovery bay"} <= roles
    held = fhir_json(
        fhir_post(
            client, f"{FHIR}/Appointment/$hold", parameters(appt_id=proposal["id"], patient_id=clinic.patients[0].pk)
        )
    )
    appointment = resources(held)[0]
    assert appointment["status"] == "pending"
    hold = Booking.objects.get(pk=int(appointment["id"]))
    assert hold.status == "hold"
    assert hold.hold_expires_at is not None
    held_legs = leg_set(hold.pk)
    booked = fhir_json(fhir_post(client, f"{FHIR}/Appointment/$book", parameters(appt_id=appointment["id"])))
    assert resources(booked)[0]["status"] == "booked"
    read = fhir_json(client.get(f"{FHIR}/Appointment/{hold.pk}"))
    assert read["status"] == "booked"
    assert leg_set(hold.pk) == held_legs
    periods = {(p["actor"]["reference"], p["period"]["start"]) for p in read["participant"]}
    assert {(p["actor"]["reference"], p["period"]["start"]) for p in proposal["participant"]} <= periods | {
        (p["actor"]["reference"], p["period"]["start"]) for p in read["participant"]
    }
    cancel = client.generic(
        "PATCH",
        f"{FHIR}/Appointment/{hold.pk}",
        '[{"op": "replace", "path": "/status", "value": "cancelled"}]',
        content_type="application/json-patch+json",
    )
    cancelled = fhir_json(cancel)
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelationReason"]["coding"][0]["code"] == "other"
    assert active_legs() == 0
    # The REST API books the same proposal onto the same legs, and frees them the same way.
    pins = {"room": clinic.rooms[0].pk}
    rest = post(
        client,
        "/api/v1/bookings/",
        {
            "patient": clinic.patients[0].pk,
            "procedure_type": "VP",
            "start": proposal["start"],
            **_pins_of(proposal),
            **pins,
        },
    )
    assert rest.status_code == 201, rest.content
    rest_id = rest.json()["id"]
    assert {(r, i, s, e) for r, i, s, e in leg_set(rest_id)} == held_legs
    assert post(client, f"/api/v1/bookings/{rest_id}/cancel/", {"reason": "other"}).status_code == 200
    assert active_legs() == 0
    assert AuditEvent.objects.filter(action__in=["fhir.appointment.hold", "fhir.appointment.book"]).count() == 2


def _pins_of(proposal: dict) -> dict[str, int]:
    names = {
        "Procedure room": "room",
        "C-arm": "c_arm",
        "Physician": "physician",
        "Radiology tech": "rad_tech",
        "Sedation nurse": "sedation_staff",
        "Recovery bay": "recovery_bay",
    }
    pins = {}
    for participant in proposal["participant"]:
        name = names.get(participant["type"][0].get("text", ""))
        if name:
            pins[name] = int(participant["actor"]["reference"].rsplit("/", 1)[1].rsplit("-", 1)[-1])
    return pins


def test_book_straight_from_a_proposal_and_reschedule_with_cancelled_appt_id(clinic):
    users = persona_users(clinic)
    client = client_for(users["scheduler"])
    proposals = resources(
        fhir_json(client.get(f"{FHIR}/Appointment/$find?start={MONDAY}&end={MONDAY}&service-type=VP&_count=5"))
    )
    booked = resources(
        fhir_json(
            fhir_post(
                client,
                f"{FHIR}/Appointment/$book",
                parameters(appt_id=proposals[0]["id"], patient_id=clinic.patients[0].pk),
            )
        )
    )[0]
    assert booked["status"] == "booked"
    later = resources(
        fhir_json(client.get(f"{FHIR}/Appointment/$find?start=2027-01-12&end=2027-01-12&service-type=VP&_count=1"))
    )[0]
    moved = resources(
        fhir_json(
            fhir_post(
                client,
                f"{FHIR}/Appointment/$book",
                parameters(appt_id=later["id"], cancelled_appt_id=f"Appointment/{booked['id']}"),
            )
        )
    )[0]
    assert moved["id"] == booked["id"]
    assert moved["start"] == later["start"]
    assert Booking.objects.count() == 1
    again = fhir_post(
        client, f"{FHIR}/Appointment/$book", parameters(appt_id=later["id"], patient_id=clinic.patients[1].pk)
    )
    assert fhir_json(again, 409)["issue"][0]["code"] == "conflict"


def test_an_idempotency_key_makes_hold_book_and_cancel_safe_to_retry(clinic):
    import json

    users = persona_users(clinic)
    client = client_for(users["scheduler"])
    proposal = resources(
        fhir_json(client.get(f"{FHIR}/Appointment/$find?start={MONDAY}&end={MONDAY}&service-type=VP&_count=1"))
    )[0]
    body = json.dumps(parameters(appt_id=proposal["id"], patient_id=clinic.patients[0].pk))

    def send(url: str, payload: str, key: str, method: str = "POST", content_type: str = "application/fhir+json"):
        return client.generic(method, url, payload, content_type=content_type, HTTP_IDEMPOTENCY_KEY=key)

    held = send(f"{FHIR}/Appointment/$hold", body, "hold-1")
    again = send(f"{FHIR}/Appointment/$hold", body, "hold-1")
    assert held.status_code == again.status_code == 200
    assert again.content == held.content
    assert again["Idempotent-Replayed"] == "true"
    assert Booking.objects.count() == 1
    hold_id = resources(fhir_json(held))[0]["id"]

    booking_body = json.dumps(parameters(appt_id=hold_id))
    booked = send(f"{FHIR}/Appointment/$book", booking_body, "book-1")
    retried = send(f"{FHIR}/Appointment/$book", booking_body, "book-1")
    assert resources(fhir_json(booked))[0]["status"] == "booked"
    assert retried.content == booked.content
    assert AuditEvent.objects.filter(action="booking.confirm").count() == 1

    reused = send(f"{FHIR}/Appointment/$book", json.dumps(parameters(appt_id="VP.1.m.209901011500.r1")), "book-1")
    assert fhir_json(reused, 422)["issue"][0]["code"] == "business-rule"
    assert "different request" in reused.json()["issue"][0]["diagnostics"]
    bad = send(f"{FHIR}/Appointment/$book", booking_body, "")
    assert fhir_json(bad, 400)["issue"][0]["code"] == "invalid"

    patch = json.dumps([{"op": "replace", "path": "/status", "value": "cancelled"}])
    url = f"{FHIR}/Appointment/{hold_id}"
    cancelled = send(url, patch, "cancel-1", method="PATCH", content_type="application/json-patch+json")
    repeated = send(url, patch, "cancel-1", method="PATCH", content_type="application/json-patch+json")
    assert fhir_json(cancelled)["status"] == "cancelled"
    assert repeated.content == cancelled.content
    assert AuditEvent.objects.filter(action="booking.cancel").count() == 1
    # Without the key the retry is refused as the service refuses it: a cancelled case stays so.
    plain = client.generic("PATCH", url, patch, content_type="application/json-patch+json")
    assert fhir_json(plain, 409)["issue"][0]["code"] == "conflict"


def test_booking_a_hold_in_place_of_a_case_that_cannot_be_cancelled_changes_nothing(clinic):
    users = persona_users(clinic)
    client = client_for(users["scheduler"])
    old = book(clinic, hour=9)
    Booking.objects.filter(pk=old.pk).update(status="in_procedure")
    proposal = resources(
        fhir_json(client.get(f"{FHIR}/Appointment/$find?start=2027-01-12&end=2027-01-12&service-type=VP&_count=1"))
    )[0]
    held = resources(
        fhir_json(
            fhir_post(
                client, f"{FHIR}/Appointment/$hold", parameters(appt_id=proposal["id"], patient_id=old.patient_id)
            )
        )
    )[0]
    answer = fhir_post(
        client,
        f"{FHIR}/Appointment/$book",
        parameters(appt_id=held["id"], cancelled_appt_id=f"Appointment/{old.pk}"),
    )
    assert fhir_json(answer, 409)["issue"][0]["code"] == "conflict"
    # The hold is still a hold and the case in the room is untouched.
    assert Booking.objects.get(pk=int(held["id"])).status == "hold"
    assert Booking.objects.get(pk=old.pk).status == "in_procedure"


def test_bad_operation_input_is_a_clear_outcome(clinic):
    users = persona_users(clinic)
    client = client_for(users["scheduler"])
    no_type = fhir_json(client.get(f"{FHIR}/Appointment/$find?start={MONDAY}&end={MONDAY}"), 400)
    assert "service-type" in no_type["issue"][0]["diagnostics"]
    unknown = fhir_post(
        client,
        f"{FHIR}/Appointment/$book",
        parameters(appt_id="VP.1.m.209901011500.r1", patient_id=clinic.patients[0].pk),
    )
    assert unknown.status_code in (409, 422)
    assert fhir_json(unknown, unknown.status_code)["issue"][0]["code"] in ("business-rule", "conflict")
    made_up = fhir_post(client, f"{FHIR}/Appointment/$hold", parameters(appt_id="nonsense", patient_id=1))
    assert fhir_json(made_up, 404)["issue"][0]["code"] == "not-found"
    not_parameters = fhir_post(client, f"{FHIR}/Appointment/$hold", {"resourceType": "Patient"})
    assert fhir_json(not_parameters, 400)["issue"][0]["code"] == "structure"
    assert not Booking.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_sixteen_clients_racing_to_book_one_proposal_make_one_booking(frozen_now):
    clinic = build_clinic()
    users = persona_users(clinic)
    proposal = resources(
        fhir_json(
            client_for(users["scheduler"]).get(
                f"{FHIR}/Appointment/$find?start={MONDAY}&end={MONDAY}&service-type=VP&_count=1"
            )
        )
    )[0]
    barrier = threading.Barrier(16)
    codes: list[int] = []
    lock = threading.Lock()

    def attempt(index: int) -> None:
        try:
            client = client_for(users["scheduler"])
            body = parameters(appt_id=proposal["id"], patient_id=clinic.patients[index].pk)
            barrier.wait(timeout=30)
            response = fhir_post(client, f"{FHIR}/Appointment/$book", body)
            with lock:
                codes.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(codes) == [200] + [409] * 15
    assert Booking.objects.count() == 1
    assert Allocation.objects.filter(is_active=True).count() == 7
