"""Every operation of /api/schema/, fuzzed from the schema as an administrator with every check
Schemathesis has: no server error; every status, header, content type and body as the schema
says; every request the schema allows accepted (or refused only for a rule no schema can state:
a 422, see schemathesis.toml) and every request it forbids refused; methods an operation lacks
answer 405 with Allow; a required header left out is refused; and, following the schema's links
from what a create made to its reads and actions, what is made can be read and what is deleted
is gone."""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    ensure_resource_availability,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
    use_after_free,
)

from api.authentication import issue_token
from config.wsgi import application
from scheduling.request import CaseRequest
from scheduling.services.bookings import booking_create
from tests.api_helpers import persona_users
from tests.conftest import MONDAY, local

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
STATEFUL_EXAMPLES = int(os.environ.get("SCHEMATHESIS_STATEFUL_EXAMPLES", "80"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
    unsupported_method,
    allow_header_conformance,
    missing_required_header,
    ignored_auth,
    use_after_free,
    ensure_resource_availability,
]


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


def test_following_the_links_from_what_was_made_keeps_the_contract(admin_headers):
    # Signing out would end the session the walk runs under; it is fuzzed on its own above.
    walked = schema.exclude(path="/api/v1/auth/token/", method="DELETE")

    class Workflow(walked.as_state_machine()):  # type: ignore[misc]
        # Each walk starts from the same data, so a failing walk replays (and shrinks) as it ran.
        def setup(self) -> None:
            self.savepoint = transaction.savepoint()

        def teardown(self) -> None:
            transaction.savepoint_rollback(self.savepoint)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": admin_headers}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, headers=admin_headers, transport_kwargs=kwargs)

    run_state_machine_as_test(
        Workflow,
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        ),
    )
