"""Patient search forgiving of case and accents, and the duplicate warning at registration, in
the service and through the API."""

import datetime as dt

import pytest

from core.errors import PossibleDuplicate
from patients.models import Patient
from patients.registry import find_patients
from patients.services import patient_register
from patients.text import search_key
from tests.api_helpers import client_for, persona_users, post, problem_extra

pytestmark = pytest.mark.django_db

JOSE = {"mrn": "MRN-9001", "first_name": "José", "last_name": "O'Brien-Núñez", "date_of_birth": dt.date(1941, 3, 9)}


def test_search_key_drops_case_accents_and_punctuation():
    assert search_key("O'Brien-Núñez", "José") == "obrien nunez jose"


def test_find_by_name_words_in_any_case_and_without_accents():
    patient = patient_register(actor=None, data=JOSE)
    Patient.objects.create(mrn="MRN-9002", first_name="Joseph", last_name="Brown", date_of_birth=dt.date(1950, 1, 1))
    everyone = Patient.objects.all()
    assert find_patients(everyone, "jose nunez") == [patient]
    assert find_patients(everyone, "OBRIEN") == [patient]
    assert find_patients(everyone, "nunez 1941-03-09") == [patient]
    assert find_patients(everyone, "03/09/1941") == [patient]
    assert find_patients(everyone, "mrn-9001") == [patient]
    assert find_patients(everyone, "nunez 1941-03-10") == []
    assert find_patients(everyone, "   ") == []


def test_search_sees_only_the_patients_it_is_given():
    patient_register(actor=None, data=JOSE)
    assert find_patients(Patient.objects.none(), "jose") == []


def test_same_name_and_birth_date_warns_with_the_match_until_confirmed():
    first = patient_register(actor=None, data=JOSE)
    twin = {**JOSE, "mrn": "MRN-9003", "first_name": "JOSE", "last_name": "obrien nunez"}
    with pytest.raises(PossibleDuplicate) as caught:
        patient_register(actor=None, data=twin)
    assert caught.value.matches == [first.pk]
    assert not caught.value.same_mrn
    second = patient_register(actor=None, data=twin, duplicate_ok=True)
    assert second.pk != first.pk


def test_same_mrn_is_refused_even_when_confirmed():
    first = patient_register(actor=None, data=JOSE)
    with pytest.raises(PossibleDuplicate) as caught:
        patient_register(actor=None, data={**JOSE, "mrn": "mrn-9001", "last_name": "Other"}, duplicate_ok=True)
    assert caught.value.matches == [first.pk]
    assert caught.value.same_mrn


def test_the_api_warns_of_a_likely_duplicate_with_409_and_the_match(clinic):
    client = client_for(persona_users(clinic)["scheduler"])
    body = {**JOSE, "date_of_birth": "1941-03-09"}
    assert post(client, "/api/v1/patients/", body).status_code == 201
    again = post(client, "/api/v1/patients/", {**body, "mrn": "MRN-9004"})
    assert again.status_code == 409, again.json()
    assert again.json()["code"] == "possible_duplicate"
    assert len(problem_extra(again)["matches"]) == 1
    confirmed = post(client, "/api/v1/patients/", {**body, "mrn": "MRN-9004", "duplicate_ok": True})
    assert confirmed.status_code == 201, confirmed.json()
    assert "duplicate_ok" not in confirmed.json()
