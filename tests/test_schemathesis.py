"""Every operation of /api/schema/, fuzzed from the schema as an admin: no server errors, no
response that breaks its schema, no status code the schema does not declare."""

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.authentication import issue_token
from config.wsgi import application
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from tests.api_helpers import persona_users
from tests.conftest import MONDAY, local

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    # As Django's test client does: the WSGI handler would otherwise close the test's
    # connection (and its transaction) at the end of every request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def admin_headers(clinic):
    users = persona_users(clinic)
    for hour in (8, 13):
        booking_create(
            request=CaseRequest(
                procedure_type=clinic.vp(),
                patient=clinic.patients[hour],
                pins=clinic.resources(recovery_bay=clinic.bays[hour % 3]),
            ),
            actor=None,
            starts_at=local(MONDAY, hour),
        )
    raw, _ = issue_token(users["admin"])
    return {"Authorization": f"Bearer {raw}"}


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_keeps_its_contract(case, admin_headers):
    case.call_and_validate(headers=admin_headers, checks=CHECKS)
