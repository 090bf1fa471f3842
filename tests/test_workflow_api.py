"""The day-of-procedure API: transitions, roles, the checklist, labs, imaging and alerts."""

import datetime as dt

import pytest
import time_machine
from rest_framework.test import APIClient

from core.models import AuditEvent
from outbox.models import Alert
from patients.models import ImagingStudy, LabResult
from procedure_day.models import CaseChecklist
from scheduling.models import Booking
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from tests import factories as f
from tests.api_helpers import field_errors, persona_users, post, problem_extra
from tests.conftest import MONDAY, local
from tests.test_workflow import actions, record_ready, set_status

pytestmark = pytest.mark.django_db
NINE = local(MONDAY, 9)


def at(hour: int, minute: int = 0):
    return time_machine.travel(local(MONDAY, hour, minute), tick=False)


@pytest.fixture
def users(clinic):
    return persona_users(clinic)


def authenticated(user) -> APIClient:
    # Tokens last hours and these tests travel a week ahead to the case day.
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def clients(users):
    return {name: authenticated(user) for name, user in users.items()}


@pytest.fixture
def booking(clinic):
    return booking_create(
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[0], pins=clinic.resources()),
        actor=None,
        starts_at=NINE,
    )


def url(booking: Booking, step: str) -> str:
    return f"/api/v1/bookings/{booking.pk}/{step}/"


def test_a_case_day_through_the_api(clinic, clients, booking):
    nurse, physician = clients["nurse"], clients["physician"]
    with at(8, 10):
        checked_in = post(nurse, url(booking, "check-in"), {})
        assert checked_in.status_code == 200
        assert checked_in.json()["status"] == "checked_in"
        answers = {
            "consent_signed_at": "2027-01-11T08:05:00-06:00",
            "escort_confirmed": True,
            "last_solids_at": "2027-01-10T22:00:00-06:00",
            "last_clears_at": "2027-01-11T06:00:00-06:00",
            "pregnancy_status": "not_applicable",
            "allergies_reviewed": True,
        }
        checklist = nurse.patch(url(booking, "checklist"), answers, format="json")
        assert checklist.status_code == 200
        body = checklist.json()
        assert body["passes"] is False
        assert body["consent_signed_at"] == "2027-01-11T08:05:00-06:00"
        assert {i["code"]: i["status"] for i in body["items"] if i["status"] != "ok"} == {
            "inr": "missing",
            "platelets": "missing",
            "imaging": "missing",
        }
        for test, value in (("inr", "1.10"), ("platelets", "210")):
            lab = post(
                nurse,
                "/api/v1/lab-results/",
                {"patient": booking.patient_id, "test": test, "value": value, "taken_at": "2027-01-10T09:00:00-06:00"},
            )
            assert lab.status_code == 201, lab.json()
        study = post(
            nurse,
            "/api/v1/imaging-studies/",
            {"patient": booking.patient_id, "modality": "mri_stir", "performed_on": "2027-01-03"},
        )
        assert study.status_code == 201
        assert nurse.get(url(booking, "checklist")).json()["passes"] is True
    with at(8, 50):
        assert post(nurse, url(booking, "ready"), {}).json()["status"] == "ready"
    with at(9):
        assert post(physician, url(booking, "start-procedure"), {}).json()["status"] == "in_procedure"
    with at(10, 30):
        ended = post(physician, url(booking, "end-procedure"), {"ended_at": "2027-01-11T10:25:00-06:00"})
        assert ended.status_code == 200
        recovery = next(leg for leg in ended.json()["legs"] if leg["role"] == "recovery_bay")
        assert (recovery["start"], recovery["end"]) == ("2027-01-11T10:25:00-06:00", "2027-01-11T12:25:00-06:00")
        assert post(physician, url(booking, "start-recovery"), {}).json()["status"] == "in_recovery"
    with at(12, 29):
        early = post(nurse, url(booking, "ready-for-discharge"), {})
        assert early.status_code == 409
        assert problem_extra(early)["remaining_minutes"] == 1
    with at(12, 30):
        assert post(nurse, url(booking, "ready-for-discharge"), {}).json()["status"] == "ready_for_discharge"
    with at(12, 35):
        alone = post(nurse, url(booking, "discharge"), {"escort_present": False})
        assert alone.status_code == 422
        assert alone.json()["errors"][0]["code"] == "escort_not_present"
        done = post(nurse, url(booking, "discharge"), {"escort_present": True})
        assert done.status_code == 200
        assert done.json()["status"] == "discharged"
    assert actions(booking) == [
        "booking.create",
        "booking.check_in",
        "booking.ready",
        "booking.start_procedure",
        "booking.end_procedure",
        "booking.start_recovery",
        "booking.ready_for_discharge",
        "booking.discharge",
    ]
    assert AuditEvent.objects.filter(action="checklist.read").count() == 1


@pytest.mark.parametrize(
    ("step", "status"),
    [
        ("check-in", "ready"),
        ("ready", "scheduled"),
        ("start-procedure", "checked_in"),
        ("end-procedure", "ready"),
        ("start-recovery", "checked_in"),
        ("ready-for-discharge", "in_procedure"),
        ("discharge", "in_recovery"),
        ("no-show", "in_procedure"),
    ],
)
def test_an_illegal_transition_is_a_409_problem_and_writes_nothing(clinic, clients, booking, step, status):
    set_status(booking, status)
    with at(8, 30):
        response = post(clients["admin"], url(booking, step), {"escort_present": True} if step == "discharge" else {})
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "invalid_transition"
    assert problem["errors"][0]["extra"]["status"] == status
    booking.refresh_from_db()
    assert booking.status == status
    assert actions(booking) == ["booking.create"]


@pytest.mark.parametrize(
    ("step", "persona", "expected"),
    [
        ("check-in", "scheduler", 200),
        ("check-in", "nurse", 200),
        ("check-in", "physician", 403),
        ("check-in", "tech", 403),
        ("check-in", "outsider", 403),
        ("no-show", "scheduler", 200),
        ("no-show", "tech", 403),
        ("start-procedure", "scheduler", 403),
        ("start-procedure", "tech", 403),
        ("end-procedure", "tech", 403),
        ("discharge", "scheduler", 403),
    ],
)
def test_who_may_move_a_case(clinic, clients, booking, step, persona, expected):
    with at(8, 30):
        response = post(clients[persona], url(booking, step), {})
    assert response.status_code == expected
    if expected == 403:
        booking.refresh_from_db()
        assert booking.status == "scheduled"
        assert actions(booking) == ["booking.create"]


def test_a_physician_acts_only_on_their_own_cases(clinic, clients):
    f.CredentialFactory(staff=clinic.physicians[1], procedure_code="VP")
    theirs = booking_create(
        request=CaseRequest(
            procedure_type=clinic.vp(),
            patient=clinic.patients[1],
            pins=clinic.resources(physician=clinic.physicians[1], rad_tech=clinic.techs[1]),
        ),
        actor=None,
        starts_at=NINE,
    )
    set_status(theirs, "ready")
    with at(9):
        assert post(clients["physician"], url(theirs, "start-procedure"), {}).status_code == 404
        assert clients["physician"].get(url(theirs, "checklist")).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "ready"


# --- the gate and its override ------------------------------------------------------------


def checked_in_failing(booking: Booking) -> Booking:
    checklist = record_ready(booking)
    checklist.pregnancy_status = "positive"
    checklist.save()
    return set_status(booking, "checked_in", checked_in_at=local(MONDAY, 8, 10))


def test_the_gate_refuses_with_the_outstanding_items(clinic, clients, booking):
    checked_in_failing(booking)
    with at(8, 50):
        response = post(clients["physician"], url(booking, "ready"), {})
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "readiness_not_met"
    assert problem["errors"] == [
        {
            "field": None,
            "code": "pregnancy",
            "message": "Pregnancy screen: Positive screen: fluoroscopy of the spine or pelvis is contraindicated.",
            "extra": {
                "label": "Pregnancy screen",
                "status": "failed",
                "detail": "Positive screen: fluoroscopy of the spine or pelvis is contraindicated.",
            },
        }
    ]
    booking.refresh_from_db()
    assert booking.status == "checked_in"


@pytest.mark.parametrize(("persona", "code"), [("nurse", "override_not_permitted"), ("scheduler", "permission_denied")])
def test_an_override_by_a_nurse_or_scheduler_is_403_and_writes_nothing(clinic, clients, booking, persona, code):
    checked_in_failing(booking)
    with at(8, 50):
        response = post(clients[persona], url(booking, "ready"), {"override_reason": "Doctor said fine"})
    assert response.status_code == 403
    assert response.json()["code"] == code
    booking.refresh_from_db()
    assert booking.status == "checked_in"
    checklist = CaseChecklist.objects.get(booking=booking)
    assert (checklist.override_reason, checklist.override_at) == ("", None)
    assert not AuditEvent.objects.filter(action__in=["booking.readiness_override", "booking.ready"]).exists()


def test_a_physician_override_with_a_reason_is_accepted_and_audited(clinic, clients, users, booking):
    checked_in_failing(booking)
    with at(8, 50):
        blank = post(clients["physician"], url(booking, "ready"), {"override_reason": ""})
        assert blank.status_code == 400
        response = post(clients["physician"], url(booking, "ready"), {"override_reason": "Repeat test negative"})
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    event = AuditEvent.objects.get(action="booking.readiness_override")
    assert (event.actor, event.details) == (users["physician"], {"failing": ["pregnancy"]})
    checklist = clients["physician"].get(url(booking, "checklist")).json()
    assert (checklist["override_reason"], checklist["override_by"], checklist["override_at"]) == (
        "Repeat test negative",
        "physician-user",
        "2027-01-11T08:50:00-06:00",
    )


# --- checklist, labs, imaging -------------------------------------------------------------


def test_checklist_reads_and_writes_are_for_clinical_roles(clinic, clients, booking):
    assert clients["tech"].get(url(booking, "checklist")).status_code == 403
    assert (
        clients["tech"].patch(url(booking, "checklist"), {"allergies_reviewed": True}, format="json").status_code == 403
    )
    fresh = clients["scheduler"].get(url(booking, "checklist"))
    assert fresh.status_code == 200
    assert fresh.json()["passes"] is False
    assert fresh.json()["pregnancy_status"] == "unknown"
    assert not CaseChecklist.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"consent_signed_at": "2027-01-04T13:00:00Z"}, 422, "booking_invalid"),
        ({"consent_signed_at": "2027-01-04T10:00:00"}, 400, "invalid"),
        ({"pregnancy_status": "maybe"}, 400, "invalid"),
    ],
)
def test_bad_checklist_answers_are_refused_and_write_nothing(clinic, clients, booking, body, status, code):
    response = clients["nurse"].patch(url(booking, "checklist"), body, format="json")
    assert response.status_code == status
    assert response.json()["code"] == code
    assert not CaseChecklist.objects.exists()
    assert not AuditEvent.objects.filter(action="checklist.update").exists()


def test_lab_results_are_scoped_to_visible_patients(clinic, clients, booking):
    stranger = clinic.patients[5]
    body = {"patient": stranger.pk, "test": "inr", "value": "1.0", "taken_at": "2027-01-04T10:00:00Z"}
    refused = post(clients["physician"], "/api/v1/lab-results/", body)
    assert refused.status_code == 422
    assert "patient" in field_errors(refused)
    assert not LabResult.objects.exists()
    future = post(clients["nurse"], "/api/v1/lab-results/", {**body, "taken_at": "2027-01-05T10:00:00Z"})
    assert future.status_code == 422
    mine = post(clients["physician"], "/api/v1/lab-results/", {**body, "patient": booking.patient_id})
    assert mine.status_code == 201
    assert mine.json() == {
        "id": LabResult.objects.get().pk,
        "patient": booking.patient_id,
        "test": "inr",
        "value": "1.00",
        "taken_at": "2027-01-04T04:00:00-06:00",
    }
    listed = clients["physician"].get("/api/v1/lab-results/", {"patient": booking.patient_id}).json()
    assert [row["id"] for row in listed["results"]] == [mine.json()["id"]]
    assert AuditEvent.objects.get(action="lab_result.list").details["ids"] == [str(booking.patient_id)]
    assert clients["tech"].get("/api/v1/lab-results/").status_code == 403


def test_imaging_studies_list_and_create(clinic, clients, booking):
    created = post(
        clients["scheduler"],
        "/api/v1/imaging-studies/",
        {"patient": booking.patient_id, "modality": "bone_scan", "performed_on": "2027-01-02"},
    )
    assert created.status_code == 201
    assert ImagingStudy.objects.get().modality == "bone_scan"
    assert clients["nurse"].get("/api/v1/imaging-studies/").json()["count"] == 1
    bad = post(
        clients["scheduler"],
        "/api/v1/imaging-studies/",
        {"patient": booking.patient_id, "modality": "xray", "performed_on": "2027-01-02"},
    )
    assert bad.status_code == 400


# --- alerts -------------------------------------------------------------------------------


def test_alerts_are_listed_until_resolved(clinic, clients, booking):
    alert = Alert.objects.create(site=clinic.site, booking=booking, kind="recovery_clash", message="Booking ran late.")
    Alert.objects.create(
        site=clinic.site, kind="leg_clash", message="Old.", resolved_at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    )
    listed = clients["nurse"].get("/api/v1/alerts/", {"site": clinic.site.pk})
    assert [row["id"] for row in listed.json()["results"]] == [alert.pk]
    assert clients["physician"].get("/api/v1/alerts/").json()["count"] == 1
    assert post(clients["physician"], f"/api/v1/alerts/{alert.pk}/resolve/", {}).status_code == 403
    resolved = post(clients["nurse"], f"/api/v1/alerts/{alert.pk}/resolve/", {})
    assert resolved.status_code == 200
    assert resolved.json()["resolved_at"] == "2027-01-04T06:00:00-06:00"
    again = post(clients["nurse"], f"/api/v1/alerts/{alert.pk}/resolve/", {})
    assert again.status_code == 409
    assert clients["nurse"].get("/api/v1/alerts/").json()["count"] == 0


# --- contract and retries -----------------------------------------------------------------


def test_the_schema_documents_the_conflicts(clinic, clients):
    schema = clients["admin"].get("/api/schema/", {"format": "json"}).json()
    for step in ("check-in", "ready", "start-procedure", "end-procedure", "start-recovery", "discharge", "no-show"):
        responses = schema["paths"][f"/api/v1/bookings/{{id}}/{step}/"]["post"]["responses"]
        assert {"200", "403", "409", "422"} <= set(responses), step
    assert "409" in schema["paths"]["/api/v1/alerts/{id}/resolve/"]["post"]["responses"]


def test_a_retried_check_in_with_the_same_key_is_replayed(clinic, clients, booking):
    with at(8, 10):
        first = post(clients["nurse"], url(booking, "check-in"), {}, **{"Idempotency-Key": "ci-1"})
        second = post(clients["nurse"], url(booking, "check-in"), {}, **{"Idempotency-Key": "ci-1"})
    assert first.status_code == second.status_code == 200
    assert second["Idempotent-Replayed"] == "true"
    assert actions(booking) == ["booking.create", "booking.check_in"]
