"""One convention across the REST API, as a client reads it: one error shape whose ``type``
resolves to a page, 405 with ``Allow`` for a method an operation lacks, 400 for a backwards
range, ``Location`` on every 201, instants with the site's offset and dates on the site's
calendar, deprecation headers, and a schema that describes each operation for itself."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import Counter

import pytest
import time_machine
from django.test import Client

from api import middleware
from api.problems import BY_CODE
from core import errors as domain_errors
from scheduling.models import Booking
from tests.api_helpers import client_for, persona_users, post
from tests.conftest import MONDAY, local
from tests.test_api import book, booking_body

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def users(clinic):
    return persona_users(clinic)


@pytest.fixture
def clients(users):
    return {name: client_for(user) for name, user in users.items()}


@pytest.fixture
def schema(clients):
    return clients["admin"].get("/api/schema/", {"format": "json"}).json()


def assert_one_error_shape(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail", "code", "errors"} <= set(body)
    assert body["status"] == status
    assert isinstance(body["errors"], list)
    assert body["errors"]
    for item in body["errors"]:
        assert {"field", "code", "message"} <= set(item), item
        assert item["field"] is None or isinstance(item["field"], str)
        assert isinstance(item["code"], str)
        assert item["code"]
        assert isinstance(item["message"], str)
        assert item["message"]
    # The type is a page a person can read, describing this code.
    page = Client().get(body["type"])
    assert page.status_code == 200, body["type"]
    assert page["Content-Type"].startswith("text/html")
    assert (
        f"<code>{body['code'] if body['code'] in BY_CODE else page_code(body['type'])}</code>" in page.content.decode()
    )
    return body


def page_code(type_uri: str) -> str:
    return type_uri.rstrip("/").rsplit("/", 1)[-1]


# --- one error shape, and its type resolves ---------------------------------------------------


def test_every_kind_of_error_answers_one_shape_whose_type_is_a_page(clinic, clients):
    admin, scheduler = clients["admin"], clients["scheduler"]
    booked = book(clinic)

    missing = assert_one_error_shape(post(scheduler, "/api/v1/bookings/", {"levels": "two"}), 400)
    assert {"patient", "procedure_type", "start", "levels"} <= {item["field"] for item in missing["errors"]}
    nested = post(
        scheduler, "/api/v1/plans/", {"site": clinic.site.pk, "date": "2027-01-11", "waiting_list": [{"patient": 0}]}
    )
    assert "waiting_list.0.patient" in {item["field"] for item in assert_one_error_shape(nested, 400)["errors"]}
    malformed = scheduler.post("/api/v1/bookings/", "{not json", content_type="application/json")
    assert assert_one_error_shape(malformed, 400)["code"] == "malformed"

    assert_one_error_shape(client_for(None).get("/api/v1/bookings/"), 401)
    assert_one_error_shape(clients["tech"].post("/api/v1/sites/", {}, format="json"), 403)
    assert_one_error_shape(scheduler.get("/api/v1/bookings/999999/"), 404)
    assert_one_error_shape(scheduler.get("/api/v1/no-such-thing/"), 404)
    assert_one_error_shape(scheduler.patch(f"/api/v1/bookings/{booked.pk}/", {}, format="json"), 405)

    clash = assert_one_error_shape(post(scheduler, "/api/v1/bookings/", booking_body(clinic)), 409)
    assert clash["code"] == "slot_unavailable"
    assert clash["conflicts"]
    taken = post(admin, "/api/v1/drugs/", {"code": "warfarin", "name": "Warfarin again", "drug_class": "vka"})
    assert assert_one_error_shape(taken, 409)["code"] == "not_unique"
    again = post(scheduler, f"/api/v1/bookings/{booked.pk}/cancel/", {"reason": "patient_request"})
    assert again.status_code == 200
    cancelled = assert_one_error_shape(
        post(scheduler, f"/api/v1/bookings/{booked.pk}/cancel/", {"reason": "patient_request"}), 409
    )
    assert cancelled["errors"][0]["extra"]["status"] == "cancelled"

    unknown = assert_one_error_shape(post(scheduler, "/api/v1/bookings/", booking_body(clinic, patient=999999)), 422)
    assert unknown["code"] == "unknown_reference"
    assert [(item["field"], item["code"]) for item in unknown["errors"]] == [("patient", "does_not_exist")]
    too_many = assert_one_error_shape(post(scheduler, "/api/v1/bookings/", booking_body(clinic, levels=9)), 422)
    assert too_many["code"] == "booking_invalid"
    assert "levels_out_of_range" in {item["code"] for item in too_many["errors"]}


def test_every_domain_error_and_status_has_a_page():
    codes = {cls.code for cls in all_subclasses(domain_errors.SchedulingError)} | {"plan_stale"}
    assert codes <= set(BY_CODE), codes - set(BY_CODE)
    index = Client().get("/api/problems/")
    assert index.status_code == 200
    for code in BY_CODE:
        assert f'href="/api/problems/{code}"' in index.content.decode()
        assert Client().get(f"/api/problems/{code}").status_code == 200
    assert Client().get("/api/problems/no_such_problem").status_code == 404


def all_subclasses(cls):
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= all_subclasses(sub)
    return found | {cls}


# --- 405 with Allow ---------------------------------------------------------------------------


def test_a_method_an_operation_lacks_is_405_with_allow_everywhere(clinic, clients, schema):
    admin = clients["admin"]
    booked = book(clinic)
    for path, item in schema["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        documented = {m for m in METHODS if m in item}
        some_id = str(uuid.uuid4()) if path.startswith("/api/v1/plans/") else str(booked.pk)
        url = re.sub(r"\{[^}]+\}", some_id, path)
        for method in set(METHODS) - documented:
            response = getattr(admin, method)(url, {}, format="json")
            assert response.status_code == 405, (method, path, response.status_code)
            allowed = {m.strip().lower() for m in response["Allow"].split(",")}
            assert documented <= allowed, (method, path, response["Allow"])
            assert response.json()["code"] == "method_not_allowed"


def test_put_and_patch_on_a_booking_are_405_not_403(clinic, clients):
    booked = book(clinic)
    for persona in ("scheduler", "physician", "admin"):
        for verb in ("put", "patch"):
            response = getattr(clients[persona], verb)(f"/api/v1/bookings/{booked.pk}/", {}, format="json")
            assert response.status_code == 405
            assert "GET" in response["Allow"]


# --- backwards ranges -------------------------------------------------------------------------


def test_a_backwards_range_is_a_400_naming_its_end(clinic, clients):
    book(clinic)
    backwards = clients["scheduler"].get("/api/v1/bookings/", {"date_from": "2027-01-12", "date_to": "2027-01-11"})
    body = assert_one_error_shape(backwards, 400)
    assert [(item["field"], item["code"]) for item in body["errors"]] == [("date_to", "inverted_range")]
    search = clients["scheduler"].get(
        "/api/v1/availability/", {"procedure_type": "VP", "from": "2027-01-12", "to": "2027-01-11"}
    )
    assert assert_one_error_shape(search, 400)["errors"][0]["field"] == "to"
    one_day = clients["scheduler"].get("/api/v1/bookings/", {"date_from": "2027-01-11", "date_to": "2027-01-11"})
    assert one_day.status_code == 200
    assert one_day.json()["count"] == 1


# --- Location on every 201 --------------------------------------------------------------------


def test_every_201_in_the_schema_declares_location(schema):
    created = [
        (method, path)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS and "201" in operation["responses"]
    ]
    assert len(created) >= 15
    for method, path in created:
        headers = schema["paths"][path][method]["responses"]["201"].get("headers", {})
        assert "Location" in headers, (method, path)


def test_every_create_answers_location_to_a_read_of_what_it_made(clinic, clients, users):
    admin, scheduler, nurse = clients["admin"], clients["scheduler"], clients["nurse"]
    booked = book(clinic, patient=1)
    creates = [
        (admin, "/api/v1/sites/", {"name": "North", "code": "north", "timezone": "America/Chicago"}),
        (admin, "/api/v1/rooms/", {"site": clinic.site.pk, "name": "Fluoro 9"}),
        (admin, "/api/v1/recovery-bays/", {"site": clinic.site.pk, "name": "Bay 99"}),
        (admin, "/api/v1/drugs/", {"code": "newdrug", "name": "New drug", "drug_class": "vka"}),
        (
            scheduler,
            "/api/v1/patients/",
            {"mrn": "LOC1", "first_name": "A", "last_name": "B", "date_of_birth": "1950-01-01"},
        ),
        (scheduler, "/api/v1/bookings/", booking_body(clinic, start=local(MONDAY, 13))),
        (scheduler, "/api/v1/medication-holds/", {"patient": booked.patient_id, "drug": "warfarin"}),
        (
            nurse,
            "/api/v1/lab-results/",
            {"patient": booked.patient_id, "test": "inr", "value": "1.0", "taken_at": "2027-01-04T10:00:00Z"},
        ),
        (
            nurse,
            "/api/v1/imaging-studies/",
            {"patient": booked.patient_id, "modality": "ct", "performed_on": "2027-01-02"},
        ),
        (admin, "/api/v1/service-accounts/", {"name": "EHR", "scopes": ["book"]}),
    ]
    for client, url, body in creates:
        response = post(client, url, body)
        assert response.status_code == 201, (url, response.content)
        location = response["Location"]
        read = client.get(location)
        assert read.status_code == 200, (url, location)
        if "id" in response.json():
            assert read.json()["id"] == response.json()["id"]
    account = response.json()["account"]
    key = post(admin, f"/api/v1/service-accounts/{account}/keys/", {"scopes": ["schedule:read"]})
    assert key.status_code == 201
    assert admin.get(key["Location"]).json()["id"] == key.json()["key_id"]


def test_a_replayed_create_names_the_same_location(clinic, clients):
    first = post(clients["scheduler"], "/api/v1/bookings/", booking_body(clinic), **{"Idempotency-Key": "k-1"})
    again = post(clients["scheduler"], "/api/v1/bookings/", booking_body(clinic), **{"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert first["Location"] == again["Location"] == f"/api/v1/bookings/{first.json()['id']}/"


# --- instants with the site's offset, dates on the site's calendar ----------------------------

CHICAGO_OFFSET = "-06:00"


def offset_of(text: str) -> str:
    return dt.datetime.fromisoformat(text).isoformat()[-6:]


def test_every_instant_carries_the_sites_offset(clinic, clients, users):
    admin, scheduler, nurse = clients["admin"], clients["scheduler"], clients["nurse"]
    booked = book(clinic)
    downtime = post(
        scheduler,
        "/api/v1/downtime/",
        {
            "equipment": clinic.c_arms[1].pk,
            "starts_at": "2027-01-12T13:00:00Z",
            "ends_at": "2027-01-12T15:00:00Z",
            "reason": "qa",
        },
    ).json()
    assert downtime["starts_at"] == "2027-01-12T07:00:00-06:00"
    assert offset_of(downtime["ends_at"]) == CHICAGO_OFFSET
    off = post(
        scheduler,
        "/api/v1/time-off/",
        {"staff": clinic.techs[1].pk, "starts_at": "2027-01-13T14:00:00Z", "ends_at": "2027-01-13T18:00:00Z"},
    ).json()
    assert off["starts_at"] == "2027-01-13T08:00:00-06:00"
    lab = post(
        nurse,
        "/api/v1/lab-results/",
        {"patient": booked.patient_id, "test": "inr", "value": "1.0", "taken_at": "2027-01-04T10:00:00Z"},
    ).json()
    assert lab["taken_at"] == "2027-01-04T04:00:00-06:00"
    token = post(client_for(None), "/api/v1/auth/token/", {"username": "admin-user", "password": "x"})
    assert token.status_code == 401  # persona users have no usable password; a key shows its times instead
    keys = post(admin, "/api/v1/service-accounts/", {"name": "EHR", "scopes": ["book"]}).json()
    key = admin.get(f"/api/v1/api-keys/{keys['key_id']}/").json()
    assert offset_of(key["created_at"]) == CHICAGO_OFFSET
    patient = scheduler.get(f"/api/v1/patients/{booked.patient_id}/").json()
    assert offset_of(patient["updated_at"]) == CHICAGO_OFFSET
    case = scheduler.get(f"/api/v1/bookings/{booked.pk}/").json()
    assert {offset_of(case[name]) for name in ("start", "end", "arrival", "updated_at")} == {CHICAGO_OFFSET}

    clash = post(scheduler, "/api/v1/bookings/", booking_body(clinic)).json()
    instants = [
        value
        for conflict in clash["conflicts"]
        for part in ("requested", "clashing")
        for value in (conflict.get(part) or {}).values()
        if isinstance(value, str) and "T" in value
    ]
    assert instants
    assert {offset_of(value) for value in instants} == {CHICAGO_OFFSET}


def test_booking_dates_are_read_on_the_sites_calendar(clinic, clients):
    clinic.site.timezone = "Asia/Tokyo"
    clinic.site.save()
    # 08:00 in Tokyo on Monday the 11th is 23:00 UTC on Sunday the 10th.
    tokyo_eight = dt.datetime(2027, 1, 11, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    booked = book(clinic, start=tokyo_eight)
    assert booked.starts_at.astimezone(dt.UTC).date() == dt.date(2027, 1, 10)

    def listed(day):
        answer = clients["scheduler"].get("/api/v1/bookings/", {"date_from": day, "date_to": day})
        assert answer.status_code == 200
        return [row["id"] for row in answer.json()["results"]]

    assert listed("2027-01-11") == [booked.pk]
    assert listed("2027-01-10") == []
    assert clients["scheduler"].get(f"/api/v1/bookings/{booked.pk}/").json()["start"] == "2027-01-11T08:00:00+09:00"


# --- deprecation ------------------------------------------------------------------------------


def test_a_deprecated_operation_says_so_on_every_answer(clinic, clients, monkeypatch):
    notice = middleware.Deprecated(
        method="GET",
        path=r"/api/v1/drugs/",
        deprecated_at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
        sunset_at=dt.datetime(2027, 7, 1, tzinfo=dt.UTC),
        successor="/api/v1/medication-holds/",
    )
    monkeypatch.setattr(middleware, "DEPRECATED", [notice])
    response = clients["scheduler"].get("/api/v1/drugs/")
    assert response.status_code == 200
    assert response["Deprecation"] == f"@{int(notice.deprecated_at.timestamp())}"
    assert response["Sunset"] == "Thu, 01 Jul 2027 00:00:00 GMT"
    assert response["Link"] == '</api/v1/medication-holds/>; rel="successor-version"'
    assert "Deprecation" not in clients["scheduler"].get("/api/v1/rooms/")


def test_nothing_is_deprecated_without_a_changelog_line():
    from pathlib import Path

    changelog = (Path(__file__).resolve().parents[1] / "docs" / "api-changelog.md").read_text()
    for notice in middleware.DEPRECATED:
        assert notice.path in changelog


# --- the schema describes each operation for itself -------------------------------------------


def test_every_operation_has_its_own_description(schema):
    descriptions = Counter()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                text = operation.get("description", "").strip()
                assert len(text) > 20, (method, path)
                descriptions[text] += 1
    repeated = {text: n for text, n in descriptions.items() if n > 1}
    assert not repeated


def test_the_day_answers_have_schemas(schema):
    def ref(path, method="get"):
        return schema["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]

    assert ref("/api/v1/daily-list/") == {"$ref": "#/components/schemas/DailyList"}
    assert ref("/api/v1/sites/{id}/schedule/") == {"$ref": "#/components/schemas/SiteSchedule"}
    assert "Idempotency-Key" in {p["name"] for p in schema["paths"]["/api/v1/bookings/"]["post"]["parameters"]}


def test_booking_list_dates_are_in_the_schema_as_site_dates(schema):
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/bookings/"]["get"]["parameters"]}
    assert "site" in parameters["date_from"]["description"]
    assert parameters["date_from"]["schema"]["format"] == "date"


def test_no_booking_was_made_by_a_refused_request(clinic, clients):
    post(clients["scheduler"], "/api/v1/bookings/", booking_body(clinic, patient=999999))
    post(
        clients["scheduler"],
        "/api/v1/bookings/",
        booking_body(clinic, start=local(MONDAY, 9).replace(tzinfo=None).isoformat()),
    )
    assert Booking.objects.count() == 0


# --- what a review found ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/v1/bookings/", {"page_size": "²"}),
        ("/api/v1/bookings/", {"page_size": "9" * 5000}),
        ("/api/v1/daily-list/", {"physician": "²", "date": "2027-01-11"}),
    ],
)
def test_digits_that_are_not_ascii_are_a_400_not_a_crash(clinic, clients, url, params):
    assert_one_error_shape(clients["scheduler"].get(url, params), 400)


def test_an_id_given_as_text_in_json_is_a_400(clinic, clients):
    response = post(clients["scheduler"], "/api/v1/bookings/", booking_body(clinic, patient=str(clinic.patients[0].pk)))
    body = assert_one_error_shape(response, 400)
    assert [item["field"] for item in body["errors"]] == ["patient"]
    lab = post(
        clients["nurse"],
        "/api/v1/lab-results/",
        {"patient": clinic.patients[0].pk, "test": "inr", "value": "1e1", "taken_at": "2027-01-04T10:00:00Z"},
    )
    assert assert_one_error_shape(lab, 400)["errors"][0]["field"] == "value"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/daily-list/?date=2027-01-11&physician={physician}&bogus=1",
        "/api/v1/availability/?procedure_type=VP&from=2027-01-11&to=2027-01-11&bogus=1",
        "/api/v1/sites/{site}/schedule/?date=2027-01-11&bogus=1",
        "/api/v1/sites/{site}/?bogus=1",
    ],
)
def test_an_unknown_query_parameter_is_a_400_on_every_read(clinic, clients, url):
    url = url.format(physician=clinic.physicians[0].pk, site=clinic.site.pk)
    body = assert_one_error_shape(clients["scheduler"].get(url), 400)
    assert [item["field"] for item in body["errors"]] == ["bogus"]


def test_a_webhook_201_names_the_subscription_not_its_address(clinic, clients):
    made = post(clients["admin"], "/api/v1/webhooks/", {"name": "EHR", "url": "https://ehr.example.org/hook?token=s3"})
    assert made.status_code == 201
    assert made["Location"] == f"/api/v1/webhooks/{made.json()['id']}/"
    assert clients["admin"].get(made["Location"]).status_code == 200


def test_a_waiting_list_case_the_catalogue_refuses_is_named_by_its_place(clinic, clients):
    body = {
        "site": clinic.site.pk,
        "date": "2027-01-11",
        "waiting_list": [
            {"patient": clinic.patients[0].pk, "procedure_type": "VP"},
            {"patient": clinic.patients[1].pk, "procedure_type": "VP", "levels": 9},
        ],
    }
    refused = assert_one_error_shape(post(clients["scheduler"], "/api/v1/plans/", body), 422)
    assert [(item["field"], item["code"]) for item in refused["errors"]] == [
        ("waiting_list.1.levels", "levels_out_of_range")
    ]


def test_an_expired_hold_says_when_in_the_sites_offset(clinic, clients):
    held = post(clients["scheduler"], "/api/v1/bookings/", booking_body(clinic, hold=True)).json()
    with time_machine.travel(dt.datetime(2027, 1, 4, 12, 20, tzinfo=dt.UTC), tick=False):
        late = post(clients["scheduler"], f"/api/v1/bookings/{held['id']}/confirm/", {})
    body = assert_one_error_shape(late, 409)
    assert offset_of(body["errors"][0]["extra"]["hold_expired_at"]) == CHICAGO_OFFSET


def test_the_schema_is_the_same_whoever_asks(clinic, clients):
    anonymous = Client().get("/api/schema/", {"format": "json"}).json()
    assert anonymous == clients["admin"].get("/api/schema/", {"format": "json"}).json()
    assert {"mrn", "first_name", "date_of_birth", "phone"} <= set(
        anonymous["components"]["schemas"]["Patient"]["properties"]
    )


def test_a_body_too_large_points_at_its_own_page(clinic, clients, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    big = clients["scheduler"].post("/api/v1/bookings/", "{" + " " * 200 + "}", content_type="application/json")
    body = assert_one_error_shape(big, 413)
    assert body["type"] == "/api/problems/payload_too_large"


def test_a_deprecated_operation_is_marked_in_the_schema(clinic, clients, monkeypatch):
    notice = middleware.Deprecated(
        method="GET",
        path=r"/api/v1/drugs/[0-9]+/",
        deprecated_at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
        sunset_at=dt.datetime(2027, 7, 1, tzinfo=dt.UTC),
    )
    monkeypatch.setattr(middleware, "DEPRECATED", [notice])
    paths = clients["admin"].get("/api/schema/", {"format": "json"}).json()["paths"]
    assert paths["/api/v1/drugs/{id}/"]["get"].get("deprecated") is True
    assert "deprecated" not in paths["/api/v1/drugs/"]["get"]


def test_text_patterns_refuse_a_nul_and_spaces_alone(schema):
    token = schema["components"]["schemas"]["TokenInputRequest"]["properties"]["username"]["pattern"]
    assert re.search(token, "ana")
    assert re.search(token, " ana ")
    for refused in ("", "   ", "a\x00", "\x00", "an\x00a"):
        assert not re.search(token, refused), repr(refused)


def test_a_nul_in_text_is_a_400_naming_the_field(clinic, clients):
    response = post(client_for(None), "/api/v1/auth/token/", {"username": "an\x00a", "password": "x"})
    assert [item["field"] for item in assert_one_error_shape(response, 400)["errors"]] == ["username"]
