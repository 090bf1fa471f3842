"""Dates are bounded to the clinic's years at every entry (the API and the models, so the admin
too), and a far date that reached the database anyway breaks no read (security review
finding 6)."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from core.dates import add_days, to_local
from core.models import AuditEvent
from patients.models import ImagingStudy, LabResult, MedicationHold, Patient
from procedure_day.models import CaseChecklist
from rooms.models import Downtime
from scheduling.holdrule import hold_first_allowed_day
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from staff.models import Credential, Shift, TimeOff
from tests.api_helpers import client_for, field_errors, persona_users, post
from tests.conftest import MONDAY, local
from tests.factories import drug

pytestmark = pytest.mark.django_db
NINE = local(MONDAY, 9)
FAR = dt.date(9999, 12, 31)
FAR_MOMENT = dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.UTC)
FIRST_MOMENT = dt.datetime(1, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def users(clinic):
    return persona_users(clinic)


@pytest.fixture
def clients(users):
    return {name: client_for(user) for name, user in users.items()}


@pytest.fixture
def booking(clinic):
    return booking_create(
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[0], pins=clinic.resources()),
        actor=None,
        starts_at=NINE,
    )


def year_error(response, field: str) -> str:
    # A well-formed date the clinic does not schedule is a rule no schema states: a 422.
    assert response.status_code == 422, response.json()
    assert response.json()["code"] == "out_of_range"
    [message] = field_errors(response)[field]
    return message


# --- the API --------------------------------------------------------------------------------


@pytest.mark.parametrize("last_dose_on", ["9999-12-31", "1999-12-31", "2201-01-01"])
def test_a_hold_with_a_last_dose_outside_the_clinics_years_is_refused(clinic, clients, last_dose_on):
    body = {"patient": clinic.patients[0].pk, "drug": "warfarin", "last_dose_on": last_dose_on}
    response = post(clients["scheduler"], "/api/v1/medication-holds/", body)
    assert year_error(response, "last_dose_on") == "The year must be between 2000 and 2200."
    assert MedicationHold.objects.count() == 0
    assert not AuditEvent.objects.filter(action="medication_hold.create").exists()


@pytest.mark.parametrize("last_dose_on", ["2000-01-01", "2200-12-31"])
def test_a_hold_at_the_edges_of_the_clinics_years_is_accepted(clinic, clients, last_dose_on):
    body = {"patient": clinic.patients[0].pk, "drug": "warfarin", "last_dose_on": last_dose_on}
    assert post(clients["scheduler"], "/api/v1/medication-holds/", body).status_code == 201
    assert MedicationHold.objects.get().last_dose_on.isoformat() == last_dose_on


def test_moving_a_hold_to_a_far_date_is_refused(clinic, clients):
    hold = MedicationHold.objects.create(
        patient=clinic.patients[0], drug=drug("warfarin"), last_dose_on=dt.date(2027, 1, 3)
    )
    response = clients["nurse"].patch(
        f"/api/v1/medication-holds/{hold.pk}/", {"last_dose_on": "9999-12-31"}, format="json"
    )
    year_error(response, "last_dose_on")
    hold.refresh_from_db()
    assert hold.last_dose_on == dt.date(2027, 1, 3)


PATIENT = {"mrn": "MRN900001", "first_name": "Ida", "last_name": "Lane", "phone": "555-0199"}


@pytest.mark.parametrize("born", ["9999-12-31", "2201-01-01", "1899-12-31", "0001-01-01"])
def test_a_birth_date_outside_1900_to_2200_is_refused(clinic, clients, born):
    response = post(clients["scheduler"], "/api/v1/patients/", {**PATIENT, "date_of_birth": born})
    assert year_error(response, "date_of_birth") == "The year must be between 1900 and 2200."
    assert not Patient.objects.filter(mrn="MRN900001").exists()


@pytest.mark.parametrize("born", ["1900-01-01", "1931-06-30", "2024-02-29"])
def test_birth_dates_of_real_patients_are_accepted(clinic, clients, born):
    response = post(clients["scheduler"], "/api/v1/patients/", {**PATIENT, "date_of_birth": born})
    assert response.status_code == 201
    assert Patient.objects.get(mrn="MRN900001").date_of_birth.isoformat() == born


def test_changing_a_birth_date_to_a_far_one_is_refused(clinic, clients):
    patient = clinic.patients[0]
    response = clients["admin"].patch(f"/api/v1/patients/{patient.pk}/", {"date_of_birth": "9999-12-31"}, format="json")
    year_error(response, "date_of_birth")
    patient.refresh_from_db()
    assert patient.date_of_birth == dt.date(1948, 5, 17)


@pytest.mark.parametrize(
    ("field", "value"), [("expires_on", "9999-12-31"), ("expires_on", "1999-12-31"), ("valid_from", "1899-12-31")]
)
def test_credential_dates_are_bounded(clinic, clients, field, value):
    body = {"staff": clinic.physicians[1].pk, "kind": "license", "valid_from": "1995-07-01", field: value}
    before = Credential.objects.count()
    year_error(post(clients["admin"], "/api/v1/credentials/", body), field)
    assert Credential.objects.count() == before


def test_a_license_issued_before_2000_is_accepted(clinic, clients):
    body = {"staff": clinic.physicians[1].pk, "kind": "license", "valid_from": "1995-07-01", "expires_on": "2030-01-01"}
    assert post(clients["admin"], "/api/v1/credentials/", body).status_code == 201


@pytest.mark.parametrize("field", ["valid_from", "valid_until"])
def test_shift_validity_dates_are_bounded(clinic, clients, field):
    body = {
        "staff": clinic.physicians[1].pk,
        "site": clinic.site.pk,
        "weekday": 5,
        "starts_at": "07:00",
        "ends_at": "12:00",
        field: "9999-12-31",
    }
    before = Shift.objects.count()
    year_error(post(clients["admin"], "/api/v1/shifts/", body), field)
    assert Shift.objects.count() == before


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        (
            "/api/v1/time-off/",
            {"starts_at": "2027-01-11T07:00:00-06:00", "ends_at": "9999-12-31T23:00:00-06:00", "reason": "leave"},
            "ends_at",
        ),
        (
            "/api/v1/downtime/",
            {"starts_at": "2027-01-11T07:00:00-06:00", "ends_at": "9999-12-31T23:00:00-06:00", "reason": "repair"},
            "ends_at",
        ),
    ],
)
def test_time_off_and_downtime_are_bounded(clinic, clients, url, body, field):
    target = {"staff": clinic.physicians[0].pk} if "time-off" in url else {"room": clinic.rooms[0].pk}
    year_error(post(clients["scheduler"], url, {**body, **target}), field)
    assert (TimeOff.objects.count(), Downtime.objects.count()) == (0, 0)


def test_lab_imaging_and_checklist_dates_are_bounded(clinic, clients, booking):
    patient = booking.patient_id
    lab = {"patient": patient, "test": "inr", "value": "1.0", "taken_at": "9999-12-31T10:00:00Z"}
    year_error(post(clients["nurse"], "/api/v1/lab-results/", lab), "taken_at")
    study = {"patient": patient, "modality": "ct", "performed_on": "9999-12-31"}
    year_error(post(clients["nurse"], "/api/v1/imaging-studies/", study), "performed_on")
    checklist = clients["nurse"].patch(
        f"/api/v1/bookings/{booking.pk}/checklist/", {"last_solids_at": "0001-01-01T00:00:00Z"}, format="json"
    )
    year_error(checklist, "last_solids_at")
    assert (LabResult.objects.count(), ImagingStudy.objects.count(), CaseChecklist.objects.count()) == (0, 0, 0)


# --- the models (and so the admin) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda p: MedicationHold(patient=p, drug=drug("warfarin"), last_dose_on=FAR), "last_dose_on"),
        (lambda p: LabResult(patient=p, test="inr", value=1, taken_at=FAR_MOMENT), "taken_at"),
        (lambda p: ImagingStudy(patient=p, modality="ct", performed_on=dt.date(1999, 12, 31)), "performed_on"),
        (
            lambda p: Patient(mrn="MRN900002", first_name="A", last_name="B", date_of_birth=dt.date(1899, 1, 1)),
            "date_of_birth",
        ),
    ],
)
def test_the_models_refuse_dates_outside_their_years(clinic, build, field):
    with pytest.raises(ValidationError) as refused:
        build(clinic.patients[0]).full_clean()
    assert list(refused.value.message_dict) == [field]


# --- far dates already stored ---------------------------------------------------------------


def store_far_records(booking) -> None:
    """Rows as a data migration or a fix in SQL might leave them, bypassing validation."""
    patient = booking.patient
    MedicationHold.objects.bulk_create([MedicationHold(patient=patient, drug=drug("warfarin"), last_dose_on=FAR)])
    LabResult.objects.bulk_create(
        [
            LabResult(patient=patient, test="inr", value=1, taken_at=FIRST_MOMENT),
            LabResult(patient=patient, test="platelets", value=200, taken_at=FAR_MOMENT),
        ]
    )
    ImagingStudy.objects.bulk_create([ImagingStudy(patient=patient, modality="ct", performed_on=FAR)])
    CaseChecklist.objects.bulk_create(
        [CaseChecklist(booking=booking, consent_signed_at=FIRST_MOMENT, last_solids_at=FIRST_MOMENT)]
    )
    CaseChecklist.objects.filter(booking=booking).update(last_clears_at=FAR_MOMENT)
    Patient.objects.filter(pk=patient.pk).update(date_of_birth=FAR)
    TimeOff.objects.bulk_create([TimeOff(staff=booking_physician(booking), starts_at=FIRST_MOMENT, ends_at=FAR_MOMENT)])
    Downtime.objects.bulk_create([Downtime(room=booking_room(booking), starts_at=FIRST_MOMENT, ends_at=FAR_MOMENT)])


def booking_physician(booking):
    return booking.legs.get(role="physician").staff


def booking_room(booking):
    return booking.legs.get(role="room").room


@pytest.mark.parametrize("zone", ["America/Chicago", "Pacific/Kiritimati"])
def test_far_dates_in_the_database_break_no_read(clinic, clients, booking, zone):
    # A zone far west turns year 1 into year 0, one far east turns 9999-12-31 into year 10000.
    clinic.site.timezone = zone
    clinic.site.save()
    store_far_records(booking)
    patient = booking.patient_id

    day = booking.starts_at.astimezone(ZoneInfo(zone)).date().isoformat()
    daily = clients["nurse"].get("/api/v1/daily-list/", {"physician": clinic.physicians[0].pk, "date": day})
    checklist = clients["nurse"].get(f"/api/v1/bookings/{booking.pk}/checklist/")
    search = clients["scheduler"].get(
        "/api/v1/availability/", {"procedure_type": "VP", "from": "2027-01-11", "to": "2027-01-17", "patient": patient}
    )
    why = clients["scheduler"].get(
        "/api/v1/availability/reasons/",
        {
            "procedure_type": "VP",
            "start": NINE.isoformat(),
            "patient": patient,
            "physician": clinic.physicians[0].pk,
            "room": clinic.rooms[0].pk,
        },
    )
    reads = [daily, checklist, search, why, clients["scheduler"].get(f"/api/v1/bookings/{booking.pk}/")]
    assert [r.status_code for r in reads] == [200] * 5

    items = {item["code"]: item for item in checklist.json()["items"]}
    assert items["holds"]["status"] == "failed"
    assert "Warfarin: last dose 9999-12-31" in items["holds"]["detail"]
    assert items["consent"]["status"] == "failed"
    assert items["inr"]["status"] == "missing"
    assert daily.json()["cases"][0]["readiness"]["status"] == "not_ready"
    # The hold never ends, so no case is offered, and the reasons say why.
    assert search.json()["results"] == []
    codes = {reason["code"] for reason in why.json()["reasons"]}
    assert {"anticoagulant_hold", "leg_unavailable"} <= codes


def test_a_hold_with_the_largest_day_count_from_the_last_valid_day_does_not_overflow(clinic, clients, booking):
    MedicationHold.objects.create(
        patient=booking.patient, drug=drug("warfarin"), hold_days=60, last_dose_on=dt.date(2200, 12, 31)
    )
    checklist = clients["nurse"].get(f"/api/v1/bookings/{booking.pk}/checklist/")
    assert checklist.status_code == 200
    holds = next(item for item in checklist.json()["items"] if item["code"] == "holds")
    assert "First date the case may take place: 2201-03-02." in holds["detail"]


def test_date_helpers_clamp_at_the_ends_of_the_calendar():
    assert add_days(dt.date(2027, 1, 4), 3) == dt.date(2027, 1, 7)
    assert add_days(FAR, 1) == dt.date.max
    assert add_days(dt.date(1, 1, 1), -1) == dt.date.min
    assert hold_first_allowed_day(FAR, 5, dt.date(2027, 1, 4)) == dt.date.max
    assert hold_first_allowed_day(None, 5, dt.date(2027, 1, 4)) == dt.date(2027, 1, 10)
    chicago, kiritimati = ZoneInfo("America/Chicago"), ZoneInfo("Pacific/Kiritimati")
    assert to_local(FIRST_MOMENT, chicago) == dt.datetime.min.replace(tzinfo=chicago)
    assert to_local(FAR_MOMENT, kiritimati) == dt.datetime.max.replace(tzinfo=kiritimati)
    assert to_local(dt.datetime(2027, 1, 11, 15, tzinfo=dt.UTC), chicago) == local(MONDAY, 9)
