"""Keeping another system in step over REST: ``updated_since`` walks bookings and patients in
the order they changed, page by cursor, with no row skipped while rows change under the walk;
the last page says where the next sync starts; reads answer an ETag and 304 to If-None-Match."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from patients.models import Patient
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_cancel, booking_create, booking_reschedule
from tests import factories as f
from tests.api_helpers import client_for, persona_users, post
from tests.conftest import MONDAY, NOW, local

pytestmark = pytest.mark.django_db


def at(minutes: int) -> dt.datetime:
    return NOW + dt.timedelta(minutes=minutes)


def book(clinic, hour, patient, bay=0):
    return booking_create(
        actor=None,
        request=CaseRequest(
            procedure_type=clinic.vp(),
            patient=clinic.patients[patient],
            pins=clinic.resources(recovery_bay=clinic.bays[bay]),
        ),
        starts_at=local(MONDAY, hour),
    )


def walk(client, url: str) -> tuple[list[dict], str | None, int]:
    """Every row of a walk, following `next`; the last page's next_updated_since; page count."""
    rows: list[dict] = []
    pages = 0
    while url:
        answer = client.get(url)
        assert answer.status_code == 200, answer.content
        body = answer.json()
        assert set(body) == {"next", "next_updated_since", "results"}
        rows += body["results"]
        pages += 1
        if body["next"] is None:
            return rows, body["next_updated_since"], pages
        assert body["next_updated_since"] is None
        url = body["next"]
    raise AssertionError("unreachable")


def test_bookings_changed_since_come_in_the_order_they_changed_page_by_cursor(clinic):
    users = persona_users(clinic)
    client = client_for(users["scheduler"])
    cases = []
    for minute, (hour, patient) in enumerate([(8, 0), (10, 1), (13, 2), (15, 3)]):
        with time_machine.travel(at(minute + 1), tick=False):
            cases.append(book(clinic, hour, patient, bay=patient % 3))
    with time_machine.travel(at(10), tick=False):
        booking_cancel(actor=None, booking=cases[0], reason="patient_request")

    query = _query(updated_since=at(2).isoformat(), page_size="2")
    rows, next_since, pages = walk(client, f"/api/v1/bookings/?{query}")

    # Cases 1-3 changed from minute 2 on, then case 0 (cancelled at minute 10); none before.
    assert [r["id"] for r in rows] == [cases[1].pk, cases[2].pk, cases[3].pk, cases[0].pk]
    assert pages == 2
    assert rows[-1]["status"] == "cancelled"
    assert dt.datetime.fromisoformat(rows[-1]["updated_at"]) == at(10)
    # The next sync starts a minute before this walk began (the frozen clock: NOW).
    assert dt.datetime.fromisoformat(next_since) == NOW - dt.timedelta(seconds=60)


def test_a_row_changed_during_the_walk_is_not_skipped_and_comes_again_as_it_now_is(clinic):
    users = persona_users(clinic)
    client = client_for(users["scheduler"])
    cases = []
    for minute, (hour, patient) in enumerate([(8, 0), (10, 1), (13, 2)]):
        with time_machine.travel(at(minute + 1), tick=False):
            cases.append(book(clinic, hour, patient, bay=patient % 3))
    first = client.get("/api/v1/bookings/?" + _query(updated_since=at(0).isoformat(), page_size="2")).json()
    assert [r["id"] for r in first["results"]] == [cases[0].pk, cases[1].pk]
    # While the client holds page one, case 0 moves: it is now the newest change.
    with time_machine.travel(at(20), tick=False):
        booking_reschedule(actor=None, booking=cases[0], starts_at=local(MONDAY, 15), pins=clinic.resources())
    rest, _, _ = walk(client, first["next"])
    assert [r["id"] for r in rest] == [cases[2].pk, cases[0].pk]
    assert rest[1]["start"].startswith("2027-01-11T15:00")


def test_the_next_sync_from_next_updated_since_sees_what_changed_after(clinic):
    users = persona_users(clinic)
    client = client_for(users["scheduler"])
    with time_machine.travel(at(1), tick=False):
        earliest = book(clinic, 8, 0)
    with time_machine.travel(at(4) + dt.timedelta(seconds=30), tick=False):
        early = book(clinic, 10, 2, bay=2)
    with time_machine.travel(at(5), tick=False):
        rows, next_since, _ = walk(client, "/api/v1/bookings/?" + _query(updated_since=at(0).isoformat()))
    assert [r["id"] for r in rows] == [earliest.pk, early.pk]
    assert dt.datetime.fromisoformat(next_since) == at(4)
    with time_machine.travel(at(30), tick=False):
        later = book(clinic, 13, 1, bay=1)
    with time_machine.travel(at(31), tick=False):
        again, _, _ = walk(client, "/api/v1/bookings/?" + _query(updated_since=next_since))
    # The walk began at minute 5; the next starts a minute before, so `early` (4:30) comes again.
    assert [r["id"] for r in again] == [early.pk, later.pk]


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def test_filters_apply_within_a_walk_and_visibility_is_the_callers(clinic):
    users = persona_users(clinic)
    with time_machine.travel(at(1), tick=False):
        mine = book(clinic, 8, 0)
    f.CredentialFactory(staff=clinic.physicians[1], kind="privilege", procedure_code="VP")
    with time_machine.travel(at(2), tick=False):
        other = booking_create(
            actor=None,
            request=CaseRequest(
                procedure_type=clinic.vp(),
                patient=clinic.patients[1],
                pins=clinic.resources(
                    physician=clinic.physicians[1],
                    room=clinic.rooms[1],
                    c_arm=clinic.c_arms[1],
                    rad_tech=clinic.techs[1],
                    recovery_bay=clinic.bays[1],
                ),
            ),
            starts_at=local(MONDAY, 13),
        )
    since = at(0).isoformat()
    scheduler, _, _ = walk(client_for(users["scheduler"]), "/api/v1/bookings/?" + _query(updated_since=since))
    assert [r["id"] for r in scheduler] == [mine.pk, other.pk]
    physician, _, _ = walk(client_for(users["physician"]), "/api/v1/bookings/?" + _query(updated_since=since))
    assert [r["id"] for r in physician] == [mine.pk]
    by_room, _, _ = walk(
        client_for(users["scheduler"]),
        "/api/v1/bookings/?" + _query(updated_since=since, room=str(clinic.rooms[1].pk)),
    )
    assert [r["id"] for r in by_room] == [other.pk]


def test_patients_changed_since_are_walked_the_same_way(clinic):
    users = persona_users(clinic)
    admin = client_for(users["admin"])
    Patient.objects.update(updated_at=at(-60))
    with time_machine.travel(at(3), tick=False):
        answer = admin.patch(f"/api/v1/patients/{clinic.patients[2].pk}/", {"phone": "555-0142"}, format="json")
        assert answer.status_code == 200, answer.content
    with time_machine.travel(at(4), tick=False):
        created = post(
            admin,
            "/api/v1/patients/",
            {"mrn": "SYNC-1", "first_name": "Ada", "last_name": "Sync", "date_of_birth": "1950-02-03"},
        )
        assert created.status_code == 201, created.content
    rows, _, _ = walk(admin, "/api/v1/patients/?" + _query(updated_since=at(0).isoformat(), page_size="1"))
    assert [r["id"] for r in rows] == [clinic.patients[2].pk, created.json()["id"]]
    assert dt.datetime.fromisoformat(rows[0]["updated_at"]) == at(3)
    # A tech sees only the fields their role may, and may still sync by updated_at.
    tech_rows = client_for(users["tech"]).get("/api/v1/patients/?" + _query(updated_since=at(0).isoformat())).json()
    assert all("phone" not in r and "updated_at" in r for r in tech_rows["results"])


@pytest.mark.parametrize(
    ("query", "field", "status"),
    [
        # A form the schema forbids is a 400; a well-formed year, cursor or page it cannot use, a 422.
        ({"updated_since": "2027-01-04T12:00:00"}, "updated_since", 400),
        ({"updated_since": "yesterday"}, "updated_since", 400),
        ({"updated_since": "1900-01-01T00:00:00Z"}, "updated_since", 422),
        ({"cursor": "not-a-cursor"}, "cursor", 422),
        ({"updated_since": "2027-01-04T12:00:00Z", "page": "2"}, "page", 422),
    ],
)
def test_bad_sync_input_is_a_clear_error(clinic, query, field, status):
    users = persona_users(clinic)
    answer = client_for(users["scheduler"]).get("/api/v1/bookings/?" + _query(**query))
    assert answer.status_code == status
    assert answer["Content-Type"].startswith("application/problem+json")
    assert field in answer.content.decode()


def test_a_cursor_is_only_good_on_the_list_and_filters_it_came_from(clinic):
    users = persona_users(clinic)
    client = client_for(users["scheduler"])
    for minute, (hour, patient) in enumerate([(8, 0), (10, 1), (13, 2)]):
        with time_machine.travel(at(minute + 1), tick=False):
            book(clinic, hour, patient, bay=patient % 3)
    body = client.get("/api/v1/bookings/?" + _query(updated_since=at(0).isoformat(), page_size="1")).json()
    cursor = body["next"].split("cursor=")[1]
    # A tampered cursor is refused, not followed somewhere else.
    tampered = client.get(f"/api/v1/bookings/?cursor={cursor[:-2]}xx")
    assert tampered.status_code == 400


def test_an_unescaped_plus_in_the_offset_is_read_as_meant(clinic):
    users = persona_users(clinic)
    with time_machine.travel(at(1), tick=False):
        case = book(clinic, 8, 0)
    # "+00:00" typed into a URL without escaping arrives as " 00:00".
    answer = client_for(users["scheduler"]).get("/api/v1/bookings/?updated_since=2027-01-04T12:00:30+00:00")
    assert answer.status_code == 200, answer.content
    assert [r["id"] for r in answer.json()["results"]] == [case.pk]


def test_without_updated_since_lists_still_page_by_number(clinic):
    users = persona_users(clinic)
    book(clinic, 8, 0)
    body = client_for(users["scheduler"]).get("/api/v1/bookings/").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 1


def test_reads_answer_an_etag_and_304_while_nothing_changed(clinic):
    users = persona_users(clinic)
    client = client_for(users["scheduler"])
    case = book(clinic, 8, 0)
    url = f"/api/v1/bookings/{case.pk}/"
    first = client.get(url)
    tag = first["ETag"]
    assert tag.startswith('"')
    assert len(tag) == 34
    same = client.get(url, headers={"If-None-Match": tag})
    assert same.status_code == 304
    assert same.content == b""
    assert same["ETag"] == tag
    assert same["Cache-Control"] == "no-store"
    listing = client.get("/api/v1/bookings/")
    assert client.get("/api/v1/bookings/", headers={"If-None-Match": listing["ETag"]}).status_code == 304
    with time_machine.travel(at(5), tick=False):
        booking_cancel(actor=None, booking=case, reason="patient_request")
    changed = client.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed["ETag"] != tag
    assert changed.json()["status"] == "cancelled"
    # A stale tag on the list gets the new list too.
    assert client.get("/api/v1/bookings/", headers={"If-None-Match": listing["ETag"]}).status_code == 200


def test_what_a_caller_may_see_is_in_the_tag(clinic):
    users = persona_users(clinic)
    case = book(clinic, 8, 0)
    url = f"/api/v1/patients/{case.patient_id}/"
    scheduler = client_for(users["scheduler"]).get(url)
    tech = client_for(users["tech"]).get(url)
    assert scheduler.status_code == tech.status_code == 200
    assert scheduler["ETag"] != tech["ETag"]
    # The tech's tag does not unlock the scheduler's copy.
    again = client_for(users["scheduler"]).get(url, headers={"If-None-Match": tech["ETag"]})
    assert again.status_code == 200


def test_errors_and_writes_carry_no_etag(clinic):
    users = persona_users(clinic)
    client = client_for(users["scheduler"])
    assert not client.get("/api/v1/bookings/999999/").has_header("ETag")
    created = post(
        client, "/api/v1/patients/", {"mrn": "E-1", "first_name": "E", "last_name": "T", "date_of_birth": "1960-01-01"}
    )
    assert created.status_code == 201
    assert not created.has_header("ETag")
