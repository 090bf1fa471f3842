"""The pregnancy screen is asked only where pregnancy is possible: from the patient's sex and
age, or as recorded for them, through the API a scheduler and a nurse use."""

from __future__ import annotations

import datetime as dt

import pytest

from patients.models import Patient
from tests import factories as f
from tests.api_helpers import client_for, field_errors, post
from tests.conftest import MONDAY, local


@pytest.fixture
def scheduler(clinic):
    return client_for(f.UserFactory(groups=["scheduler"]))


@pytest.fixture
def nurse(clinic):
    return client_for(f.UserFactory(groups=["nurse"]))


def register(scheduler, *, born: dt.date, sex: str | None = None, pregnancy_possible: str | None = None) -> int:
    body = {"mrn": f"PS{born:%Y%m%d}{sex or 'x'}{pregnancy_possible or ''}", "first_name": "Pat",
            "last_name": "Screen", "date_of_birth": born.isoformat()}  # fmt: skip
    if sex is not None:
        body["sex"] = sex
    if pregnancy_possible is not None:
        body["pregnancy_possible"] = pregnancy_possible
    response = post(scheduler, "/api/v1/patients/", body)
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def pregnancy_item(scheduler, nurse, clinic, patient_id: int) -> dict:
    booked = post(
        scheduler,
        "/api/v1/bookings/",
        {"patient": patient_id, "procedure_type": "VP", "start": local(MONDAY, 9).isoformat()},
    )
    assert booked.status_code == 201, booked.json()
    checklist = nurse.get(f"/api/v1/bookings/{booked.json()['id']}/checklist/")
    assert checklist.status_code == 200
    (item,) = [i for i in checklist.json()["items"] if i["code"] == "pregnancy"]
    return item


def test_a_77_year_old_man_is_not_asked_for_a_pregnancy_screen(clinic, scheduler, nurse):
    patient = register(scheduler, born=dt.date(1949, 6, 1), sex="male")
    item = pregnancy_item(scheduler, nurse, clinic, patient)
    assert item["status"] == "not_required"


@pytest.mark.parametrize(
    ("born", "sex", "override", "expected"),
    [
        (dt.date(1990, 3, 1), "female", None, "missing"),  # 36: screened
        (dt.date(1949, 3, 1), "female", None, "not_required"),  # 77
        (dt.date(1990, 3, 1), "unknown", None, "missing"),  # sex not recorded: screened
        (dt.date(1990, 3, 1), "other", None, "missing"),
        (dt.date(1990, 3, 1), None, None, "missing"),  # sex left out: unknown
        (dt.date(1990, 3, 1), "female", "no", "not_required"),  # e.g. after hysterectomy
        (dt.date(1949, 3, 1), "male", "yes", "missing"),  # recorded answer wins
    ],
)
def test_who_is_screened(clinic, scheduler, nurse, born, sex, override, expected):
    patient = register(scheduler, born=born, sex=sex, pregnancy_possible=override)
    assert pregnancy_item(scheduler, nurse, clinic, patient)["status"] == expected


def test_age_is_taken_on_the_day_of_the_case(clinic):
    patient = Patient(date_of_birth=dt.date(1971, 1, 12), sex="female")
    # 55 the day before the case, 56 on the day.
    assert patient.may_be_pregnant(dt.date(2027, 1, 11)) is True
    assert patient.may_be_pregnant(dt.date(2027, 1, 12)) is False


def test_sex_and_the_override_are_validated(clinic, scheduler):
    response = post(
        scheduler,
        "/api/v1/patients/",
        {"mrn": "BAD1", "first_name": "A", "last_name": "B", "date_of_birth": "1980-01-01", "sex": "m"},
    )
    assert response.status_code == 400
    assert "sex" in field_errors(response)
    assert not Patient.objects.filter(mrn="BAD1").exists()
