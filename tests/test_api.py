"""The REST API: authentication, roles, shapes, errors, idempotency and the daily list."""

import datetime as dt
import json
import threading

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.models import AuditEvent, IdempotencyRecord
from patients.models import Patient
from scheduling.models import Allocation, Booking, ProcedureType
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from staff.models import Shift
from tests.api_helpers import client_for, field_errors, persona_users, post
from tests.conftest import MONDAY, build_clinic, local

pytestmark = pytest.mark.django_db
NINE = local(MONDAY, 9)


@pytest.fixture
def users(clinic):
    return persona_users(clinic)


@pytest.fixture
def clients(users):
    return {name: client_for(user) for name, user in users.items()}


def booking_body(clinic, start=NINE, **extra):
    start = start if isinstance(start, str) else start.isoformat()
    body = {"patient": clinic.patients[0].pk, "procedure_type": "VP", "levels": 1, "start": start}
    body.update(extra)
    return body


def test_a_physician_books_only_as_the_case_s_own_physician(clinic, clients):
    other = post(clients["physician"], "/api/v1/bookings/", booking_body(clinic, physician=clinic.physicians[1].pk))
    assert other.status_code == 403, other.json()
    assert Booking.objects.count() == 0
    mine = post(clients["physician"], "/api/v1/bookings/", booking_body(clinic))
    assert mine.status_code == 201, mine.json()
    physician = next(leg for leg in mine.json()["legs"] if leg["role"] == "physician")
    assert physician["resource"]["id"] == clinic.physicians[0].pk


def book(clinic, start=NINE, patient=0, **resources):
    return booking_create(
        request=CaseRequest(
            procedure_type=clinic.vp(), patient=clinic.patients[patient], pins=clinic.resources(**resources)
        ),
        actor=None,
        starts_at=start,
    )


# --- authentication -------------------------------------------------------------------------


def test_token_round_trip(clinic, users):
    users["scheduler"].set_password("correct horse battery")
    users["scheduler"].save()
    anonymous = client_for(None)
    response = post(
        anonymous, "/api/v1/auth/token/", {"username": "scheduler-user", "password": "correct horse battery"}
    )
    assert response.status_code == 200
    token = response.json()["token"]
    anonymous.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert anonymous.get("/api/v1/sites/").status_code == 200
    assert anonymous.delete("/api/v1/auth/token/").status_code == 204
    assert anonymous.get("/api/v1/sites/").status_code == 401


def test_wrong_password_and_missing_token_are_401_problems(clinic, users):
    response = post(client_for(None), "/api/v1/auth/token/", {"username": "scheduler-user", "password": "nope"})
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_credentials"
    unauthenticated = client_for(None).get("/api/v1/bookings/")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["type"] == "/api/problems/not_authenticated"
    bad = client_for(None)
    bad.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert bad.get("/api/v1/bookings/").status_code == 401


def test_token_attempts_are_throttled(clinic, users, settings):
    anonymous = client_for(None)
    # A new name each time, so the per-address limit is what stops them, not the lockout.
    codes = [
        post(anonymous, "/api/v1/auth/token/", {"username": f"x{i}", "password": "y"}).status_code for i in range(12)
    ]
    assert codes[:10] == [401] * 10
    assert codes[10:] == [429, 429]


# --- roles and object rules -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "expected"),
    [("admin", 201), ("scheduler", 201), ("physician", 201), ("nurse", 403), ("tech", 403), ("outsider", 403)],
)
def test_who_may_book(clinic, clients, persona, expected):
    response = post(clients[persona], "/api/v1/bookings/", booking_body(clinic))
    assert response.status_code == expected
    if expected == 403:
        assert Booking.objects.count() == 0
        assert not AuditEvent.objects.filter(action="booking.create").exists()


@pytest.mark.parametrize(
    ("persona", "expected"),
    [("admin", 201), ("scheduler", 403), ("physician", 403), ("nurse", 403), ("tech", 403), ("outsider", 403)],
)
def test_who_may_change_the_inventory(clinic, clients, persona, expected):
    response = post(
        clients[persona],
        "/api/v1/rooms/",
        {"site": clinic.site.pk, "name": "Fluoro 9", "capabilities": ["fluoroscopy"]},
    )
    assert response.status_code == expected
    assert clinic.site.rooms.filter(name="Fluoro 9").exists() is (expected == 201)


@pytest.mark.parametrize(
    ("persona", "expected"),
    [("admin", 201), ("scheduler", 201), ("physician", 403), ("nurse", 403), ("tech", 403), ("outsider", 403)],
)
def test_who_may_register_patients(clinic, clients, persona, expected):
    body = {
        "mrn": "MRN777777",
        "first_name": "Ida",
        "last_name": "Lane",
        "date_of_birth": "1941-02-03",
        "phone": "555-0199",
        "escort_name": "Tom Lane",
        "escort_phone": "555-0198",
    }
    response = post(clients[persona], "/api/v1/patients/", body)
    assert response.status_code == expected
    assert Patient.objects.filter(mrn="MRN777777").exists() is (expected == 201)


def test_procedure_types_are_read_by_all_written_by_admin(clinic, clients):
    for persona in ("admin", "scheduler", "physician", "nurse", "tech"):
        assert clients[persona].get("/api/v1/procedure-types/").status_code == 200
    assert clients["outsider"].get("/api/v1/procedure-types/").status_code == 403
    vp = clinic.vp()
    assert (
        clients["scheduler"]
        .patch(f"/api/v1/procedure-types/{vp.pk}/", {"turnover_minutes": 5}, format="json")
        .status_code
        == 403
    )
    assert (
        clients["admin"].patch(f"/api/v1/procedure-types/{vp.pk}/", {"turnover_minutes": 25}, format="json").status_code
        == 200
    )
    vp.refresh_from_db()
    assert vp.turnover_minutes == 25


def test_physician_sees_only_their_own_cases_and_patients(clinic, clients):
    mine = book(clinic)
    other_physician = clinic.physicians[1]
    from tests import factories as f

    f.CredentialFactory(staff=other_physician, procedure_code="VP")
    theirs = book(
        clinic,
        start=local(MONDAY, 13),
        patient=1,
        physician=other_physician,
        room=clinic.rooms[1],
        c_arm=clinic.c_arms[1],
        rad_tech=clinic.techs[1],
        recovery_bay=clinic.bays[1],
    )
    listed = clients["physician"].get("/api/v1/bookings/").json()["results"]
    assert [b["id"] for b in listed] == [mine.pk]
    assert clients["physician"].get(f"/api/v1/bookings/{theirs.pk}/").status_code == 404
    assert [p["id"] for p in clients["physician"].get("/api/v1/patients/").json()["results"]] == [clinic.patients[0].pk]
    assert clients["scheduler"].get("/api/v1/bookings/").json()["count"] == 2


def test_each_role_sees_the_minimum_patient_data(clinic, clients):
    booking = book(clinic)
    seen = {
        p: set(clients[p].get(f"/api/v1/bookings/{booking.pk}/").json()["patient"])
        for p in ("scheduler", "nurse", "physician", "tech")
    }
    assert {"phone", "escort_phone", "date_of_birth"} <= seen["scheduler"]
    assert "phone" in seen["nurse"]
    assert "phone" not in seen["physician"]
    assert "escort_name" in seen["physician"]
    assert seen["tech"] == {"id", "mrn", "first_name", "last_name", "date_of_birth", "allergies"}


def test_reads_of_patient_data_are_audited(clinic, clients, users):
    booking = book(clinic)
    clients["nurse"].get(f"/api/v1/bookings/{booking.pk}/")
    clients["scheduler"].get("/api/v1/patients/")
    read = AuditEvent.objects.get(action="booking.read")
    assert (read.actor, read.details["ids"]) == (users["nurse"], [str(clinic.patients[0].pk)])
    listed = AuditEvent.objects.get(action="patient.list")
    assert listed.actor == users["scheduler"]
    assert len(listed.details["ids"]) == 20
    assert "Example" not in json.dumps(listed.details)


# --- availability and bookings --------------------------------------------------------------


def test_availability_shape(clinic, clients):
    response = clients["scheduler"].get(
        "/api/v1/availability/",
        {"procedure_type": "VP", "levels": 1, "from": "2027-01-11", "to": "2027-01-17", "limit": 2},
    )
    assert response.status_code == 200
    [first, second] = response.json()["results"]
    assert first["start"] == "2027-01-11T08:00:00-06:00"
    assert second["start"] == "2027-01-11T08:05:00-06:00"
    room = next(leg for leg in first["legs"] if leg["role"] == "room")
    assert room == {
        "role": "room",
        "resource": {"kind": "room", "id": clinic.rooms[0].pk, "name": "Fluoro 1"},
        "start": "2027-01-11T08:00:00-06:00",
        "end": "2027-01-11T09:20:00-06:00",
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2027-01-11", "to": "2027-04-30"}, "to"),
        ({"from": "2027-01-11", "to": "2027-01-10"}, "to"),
        ({"from": "2027-13-01", "to": "2027-01-10"}, "from"),
        ({"from": "2027-01-11", "to": "2027-01-12", "procedure_type": "X X"}, "procedure_type"),
        ({"from": "2027-01-11", "to": "2027-01-12", "physician": 0}, "physician"),
        ({"from": "2027-01-11", "to": "2027-01-12", "limit": 0}, "limit"),
    ],
)
def test_bad_availability_queries_are_400(clinic, clients, params, field):
    query = {"procedure_type": "VP", **params}
    response = clients["scheduler"].get("/api/v1/availability/", query)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert field in field_errors(response)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"procedure_type": "XX"}, "procedure_type"),
        ({"physician": 999999}, "physician"),
    ],
)
def test_a_well_formed_query_naming_what_does_not_exist_is_422(clinic, clients, params, field):
    query = {"procedure_type": "VP", "from": "2027-01-11", "to": "2027-01-12", **params}
    response = clients["scheduler"].get("/api/v1/availability/", query)
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_reference"
    assert field in field_errors(response)


def test_reasons_endpoint(clinic, clients):
    book(clinic)
    response = clients["scheduler"].get(
        "/api/v1/availability/reasons/",
        {"procedure_type": "VP", "start": local(MONDAY, 9, 30).isoformat(), "room": clinic.rooms[0].pk},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["feasible"] is False
    assert "Fluoro 1 is booked 09:00–10:20 (procedure room needed 09:30–10:50)." in [
        r["message"] for r in body["reasons"]
    ]


def test_booking_created_with_site_local_times_and_legs(clinic, clients):
    response = post(clients["scheduler"], "/api/v1/bookings/", booking_body(clinic))
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "scheduled"
    assert body["start"] == "2027-01-11T09:00:00-06:00"
    assert body["arrival"] == "2027-01-11T08:00:00-06:00"
    assert {leg["role"] for leg in body["legs"]} == {
        "patient",
        "room",
        "c_arm",
        "physician",
        "rad_tech",
        "sedation_nurse",
        "recovery_bay",
    }
    assert Booking.objects.get(pk=body["id"]).created_by.username == "scheduler-user"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"start": "2027-01-11T09:00:00"}, "invalid"),
        ({"start": "tomorrow"}, "invalid"),
        ({"patient": 0}, "invalid"),
        ({"procedure_type": "NO PE"}, "invalid"),
        ({"room": -3}, "invalid"),
        ({"levels": "two"}, "invalid"),
        ({"patient": 999999}, "unknown_reference"),
        ({"procedure_type": "NOPE"}, "unknown_reference"),
        ({"room": 999999}, "unknown_reference"),
    ],
)
def test_bad_booking_input_is_an_error_and_writes_nothing(clinic, clients, change, code):
    response = post(clients["scheduler"], "/api/v1/bookings/", booking_body(clinic, **change))
    assert response.status_code == (422 if code == "unknown_reference" else 400)
    assert response.json()["code"] == code
    assert Booking.objects.count() == 0


def test_malformed_json_is_400(clinic, clients):
    response = clients["scheduler"].post("/api/v1/bookings/", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed"


def test_rule_violation_is_422_with_every_problem(clinic, clients):
    response = post(clients["scheduler"], "/api/v1/bookings/", booking_body(clinic, levels=4))
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "levels_out_of_range"
    assert Booking.objects.count() == 0


def test_conflict_is_409_with_the_clash_and_three_alternatives_that_book(clinic, clients):
    first = book(clinic)
    body = booking_body(
        clinic, start=local(MONDAY, 9, 30).isoformat(), patient=clinic.patients[1].pk, room=clinic.rooms[0].pk
    )
    response = post(clients["scheduler"], "/api/v1/bookings/", body)
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "slot_unavailable"
    room_clash = next(c for c in problem["conflicts"] if c["role"] == "room")
    assert room_clash["clashing"]["booking"] == first.pk
    assert room_clash["resource"]["name"] == "Fluoro 1"
    assert len(problem["alternatives"]) == 3
    for alternative in problem["alternatives"]:
        assert alternative["start"] >= "2027-01-11T09:30:00-06:00"
        # Each alternative books on its own (rolled back before trying the next).
        with transaction.atomic():
            booked = post(clients["scheduler"], "/api/v1/bookings/", {**body, "start": alternative["start"]})
            assert booked.status_code == 201, booked.json()
            assert booked.json()["start"] == alternative["start"]
            transaction.set_rollback(True)
    assert Booking.objects.count() == 1


def test_the_first_alternative_books(clinic, clients):
    book(clinic)
    response = post(
        clients["scheduler"],
        "/api/v1/bookings/",
        booking_body(clinic, start=local(MONDAY, 9, 30).isoformat(), patient=clinic.patients[1].pk),
    )
    alternative = response.json()["alternatives"][0]
    booked = post(
        clients["scheduler"],
        "/api/v1/bookings/",
        booking_body(clinic, start=alternative["start"], patient=clinic.patients[1].pk),
    )
    assert booked.status_code == 201
    assert booked.json()["start"] == alternative["start"]


def test_reschedule_and_cancel_actions(clinic, clients):
    booking = book(clinic)
    moved = post(
        clients["scheduler"], f"/api/v1/bookings/{booking.pk}/reschedule/", {"start": local(MONDAY, 13).isoformat()}
    )
    assert moved.status_code == 200
    assert moved.json()["start"] == "2027-01-11T13:00:00-06:00"
    missing_reason = post(clients["scheduler"], f"/api/v1/bookings/{booking.pk}/cancel/", {})
    assert missing_reason.status_code == 400
    cancelled = post(clients["scheduler"], f"/api/v1/bookings/{booking.pk}/cancel/", {"reason": "no_driver"})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = post(clients["scheduler"], f"/api/v1/bookings/{booking.pk}/cancel/", {"reason": "no_driver"})
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"
    assert post(clients["nurse"], f"/api/v1/bookings/{booking.pk}/cancel/", {"reason": "other"}).status_code == 403


def test_booking_list_filters(clinic, clients):
    first = book(clinic)
    book(
        clinic,
        start=local(MONDAY, 13),
        patient=1,
        room=clinic.rooms[1],
        c_arm=clinic.c_arms[1],
        rad_tech=clinic.techs[1],
        recovery_bay=clinic.bays[1],
    )
    by_room = clients["scheduler"].get("/api/v1/bookings/", {"room": clinic.rooms[0].pk}).json()
    assert [b["id"] for b in by_room["results"]] == [first.pk]
    by_patient = clients["scheduler"].get("/api/v1/bookings/", {"patient": clinic.patients[1].pk}).json()
    assert by_patient["count"] == 1
    assert clients["scheduler"].get("/api/v1/bookings/", {"status": "cancelled"}).json()["count"] == 0
    assert clients["scheduler"].get("/api/v1/bookings/", {"date_from": "2027-01-12"}).json()["count"] == 0


# --- idempotency ----------------------------------------------------------------------------


def test_a_repeated_key_replays_the_same_answer_and_books_once(clinic, clients):
    body = booking_body(clinic)
    first = post(clients["scheduler"], "/api/v1/bookings/", body, **{"Idempotency-Key": "abc-1"})
    second = post(clients["scheduler"], "/api/v1/bookings/", body, **{"Idempotency-Key": "abc-1"})
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert Booking.objects.count() == 1


def test_a_reused_key_with_another_body_is_422(clinic, clients):
    post(clients["scheduler"], "/api/v1/bookings/", booking_body(clinic), **{"Idempotency-Key": "abc-2"})
    other = post(
        clients["scheduler"], "/api/v1/bookings/", booking_body(clinic, levels=2), **{"Idempotency-Key": "abc-2"}
    )
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert Booking.objects.count() == 1


def test_a_conflict_is_replayed_too(clinic, clients):
    book(clinic)
    body = booking_body(clinic, patient=clinic.patients[1].pk)
    first = post(clients["scheduler"], "/api/v1/bookings/", body, **{"Idempotency-Key": "k-409"})
    second = post(clients["scheduler"], "/api/v1/bookings/", body, **{"Idempotency-Key": "k-409"})
    assert first.status_code == second.status_code == 409
    assert second.content == first.content


def test_cancel_with_a_key_is_idempotent(clinic, clients):
    booking = book(clinic)
    url = f"/api/v1/bookings/{booking.pk}/cancel/"
    first = post(clients["scheduler"], url, {"reason": "no_driver"}, **{"Idempotency-Key": "c-1"})
    second = post(clients["scheduler"], url, {"reason": "no_driver"}, **{"Idempotency-Key": "c-1"})
    assert first.status_code == second.status_code == 200
    assert AuditEvent.objects.filter(action="booking.cancel").count() == 1


@pytest.mark.django_db(transaction=True)
def test_sixteen_concurrent_requests_with_one_key_make_one_booking(frozen_now):
    clinic = build_clinic()
    users = persona_users(clinic)
    body = booking_body(clinic)
    barrier = threading.Barrier(16)
    results: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def attempt():
        try:
            client = client_for(users["scheduler"])
            barrier.wait(timeout=30)
            response = post(client, "/api/v1/bookings/", body, **{"Idempotency-Key": "same-key"})
            with lock:
                results.append((response.status_code, response.content))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 16
    assert {code for code, _ in results} == {201}
    assert len({content for _, content in results}) == 1
    assert Booking.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1
    assert Allocation.objects.filter(is_active=True).count() == 7


# --- daily list -----------------------------------------------------------------------------


def test_daily_list_is_in_order_with_local_times(clinic, clients):
    book(clinic, start=local(MONDAY, 13), patient=1, recovery_bay=clinic.bays[1])
    book(clinic)
    response = clients["physician"].get(
        "/api/v1/daily-list/", {"physician": clinic.physicians[0].pk, "date": "2027-01-11"}
    )
    assert response.status_code == 200
    cases = response.json()["cases"]
    assert [c["start"] for c in cases] == ["2027-01-11T09:00:00-06:00", "2027-01-11T13:00:00-06:00"]
    assert cases[0]["room"] == "Fluoro 1"
    assert cases[0]["c_arm"] == "C-arm 1"
    assert cases[0]["sedation"] == "moderate"
    assert cases[0]["escort"] == {"name": "Escort Example", "phone": "555-0101"}
    assert cases[0]["readiness"]["status"] == "not_ready"
    # A week ahead, consent is due on the day, not missing.
    assert "consent" not in cases[0]["readiness"]["outstanding"]
    assert "consent" in cases[0]["readiness"]["due_on_day"]
    assert AuditEvent.objects.filter(action="daily_list.read").count() == 1


def test_physicians_read_only_their_own_daily_list(clinic, clients):
    other = clients["physician"].get(
        "/api/v1/daily-list/", {"physician": clinic.physicians[1].pk, "date": "2027-01-11"}
    )
    assert other.status_code == 403
    assert (
        clients["outsider"]
        .get("/api/v1/daily-list/", {"physician": clinic.physicians[1].pk, "date": "2027-01-11"})
        .status_code
        == 403
    )


def test_daily_list_query_count_does_not_grow_with_cases(clinic, clients):
    def count_queries():
        with CaptureQueriesContext(connection) as ctx:
            response = clients["nurse"].get(
                "/api/v1/daily-list/", {"physician": clinic.physicians[0].pk, "date": "2027-01-11"}
            )
        assert response.status_code == 200
        return len(ctx.captured_queries), len(response.json()["cases"])

    book(clinic, start=local(MONDAY, 8))
    # The first request of a token records its use (once a minute); measure the steady state.
    count_queries()
    one = count_queries()
    # Forty short cases for the same physician that day, in rotating rooms, C-arms and bays.
    from tests import factories as f

    f.CredentialFactory(staff=clinic.physicians[0], procedure_code="ESI-IL")
    clinic.site.opening_hours.update(opens_at=dt.time(0), closes_at=dt.time(23, 59))
    Shift.objects.update(starts_at=dt.time(0), ends_at=dt.time(23, 59))
    rooms = [f.RoomFactory(site=clinic.site, name=f"Extra {i}") for i in range(4)]
    arms = [f.EquipmentFactory(site=clinic.site, name=f"Arm {i}", room=None) for i in range(4)]
    bays = [f.BayFactory(site=clinic.site, name=f"Extra bay {i}") for i in range(4)]
    esi = ProcedureType.objects.get(code="ESI-IL")
    for i in range(39):
        booking_create(
            request=CaseRequest(
                procedure_type=esi,
                patient=f.PatientFactory(),
                pins=clinic.resources(
                    room=rooms[i % 4],
                    c_arm=arms[i % 4],
                    rad_tech=clinic.techs[i % 2],
                    sedation_staff=None,
                    recovery_bay=bays[i % 4],
                ),
            ),
            actor=None,
            starts_at=local(MONDAY, 10) + dt.timedelta(minutes=20 * i),
        )
    many = count_queries()
    assert (one[1], many[1]) == (1, 40)
    assert many[0] == one[0]


ENDPOINT_READS = [
    "/api/v1/sites/",
    "/api/v1/rooms/",
    "/api/v1/equipment/",
    "/api/v1/recovery-bays/",
    "/api/v1/downtime/",
    "/api/v1/staff/",
    "/api/v1/credentials/",
    "/api/v1/shifts/",
    "/api/v1/time-off/",
    "/api/v1/opening-hours/",
    "/api/v1/procedure-types/",
    "/api/v1/bookings/",
    "/api/v1/patients/",
]


@pytest.mark.parametrize("persona", ["admin", "scheduler", "physician", "nurse", "tech", "outsider"])
def test_read_matrix(clinic, clients, persona):
    codes = {url: clients[persona].get(url).status_code for url in ENDPOINT_READS}
    expected = 403 if persona == "outsider" else 200
    assert set(codes.values()) == {expected}, codes
    availability = (
        clients[persona]
        .get("/api/v1/availability/", {"procedure_type": "VP", "from": "2027-01-11", "to": "2027-01-11"})
        .status_code
    )
    assert availability == (200 if persona in ("admin", "scheduler", "physician") else 403)
    holds = clients[persona].get("/api/v1/medication-holds/").status_code
    assert holds == (200 if persona in ("admin", "scheduler", "physician", "nurse") else 403)


@pytest.mark.parametrize(
    ("persona", "expected"),
    [("admin", 201), ("scheduler", 201), ("physician", 403), ("nurse", 403), ("tech", 403), ("outsider", 403)],
)
def test_who_may_record_downtime(clinic, clients, persona, expected):
    body = {
        "equipment": clinic.c_arms[0].pk,
        "starts_at": local(MONDAY, 7).isoformat(),
        "ends_at": local(MONDAY, 9).isoformat(),
        "reason": "qa",
    }
    response = post(clients[persona], "/api/v1/downtime/", body)
    assert response.status_code == expected
    from rooms.models import Downtime

    assert Downtime.objects.count() == (1 if expected == 201 else 0)
    if expected == 201:
        assert AuditEvent.objects.filter(action="downtime.create").count() == 1


def test_tech_sees_only_cases_they_work_on(clinic, clients):
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
    listed = clients["tech"].get("/api/v1/bookings/").json()["results"]
    assert [b["id"] for b in listed] == [mine.pk]
    assert [p["id"] for p in clients["tech"].get("/api/v1/patients/").json()["results"]] == [clinic.patients[0].pk]


def test_deleting_a_room_in_use_is_a_409_and_keeps_it(clinic, clients):
    book(clinic)
    response = clients["admin"].delete(f"/api/v1/rooms/{clinic.rooms[0].pk}/")
    assert response.status_code == 409
    assert response.json()["code"] == "in_use"
    assert clinic.site.rooms.filter(pk=clinic.rooms[0].pk).exists()


def test_invalid_reference_data_is_refused_with_field_errors(clinic, clients):
    response = post(clients["admin"], "/api/v1/sites/", {"name": "North", "code": "north", "timezone": "Mars/Olympus"})
    assert response.status_code == 422
    assert "timezone" in field_errors(response)
    malformed = post(clients["admin"], "/api/v1/sites/", {"name": "North", "code": "north", "timezone": "not a zone"})
    assert malformed.status_code == 400
    response = post(
        clients["admin"],
        "/api/v1/opening-hours/",
        {"site": clinic.site.pk, "weekday": 0, "opens_at": "18:00", "closes_at": "07:00"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "rule_violated"


def test_browser_logins_are_throttled(clinic, client):
    # A new name each time, so the per-address limit is what stops them, not the lockout.
    codes = [client.post("/admin/login/", {"username": f"x{i}", "password": "y"}).status_code for i in range(12)]
    assert codes[:10] == [200] * 10  # the form comes back with an error
    assert codes[10:] == [429, 429]


def test_admin_reads_of_patients_are_audited(clinic, client):
    from tests import factories as f

    admin_user = f.UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    assert client.get("/admin/patients/patient/").status_code == 200
    patient = clinic.patients[0]
    assert client.get(f"/admin/patients/patient/{patient.pk}/change/").status_code == 200
    listed = AuditEvent.objects.get(action="patient.admin_list")
    assert listed.actor == admin_user
    assert str(patient.pk) in listed.details["ids"]
    opened = AuditEvent.objects.get(action="patient.admin_read")
    assert opened.details["ids"] == [str(patient.pk)]
    booking = book(clinic)
    assert client.get(f"/admin/scheduling/booking/{booking.pk}/change/").status_code == 200
    assert AuditEvent.objects.get(action="booking.admin_read").details["ids"] == [str(patient.pk)]
    assert client.get("/admin/outbox/notification/").status_code == 200
    assert client.get("/admin/outbox/alert/").status_code == 200
