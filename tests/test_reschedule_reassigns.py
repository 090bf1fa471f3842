"""Moving a case keeps a resource only where the client pins it or it is still free at the new
time; the engine picks the rest, as for a new booking."""

from __future__ import annotations

from tests import factories as f
from tests.api_helpers import client_for, post
from tests.conftest import MONDAY, local


def legs_by_role(body: dict) -> dict[str, str]:
    return {leg["role"]: leg["resource"]["name"] for leg in body["legs"]}


def test_moving_to_a_time_when_its_room_is_taken_picks_another_room(clinic):
    scheduler = client_for(f.UserFactory(groups=["scheduler"]))
    case = post(
        scheduler,
        "/api/v1/bookings/",
        {
            "patient": clinic.patients[0].pk,
            "procedure_type": "VP",
            "start": local(MONDAY, 9).isoformat(),
            "room": clinic.rooms[0].pk,
            "physician": clinic.physicians[0].pk,
            "rad_tech": clinic.techs[0].pk,
            "sedation_staff": clinic.nurses[0].pk,
            "recovery_bay": clinic.bays[0].pk,
        },
    )
    assert case.status_code == 201, case.json()
    assert legs_by_role(case.json())["room"] == "Fluoro 1"
    # Another physician's epidural takes room 1, its C-arm and tech 1 at 13:00.
    other = post(
        scheduler,
        "/api/v1/bookings/",
        {
            "patient": clinic.patients[1].pk,
            "procedure_type": "ESI-IL",
            "start": local(MONDAY, 13).isoformat(),
            "room": clinic.rooms[0].pk,
            "c_arm": clinic.c_arms[0].pk,
            "physician": clinic.physicians[1].pk,
            "rad_tech": clinic.techs[0].pk,
        },
    )
    assert other.status_code == 201, other.json()
    new_start = local(MONDAY, 13).isoformat()
    offered = scheduler.get(
        "/api/v1/availability/",
        {
            "procedure_type": "VP",
            "from": MONDAY.isoformat(),
            "to": MONDAY.isoformat(),
            "earliest": "13:00",
            "latest": "13:00",
            "physician": clinic.physicians[0].pk,
        },
    )
    assert offered.status_code == 200, offered.json()
    assert [slot["start"] for slot in offered.json()["results"]][:1] == [new_start]

    moved = post(scheduler, f"/api/v1/bookings/{case.json()['id']}/reschedule/", {"start": new_start})

    assert moved.status_code == 200, moved.json()
    legs = legs_by_role(moved.json())
    assert legs["room"] == "Fluoro 2"
    assert legs["c_arm"] == "C-arm 2"
    assert legs["rad_tech"] == str(clinic.techs[1])
    # What was still free stays with the case.
    assert legs["physician"] == str(clinic.physicians[0])
    assert legs["sedation_nurse"] == str(clinic.nurses[0])
    assert legs["recovery_bay"] == "Bay 1"
    assert moved.json()["start"] == new_start


def test_a_pinned_resource_that_is_taken_is_still_a_409(clinic):
    scheduler = client_for(f.UserFactory(groups=["scheduler"]))
    first = post(
        scheduler,
        "/api/v1/bookings/",
        {"patient": clinic.patients[0].pk, "procedure_type": "VP", "start": local(MONDAY, 9).isoformat()},
    )
    second = post(
        scheduler,
        "/api/v1/bookings/",
        {
            "patient": clinic.patients[1].pk,
            "procedure_type": "VP",
            "start": local(MONDAY, 13).isoformat(),
            "room": clinic.rooms[0].pk,
        },
    )
    assert first.status_code == 201
    assert second.status_code == 201
    moved = post(
        scheduler,
        f"/api/v1/bookings/{first.json()['id']}/reschedule/",
        {"start": local(MONDAY, 13).isoformat(), "room": clinic.rooms[0].pk},
    )
    assert moved.status_code == 409
    unchanged = scheduler.get(f"/api/v1/bookings/{first.json()['id']}/").json()
    assert unchanged["start"] == local(MONDAY, 9).isoformat()
