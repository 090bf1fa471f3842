"""The case order: levels by name drive the level count and the legs, CPT codes follow from the
procedure and the levels, and the API takes and shows the order."""

import pytest

from core.errors import BookingInvalid
from scheduling.models import Allocation, Booking
from scheduling.order import case_order, cpt_codes, level_count, levels_label, parse_level_names
from tests.api_helpers import client_for, persona_users, post
from tests.conftest import MONDAY, local

NINE = local(MONDAY, 9)


def test_level_names_are_normalised_into_spinal_order():
    assert parse_level_names("l1, t12") == ("T12", "L1")
    assert parse_level_names(["S1", "L5"]) == ("L5", "S1")
    assert parse_level_names("") == ()


def test_unknown_and_repeated_levels_are_refused_together():
    with pytest.raises(BookingInvalid) as caught:
        parse_level_names("T13, L1, l1")
    codes = [p.code for p in caught.value.problems]
    assert codes == ["level_unknown", "level_repeated"]
    assert "T13" in caught.value.problems[0].message


def test_named_levels_decide_the_count_and_a_disagreeing_count_is_refused():
    assert level_count(("T12", "L1"), None) == 2
    assert level_count((), None) == 1
    assert level_count((), 3) == 3
    with pytest.raises(BookingInvalid) as caught:
        level_count(("T12", "L1"), 3)
    assert caught.value.problems[0].code == "levels_mismatch"


@pytest.mark.parametrize(
    ("procedure", "levels", "expected"),
    [
        ("VP", ["T12"], ["22510"]),
        ("VP", ["T12", "L1"], ["22510", "+22512"]),
        ("VP", ["L2", "L3", "L4"], ["22511", "+22512", "+22512"]),
        ("KP", ["T11"], ["22513"]),
        ("KP", ["L1", "L2"], ["22514", "+22515"]),
    ],
)
def test_cpt_codes_follow_procedure_region_and_level_count(procedure, levels, expected):
    assert cpt_codes(procedure, levels, len(levels)) == expected


def test_other_procedures_bill_the_catalogue_codes():
    assert cpt_codes("MBB", [], 2, "64493; +64494") == ["64493", "+64494"]


def test_an_order_checks_icd10_side_and_prior_authorisation():
    with pytest.raises(BookingInvalid) as caught:
        case_order(
            {"indication_code": "fracture", "side": "up", "prior_auth_status": "approved", "prior_auth_number": ""}
        )
    assert {p.field for p in caught.value.problems} == {"indication_code", "side", "prior_auth_number"}
    order = case_order({"indication_code": "m80.08xa", "indication_text": "Osteoporotic fracture", "side": "left"})
    assert order.indication_code == "M80.08XA"
    assert levels_label(("T12", "L1"), 2, "left") == "T12, L1 (left)"
    assert levels_label((), 2) == "2 levels"


@pytest.mark.django_db
def test_the_api_books_from_named_levels_and_shows_the_order(clinic):
    client = client_for(persona_users(clinic)["scheduler"])
    body = {
        "patient": clinic.patients[0].pk,
        "procedure_type": "VP",
        "start": NINE.isoformat(),
        "level_names": ["L1", "T12"],
        "indication_code": "M80.08XA",
        "indication_text": "Age-related osteoporosis with vertebral fracture",
        "referring_provider": "Dr. Ana Ruiz, Spine Associates",
        "external_order_id": "ORD-7781",
        "prior_auth_number": "PA-55120",
        "prior_auth_status": "approved",
        "notes": "Prefers morning.",
    }
    response = post(client, "/api/v1/bookings/", body)
    assert response.status_code == 201, response.json()
    order = response.json()["order"]
    assert order["level_names"] == ["T12", "L1"]
    assert order["cpt_codes"] == ["22510", "+22512"]
    assert order["prior_auth_status"] == "approved"
    booking = Booking.objects.get()
    assert booking.levels == 2
    room = Allocation.objects.get(booking=booking, role="room")
    # Two levels: 60 + 30 minutes in the room, plus turnover.
    assert (room.ends_at - room.starts_at).total_seconds() / 60 == 60 + 30 + 20


@pytest.mark.django_db
def test_the_api_refuses_a_bad_order_with_every_problem_and_books_nothing(clinic):
    client = client_for(persona_users(clinic)["scheduler"])
    body = {
        "patient": clinic.patients[0].pk,
        "procedure_type": "VP",
        "start": NINE.isoformat(),
        "levels": 3,
        "level_names": ["T12", "X9"],
        "indication_code": "nope",
    }
    response = post(client, "/api/v1/bookings/", body)
    assert response.status_code == 422, response.json()
    text = str(response.json())
    assert "X9" in text
    assert "ICD-10" in text
    assert Booking.objects.count() == 0
