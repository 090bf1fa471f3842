"""Object-level rules: who may read and write which patient's data, the audit of those reads,
and what an Idempotency-Key replay may give back (security review findings 1 to 5)."""

import datetime as dt
import json

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from core.idempotency import RETENTION, idempotency_records_purge
from core.models import AuditEvent, IdempotencyRecord
from core.tasks import purge_idempotency_records
from outbox.models import Alert
from patients.models import ImagingStudy, LabResult, MedicationHold, Patient
from procedure_day.models import CaseChecklist
from scheduling.models import Allocation, Booking
from scheduling.request import CaseRequest, pins_of
from scheduling.services.bookings import booking_cancel, booking_create, booking_reschedule
from tests import factories as f
from tests.api_helpers import client_for, field_errors, persona_users, post
from tests.conftest import MONDAY, NOW, local
from tests.factories import drug
from tests.test_workflow import record_ready, set_status

pytestmark = pytest.mark.django_db
NINE = local(MONDAY, 9)
CLINICAL_WRITERS = ("admin", "scheduler", "nurse")


@pytest.fixture
def users(clinic):
    return persona_users(clinic)


@pytest.fixture
def clients(users):
    return {name: client_for(user) for name, user in users.items()}


def signed_in(user: User) -> APIClient:
    """A session that outlives a token, for tests that travel to the case day. The user is
    loaded afresh so that roles and staff links are read as they are now."""
    client = APIClient()
    client.force_authenticate(user=User.objects.get(pk=user.pk))
    return client


def book(clinic, *, start=NINE, patient=0, **resources):
    return booking_create(
        request=CaseRequest(
            procedure_type=clinic.vp(), patient=clinic.patients[patient], pins=clinic.resources(**resources)
        ),
        actor=None,
        starts_at=start,
    )


def move_to_other_team(clinic, booking: Booking) -> Booking:
    """Reschedule with the other physician and the other tech: the first team's legs are
    deactivated and new ones written for the second."""
    f.CredentialFactory(staff=clinic.physicians[1], procedure_code="VP")
    return booking_reschedule(
        actor=None,
        booking=booking,
        starts_at=local(MONDAY, 13),
        pins=pins_of({"physician": clinic.physicians[1], "rad_tech": clinic.techs[1]}),
    )


def audit_rows(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def problem_without_ids(response, *ids: int) -> dict:
    text = response.content.decode()
    for value in ids:
        text = text.replace(str(value), "<id>")
    return json.loads(text)


# --- finding 1: medication holds only for visible patients ----------------------------------


@pytest.fixture
def own_case(clinic):
    return book(clinic)


def test_a_physician_cannot_create_a_hold_for_someone_elses_patient(clinic, clients, own_case):
    stranger = clinic.patients[5]
    body = {"patient": stranger.pk, "drug": "warfarin", "last_dose_on": "2027-01-03"}
    refused = post(clients["physician"], "/api/v1/medication-holds/", body)
    assert refused.status_code == 422
    assert list(field_errors(refused)) == ["patient"]
    assert MedicationHold.objects.count() == 0
    assert not audit_rows("medication_hold.create")
    # The same words as for an id that does not exist: "not yours" is not told apart.
    unknown = post(clients["physician"], "/api/v1/medication-holds/", {**body, "patient": 99999})
    assert unknown.status_code == 422
    assert problem_without_ids(refused, stranger.pk) == problem_without_ids(unknown, 99999)

    mine = post(clients["physician"], "/api/v1/medication-holds/", {**body, "patient": own_case.patient_id})
    assert mine.status_code == 201
    assert MedicationHold.objects.get().patient_id == own_case.patient_id


@pytest.mark.parametrize("persona", CLINICAL_WRITERS)
def test_front_desk_nurses_and_admins_write_holds_for_any_patient(clinic, clients, persona):
    body = {"patient": clinic.patients[7].pk, "drug": "clopidogrel", "last_dose_on": None}
    response = post(clients[persona], "/api/v1/medication-holds/", body)
    assert response.status_code == 201
    assert MedicationHold.objects.get().patient_id == clinic.patients[7].pk


@pytest.mark.parametrize(("persona", "expected"), [("tech", 403), ("outsider", 403)])
def test_techs_and_outsiders_write_no_holds(clinic, clients, own_case, persona, expected):
    body = {"patient": own_case.patient_id, "drug": "warfarin"}
    assert post(clients[persona], "/api/v1/medication-holds/", body).status_code == expected
    assert MedicationHold.objects.count() == 0


def test_a_physician_cannot_move_a_hold_to_someone_elses_patient(clinic, clients, own_case):
    hold = MedicationHold.objects.create(patient=own_case.patient, drug=drug("warfarin"))
    response = clients["physician"].patch(
        f"/api/v1/medication-holds/{hold.pk}/", {"patient": clinic.patients[5].pk}, format="json"
    )
    assert response.status_code == 422
    assert list(field_errors(response)) == ["patient"]
    hold.refresh_from_db()
    assert hold.patient_id == own_case.patient_id
    assert not audit_rows("medication_hold.update")


def test_a_physician_cannot_read_change_or_delete_a_hold_of_someone_elses_patient(clinic, clients, own_case):
    theirs = MedicationHold.objects.create(patient=clinic.patients[5], drug=drug("apixaban"), hold_days=2)
    url = f"/api/v1/medication-holds/{theirs.pk}/"
    assert clients["physician"].get(url).status_code == 404
    changed = clients["physician"].patch(url, {"patient": own_case.patient_id, "hold_days": 0}, format="json")
    assert changed.status_code == 404
    assert clients["physician"].delete(url).status_code == 404
    theirs.refresh_from_db()
    assert (theirs.patient_id, theirs.hold_days) == (clinic.patients[5].pk, 2)
    assert not AuditEvent.objects.filter(action__startswith="medication_hold.").exists()
    assert not audit_rows("medication_hold.read")


# --- finding 2: availability and reasons with a patient -------------------------------------


def availability(client, **params):
    query = {"procedure_type": "VP", "from": "2027-01-11", "to": "2027-01-12", "limit": 1, **params}
    return client.get("/api/v1/availability/", query)


def reasons(client, **params):
    return client.get("/api/v1/availability/reasons/", {"procedure_type": "VP", "start": NINE.isoformat(), **params})


@pytest.mark.parametrize("ask", [availability, reasons])
def test_a_physician_learns_nothing_about_someone_elses_patient(clinic, clients, own_case, ask):
    stranger = clinic.patients[5]
    # What would leak: the stranger's anticoagulant and their other case.
    MedicationHold.objects.create(patient=stranger, drug=drug("warfarin"))
    f.CredentialFactory(staff=clinic.physicians[1], procedure_code="VP")
    book(clinic, start=local(MONDAY, 13), patient=5, physician=clinic.physicians[1], rad_tech=clinic.techs[1])
    before = AuditEvent.objects.count()
    refused = ask(clients["physician"], patient=stranger.pk)
    unknown = ask(clients["physician"], patient=99999)
    assert (refused.status_code, unknown.status_code) == (422, 422)
    assert list(field_errors(refused)) == ["patient"]
    assert problem_without_ids(refused, stranger.pk) == problem_without_ids(unknown, 99999)
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize(
    ("ask", "action"), [(availability, "availability.read"), (reasons, "availability.reasons_read")]
)
@pytest.mark.parametrize("persona", ["admin", "scheduler", "physician"])
def test_a_search_for_a_patient_is_an_audited_read(clinic, clients, users, own_case, ask, action, persona):
    patient_id = own_case.patient_id
    response = ask(clients[persona], patient=patient_id)
    assert response.status_code == 200
    [event] = audit_rows(action)
    assert (event.actor, event.object_type, event.object_id) == (users[persona], "patients.patient", str(patient_id))
    assert event.details == {"ids": [str(patient_id)]}


@pytest.mark.parametrize(
    ("ask", "action"), [(availability, "availability.read"), (reasons, "availability.reasons_read")]
)
def test_a_search_without_a_patient_reads_no_patient_data(clinic, clients, ask, action):
    assert ask(clients["scheduler"]).status_code == 200
    assert not audit_rows(action)


@pytest.mark.parametrize("persona", ["nurse", "tech", "outsider"])
def test_roles_without_search_are_refused_before_the_patient_is_looked_at(clinic, clients, own_case, persona):
    assert availability(clients[persona], patient=own_case.patient_id).status_code == 403
    assert reasons(clients[persona], patient=own_case.patient_id).status_code == 403
    assert not AuditEvent.objects.filter(action__startswith="availability.").exists()


# --- finding 3: "own case" is an active leg -------------------------------------------------


def test_a_physician_moved_off_a_case_loses_it_and_its_patient_everywhere(clinic, clients, own_case):
    physician = clients["physician"]
    patient = own_case.patient
    hold = MedicationHold.objects.create(patient=patient, drug=drug("warfarin"))
    alert = Alert.objects.create(site=clinic.site, booking=own_case, kind="recovery_clash", message="Late.")
    lab = {"patient": patient.pk, "test": "inr", "value": "1.0", "taken_at": "2027-01-04T10:00:00Z"}
    study = {"patient": patient.pk, "modality": "ct", "performed_on": "2027-01-03"}
    case = f"/api/v1/bookings/{own_case.pk}/"
    daily = {"physician": clinic.physicians[0].pk, "date": "2027-01-11"}

    # Given the case is theirs, they see it all.
    assert physician.get(case).status_code == 200
    assert physician.get(f"/api/v1/patients/{patient.pk}/").status_code == 200
    assert physician.get(f"/api/v1/medication-holds/{hold.pk}/").status_code == 200
    assert physician.get(f"{case}checklist/").status_code == 200
    assert [row["id"] for row in physician.get("/api/v1/alerts/").json()["results"]] == [alert.pk]
    assert [c["booking"] for c in physician.get("/api/v1/daily-list/", daily).json()["cases"]] == [own_case.pk]

    # When the case is rescheduled to another physician,
    move_to_other_team(clinic, own_case)
    assert Allocation.objects.filter(booking=own_case, staff=clinic.physicians[0], is_active=False).exists()
    counts = (MedicationHold.objects.count(), LabResult.objects.count(), ImagingStudy.objects.count())

    # then reads are 404 or empty,
    assert physician.get("/api/v1/bookings/").json()["count"] == 0
    assert physician.get(case).status_code == 404
    assert physician.get("/api/v1/patients/").json()["count"] == 0
    assert physician.get(f"/api/v1/patients/{patient.pk}/").status_code == 404
    assert physician.get("/api/v1/medication-holds/").json()["count"] == 0
    assert physician.get(f"/api/v1/medication-holds/{hold.pk}/").status_code == 404
    assert physician.get(f"{case}checklist/").status_code == 404
    assert physician.get("/api/v1/alerts/").json()["count"] == 0
    assert physician.get("/api/v1/daily-list/", daily).json()["cases"] == []
    LabResult.objects.create(patient=patient, test="inr", value=1, taken_at=NOW)
    ImagingStudy.objects.create(patient=patient, modality="ct", performed_on=dt.date(2027, 1, 2))
    assert physician.get("/api/v1/lab-results/", {"patient": patient.pk}).json()["count"] == 0
    assert physician.get("/api/v1/imaging-studies/", {"patient": patient.pk}).json()["count"] == 0
    # and writes are refused, with nothing written.
    writes = [
        post(physician, "/api/v1/medication-holds/", {"patient": patient.pk, "drug": "x", "hold_days": 1}),
        physician.patch(f"/api/v1/medication-holds/{hold.pk}/", {"hold_days": 0}, format="json"),
        physician.patch(f"{case}checklist/", {"allergies_reviewed": True}, format="json"),
        post(physician, "/api/v1/lab-results/", lab),
        post(physician, "/api/v1/imaging-studies/", study),
        post(physician, f"{case}start-procedure/", {}),
        post(physician, f"{case}ready/", {"override_reason": "fine"}),
    ]
    assert [w.status_code for w in writes] == [422, 404, 404, 422, 422, 404, 404]
    counts_after = (MedicationHold.objects.count(), LabResult.objects.count() - 1, ImagingStudy.objects.count() - 1)
    assert counts_after == counts
    hold.refresh_from_db()
    assert hold.hold_days is None
    assert not CaseChecklist.objects.exists()
    own_case.refresh_from_db()
    assert own_case.status == "scheduled"


def test_a_tech_moved_off_a_case_loses_it_and_its_patient(clinic, clients, own_case):
    tech = clients["tech"]
    assert tech.get(f"/api/v1/bookings/{own_case.pk}/").status_code == 200
    assert tech.get(f"/api/v1/patients/{own_case.patient_id}/").status_code == 200
    move_to_other_team(clinic, own_case)
    assert tech.get(f"/api/v1/bookings/{own_case.pk}/").status_code == 404
    assert tech.get(f"/api/v1/patients/{own_case.patient_id}/").status_code == 404
    assert tech.get("/api/v1/bookings/").json()["count"] == 0
    assert tech.get("/api/v1/patients/").json()["count"] == 0


def test_the_physician_who_takes_over_gains_the_case(clinic, own_case):
    newcomer = f.UserFactory(username="okafor", groups=["physician"])
    clinic.physicians[1].user = newcomer
    clinic.physicians[1].save()
    client = client_for(newcomer)
    assert client.get(f"/api/v1/bookings/{own_case.pk}/").status_code == 404
    move_to_other_team(clinic, own_case)
    assert client.get(f"/api/v1/bookings/{own_case.pk}/").status_code == 200
    assert client.get(f"/api/v1/patients/{own_case.patient_id}/").status_code == 200


def test_a_tech_reading_a_physicians_daily_list_sees_only_their_own_cases(clinic, clients, users):
    mine = book(clinic)
    book(
        clinic,
        start=local(MONDAY, 13),
        patient=1,
        room=clinic.rooms[1],
        c_arm=clinic.c_arms[1],
        rad_tech=clinic.techs[1],
        recovery_bay=clinic.bays[1],
    )
    daily = {"physician": clinic.physicians[0].pk, "date": "2027-01-11"}
    assert len(clients["nurse"].get("/api/v1/daily-list/", daily).json()["cases"]) == 2
    AuditEvent.objects.all().delete()
    response = clients["tech"].get("/api/v1/daily-list/", daily)
    assert response.status_code == 200
    assert [c["booking"] for c in response.json()["cases"]] == [mine.pk]
    [event] = audit_rows("daily_list.read")
    assert (event.actor, event.details["ids"]) == (users["tech"], [str(mine.patient_id)])


# --- finding 4: every read of patient data is audited ---------------------------------------


def test_reading_medication_holds_is_audited_with_ids_only(clinic, clients, users, own_case):
    first = MedicationHold.objects.create(patient=own_case.patient, drug=drug("warfarin"))
    MedicationHold.objects.create(patient=clinic.patients[3], drug=drug("apixaban"), hold_days=2)
    listed = clients["nurse"].get("/api/v1/medication-holds/")
    assert listed.status_code == 200
    [event] = audit_rows("medication_hold.list")
    assert event.actor == users["nurse"]
    assert event.details == {"ids": sorted([str(own_case.patient_id), str(clinic.patients[3].pk)])}
    opened = clients["physician"].get(f"/api/v1/medication-holds/{first.pk}/")
    assert opened.status_code == 200
    [read] = audit_rows("medication_hold.read")
    assert (read.actor, read.object_type, read.object_id) == (
        users["physician"],
        "patients.patient",
        str(own_case.patient_id),
    )
    assert read.details == {"ids": [str(own_case.patient_id)], "medication_hold": first.pk}
    assert "warfarin" not in json.dumps([event.details, read.details])


def test_an_empty_list_of_holds_reads_no_one(clinic, clients):
    assert clients["physician"].get("/api/v1/medication-holds/").json()["count"] == 0
    assert not audit_rows("medication_hold.list")


def test_an_idempotent_replay_is_audited_like_a_read(clinic, clients, users):
    body = {"patient": clinic.patients[0].pk, "procedure_type": "VP", "start": NINE.isoformat()}
    first = post(clients["scheduler"], "/api/v1/bookings/", body, **{"Idempotency-Key": "replay-1"})
    assert first.status_code == 201
    assert not audit_rows("booking.replay")
    again = post(clients["scheduler"], "/api/v1/bookings/", body, **{"Idempotency-Key": "replay-1"})
    assert again.content == first.content
    [event] = audit_rows("booking.replay")
    assert (event.actor, event.object_type) == (users["scheduler"], "patients.patient")
    assert event.details == {"ids": [str(clinic.patients[0].pk)], "bookings": [first.json()["id"]]}
    assert Booking.objects.count() == 1


@pytest.fixture
def admin_client(client):
    client.force_login(f.UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_admin_history_and_delete_confirmation_of_a_patient_are_audited(clinic, admin_client):
    patient = clinic.patients[2]
    MedicationHold.objects.create(patient=patient, drug=drug("warfarin"))
    base = f"/admin/patients/patient/{patient.pk}"
    assert admin_client.get(f"{base}/history/").status_code == 200
    assert admin_client.get(f"{base}/delete/").status_code == 200
    for action in ("patient.admin_history", "patient.admin_delete_confirm"):
        [event] = audit_rows(action)
        assert (event.actor.username, event.details) == ("root", {"ids": [str(patient.pk)]})
    assert Patient.objects.filter(pk=patient.pk).exists()


def test_admin_bulk_delete_confirmation_of_patients_is_audited(clinic, admin_client):
    chosen = [clinic.patients[3].pk, clinic.patients[4].pk]
    response = admin_client.post("/admin/patients/patient/", {"action": "delete_selected", "_selected_action": chosen})
    assert response.status_code == 200
    assert b"Are you sure" in response.content
    [event] = audit_rows("patient.admin_delete_confirm")
    assert event.details == {"ids": sorted(str(pk) for pk in chosen)}
    assert Patient.objects.filter(pk__in=chosen).count() == 2


def test_admin_history_of_a_booking_is_audited_and_its_delete_page_is_closed(clinic, admin_client):
    booking = book(clinic)
    assert admin_client.get(f"/admin/scheduling/booking/{booking.pk}/history/").status_code == 200
    [event] = audit_rows("booking.admin_history")
    assert event.details == {"ids": [str(booking.patient_id)], "booking": booking.pk}
    assert admin_client.get(f"/admin/scheduling/booking/{booking.pk}/delete/").status_code == 403
    assert not audit_rows("booking.admin_delete_confirm")
    assert Booking.objects.filter(pk=booking.pk).exists()


def test_admin_pages_of_a_missing_record_audit_nothing(clinic, admin_client):
    for page in ("change", "history", "delete"):
        admin_client.get(f"/admin/patients/patient/99999/{page}/")
    assert not AuditEvent.objects.filter(action__startswith="patient.admin_").exists()


# --- finding 5: Idempotency-Key records expire and replays are re-checked ---------------------


def create_with_key(client, clinic, key, *, patient=0, hour=9):
    body = {"patient": clinic.patients[patient].pk, "procedure_type": "VP", "start": local(MONDAY, hour).isoformat()}
    return post(client, "/api/v1/bookings/", body, **{"Idempotency-Key": key})


def age(key: str, by: dt.timedelta) -> None:
    IdempotencyRecord.objects.filter(key=key).update(created_at=NOW - by)


def test_a_record_younger_than_a_day_still_replays(clinic, clients):
    first = create_with_key(clients["scheduler"], clinic, "k-day")
    age("k-day", RETENTION - dt.timedelta(minutes=1))
    again = create_with_key(clients["scheduler"], clinic, "k-day")
    assert (again.status_code, again["Idempotent-Replayed"], again.content) == (201, "true", first.content)
    assert Booking.objects.count() == 1


def test_an_expired_record_is_absent_and_its_key_may_be_reused(clinic, clients):
    first = create_with_key(clients["scheduler"], clinic, "k-old")
    age("k-old", RETENTION + dt.timedelta(minutes=1))
    # Another request under the same key: a live record would make this a 422.
    reused = create_with_key(clients["scheduler"], clinic, "k-old", patient=1, hour=13)
    assert reused.status_code == 201, reused.json()
    assert "Idempotent-Replayed" not in reused
    assert reused.json()["id"] != first.json()["id"]
    assert Booking.objects.count() == 2
    [record] = IdempotencyRecord.objects.filter(key="k-old")
    assert (record.created_at, json.loads(record.body)["id"]) == (NOW, reused.json()["id"])
    # And the new record replays as usual.
    again = create_with_key(clients["scheduler"], clinic, "k-old", patient=1, hour=13)
    assert again.content == reused.content
    assert Booking.objects.count() == 2


def test_the_purge_deletes_expired_records_only(clinic, clients):
    for key in ("p-1", "p-2", "p-3"):
        create_with_key(clients["scheduler"], clinic, key, patient=int(key[-1]), hour=7 + 2 * int(key[-1]))
    age("p-1", RETENTION + dt.timedelta(seconds=1))
    age("p-2", RETENTION + dt.timedelta(days=30))
    assert idempotency_records_purge() == 2
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["p-3"]
    assert idempotency_records_purge() == 0
    with time_machine.travel(NOW + RETENTION + dt.timedelta(seconds=1), tick=False):
        assert purge_idempotency_records() == 1
    assert not IdempotencyRecord.objects.exists()
    assert Booking.objects.count() == 3


def test_a_replay_is_refused_once_the_case_is_no_longer_the_callers(clinic, users):
    booking = set_status(book(clinic), "checked_in", checked_in_at=local(MONDAY, 8, 10))
    record_ready(booking)
    url = f"/api/v1/bookings/{booking.pk}/ready/"
    with time_machine.travel(local(MONDAY, 8, 50), tick=False):
        physician = signed_in(users["physician"])
        first = post(physician, url, {}, **{"Idempotency-Key": "ready-1"})
        assert first.status_code == 200
        assert post(physician, url, {}, **{"Idempotency-Key": "ready-1"}).content == first.content
        booking_cancel(actor=None, booking=booking, reason="physician_unavailable")
        replays_before = len(audit_rows("booking.replay"))
        refused = post(signed_in(users["physician"]), url, {}, **{"Idempotency-Key": "ready-1"})
    assert refused.status_code == 404
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "not_found"
    assert "patient" not in refused.json()
    assert len(audit_rows("booking.replay")) == replays_before == 1


def test_a_replayed_error_about_a_case_is_refused_too(clinic, clients, users):
    booking = book(clinic)
    url = f"/api/v1/bookings/{booking.pk}/start-procedure/"
    first = post(clients["physician"], url, {}, **{"Idempotency-Key": "early"})
    assert first.status_code == 409
    move_to_other_team(clinic, booking)
    again = post(clients["physician"], url, {}, **{"Idempotency-Key": "early"})
    assert again.status_code == 404
    assert not audit_rows("booking.replay")


def test_a_replay_is_cut_to_the_fields_the_callers_role_allows_now(clinic, users):
    booking = set_status(book(clinic), "checked_in", checked_in_at=local(MONDAY, 8, 10))
    record_ready(booking)
    url = f"/api/v1/bookings/{booking.pk}/ready/"
    nurse = users["nurse"]
    with time_machine.travel(local(MONDAY, 8, 50), tick=False):
        first = post(signed_in(nurse), url, {}, **{"Idempotency-Key": "role-1"})
        assert first.status_code == 200
        assert first.json()["patient"]["phone"] == "555-0100"
        # The nurse is made a physician; they still hold the sedation leg, so the case is theirs.
        nurse.groups.set([Group.objects.get_or_create(name="physician")[0]])
        again = post(signed_in(nurse), url, {}, **{"Idempotency-Key": "role-1"})
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert "phone" not in again.json()["patient"]
    assert {k: v for k, v in first.json().items() if k != "patient"} == {
        k: v for k, v in again.json().items() if k != "patient"
    }
    assert again.json()["patient"]["mrn"] == first.json()["patient"]["mrn"]
