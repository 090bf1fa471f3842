"""The FHIR endpoint's contract is its CapabilityStatement: every resource, interaction, search
parameter and operation it declares is served, and whatever a client sends (declared
parameters with any value, undeclared ones, other methods) the answer is valid R4: a Bundle,
the resource, or an OperationOutcome with a 4xx, never a server error."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from tests.api_helpers import client_for, persona_users
from tests.conftest import MONDAY, local
from tests.fhir_helpers import fhir_json, resources, valid

pytestmark = pytest.mark.django_db
FHIR = "/fhir/r4"


@pytest.fixture
def served(clinic):
    """A clinic with a case on the Monday, a scheduler's client and the CapabilityStatement."""
    users = persona_users(clinic)
    case = booking_create(
        actor=None,
        request=CaseRequest(procedure_type=clinic.vp(), patient=clinic.patients[0], pins=clinic.resources()),
        starts_at=local(MONDAY, 9),
    )
    client = client_for(users["scheduler"])
    statement = fhir_json(client.get(f"{FHIR}/metadata"))
    return clinic, case, client, statement


def declared(statement: dict) -> dict[str, dict]:
    return {entry["type"]: entry for entry in statement["rest"][0]["resource"]}


def sample_value(kind: str, name: str, param_type: str, clinic, case) -> str:
    """A value a client would send for a declared search parameter of this server."""
    references = {
        "actor": f"Practitioner/{clinic.physicians[0].pk}",
        "patient": f"Patient/{case.patient_id}",
        "subject": f"Patient/{case.patient_id}",
        "practitioner": f"Practitioner/{clinic.physicians[0].pk}",
        "location": f"Location/room-{clinic.rooms[0].pk}",
        "schedule": f"Schedule/room-{clinic.rooms[0].pk}",
        "partof": f"Location/site-{clinic.site.pk}",
    }
    if kind == "Schedule" and name == "actor":
        return f"Location/room-{clinic.rooms[0].pk}"
    tokens = {
        "status": {"Appointment": "booked", "Slot": "free"}.get(kind, "active"),
        "identifier": clinic.patients[0].mrn,
        "active": "true",
        "type": "c_arm",
    }
    if param_type == "date":
        return f"ge{MONDAY}" if name != "_lastUpdated" else "ge2027-01-01"
    if param_type == "reference":
        return references[name]
    if param_type == "number":
        return "5"
    if name == "_id":
        return ""
    return tokens[name]


def with_schedule(kind: str, query: list[tuple[str, str]], clinic) -> list[tuple[str, str]]:
    """A Slot search names its Schedule and a window, as the statement's documentation says."""
    if kind != "Slot":
        return query
    names = {name for name, _ in query}
    extra = [] if "schedule" in names else [("schedule", f"Schedule/room-{clinic.rooms[0].pk}")]
    if "start" not in names:
        extra += [("start", f"ge{MONDAY}"), ("start", "lt2027-01-12")]
    return [*query, *extra]


def test_every_declared_resource_reads_and_searches_by_every_declared_parameter(served):
    clinic, case, client, statement = served
    for kind, entry in declared(statement).items():
        codes = {interaction["code"] for interaction in entry["interaction"]}
        assert {"read", "search-type"} <= codes, kind
        plain = fhir_json(client.get(f"{FHIR}/{kind}?" + urlencode(with_schedule(kind, [], clinic))))
        found = resources(plain)
        assert found, kind
        ident = found[0]["id"]
        read = fhir_json(client.get(f"{FHIR}/{kind}/{ident}"))
        assert (read["resourceType"], read["id"]) == (kind, ident)
        for param in entry["searchParam"]:
            name = param["name"]
            value = sample_value(kind, name, param["type"], clinic, case) or ident
            query = with_schedule(kind, [(name, value)], clinic)
            bundle = fhir_json(client.get(f"{FHIR}/{kind}?{urlencode(query)}"))
            assert bundle["type"] == "searchset", (kind, name)
            if name in ("_id", "identifier", "patient", "subject", "schedule", "actor", "practitioner"):
                assert resources(bundle), (kind, name, value)


def test_every_declared_operation_is_served_and_answers_bad_input_with_an_outcome(served):
    _, _, client, statement = served
    for kind, entry in declared(statement).items():
        for operation in entry.get("operation", []):
            url = f"{FHIR}/{kind}/${operation['name']}"
            empty = client.generic(
                "POST", url, json.dumps({"resourceType": "Parameters"}), content_type="application/fhir+json"
            )
            assert empty.status_code in (400, 422), (url, empty.status_code)
            body = valid(empty.json())
            assert body["resourceType"] == "OperationOutcome"
    assert "patch" in {i["code"] for i in declared(statement)["Appointment"]["interaction"]}


def test_methods_the_statement_does_not_declare_are_405_outcomes(served):
    _, case, client, _ = served
    for method in ("PUT", "DELETE", "POST"):
        answer = client.generic(method, f"{FHIR}/Appointment/{case.pk}", "{}", content_type="application/fhir+json")
        assert answer.status_code == 405, method
        assert valid(answer.json())["issue"][0]["code"] == "not-supported"
    assert client.generic("DELETE", f"{FHIR}/Patient", "").status_code == 405


# Text a client might put in any parameter: dates with prefixes, references, numbers, junk.
VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "9999999999999999999999",
            "ge2027-01-11",
            "lt2027-01-12T00:00:00Z",
            "sa2027-13-45",
            "eb2027-01-11T25:00",
            "Patient/1",
            "Location/room-1",
            "Location/nowhere",
            "Schedule/room-99999",
            "Organization/1",
            "booked,cancelled",
            "http://example.org|MRN1",
            "true",
            "1.5",
            "\x00",
            "ne2027-01-11",
        ]
    ),
    st.text(max_size=30),
)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_any_query_on_a_declared_type_answers_valid_r4_and_never_a_server_error(served, data):
    _, _, client, statement = served
    types = declared(statement)
    kind = data.draw(st.sampled_from(sorted(types)))
    names = [p["name"] for p in types[kind]["searchParam"]] + ["_offset", "_format", "colour"]
    query = data.draw(st.lists(st.tuples(st.sampled_from(names), VALUES), max_size=4))
    strict = data.draw(st.booleans())
    headers = {"Prefer": "handling=strict"} if strict else {}
    answer = client.get(f"{FHIR}/{kind}?{urlencode(query)}", headers=headers)
    assert answer.status_code < 500, (kind, query, answer.content[:300])
    assert answer["Content-Type"].startswith("application/fhir+json")
    body = valid(answer.json())
    if answer.status_code == 200:
        assert (body["resourceType"], body["type"]) == ("Bundle", "searchset")
    else:
        assert 400 <= answer.status_code < 500
        assert body["resourceType"] == "OperationOutcome"


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(
    kind=st.sampled_from(["Appointment", "ServiceRequest", "Patient", "Location", "Schedule", "Slot", "Device"]),
    ident=st.one_of(st.text(max_size=40), st.integers(min_value=-5, max_value=10**20).map(str)),
)
def test_any_id_reads_as_a_resource_or_a_404_outcome(served, kind, ident):
    _, _, client, _ = served
    from urllib.parse import quote

    answer = client.get(f"{FHIR}/{kind}/{quote(ident, safe='')}")
    assert answer.status_code in (200, 404), (kind, ident, answer.status_code)
    body = valid(answer.json())
    assert body["resourceType"] == (kind if answer.status_code == 200 else "OperationOutcome")
