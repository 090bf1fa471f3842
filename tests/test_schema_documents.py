"""The OpenAPI schema documents the daily list, the site schedule, and the Idempotency-Key of
every write that takes one."""

import pytest
import yaml

from tests.api_helpers import client_for, persona_users

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(clinic):
    response = client_for(persona_users(clinic)["scheduler"]).get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def header_names(operation):
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}


def test_the_daily_list_and_site_schedule_are_documented(schema):
    assert "get" in schema["paths"]["/api/v1/daily-list/"]
    assert "get" in schema["paths"]["/api/v1/sites/{id}/schedule/"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/bookings/",
        "/api/v1/bookings/{id}/confirm/",
        "/api/v1/bookings/{id}/reschedule/",
        "/api/v1/bookings/{id}/cancel/",
        "/api/v1/bookings/{id}/check-in/",
        "/api/v1/bookings/{id}/discharge/",
    ],
)
def test_idempotent_writes_document_the_idempotency_key(schema, path):
    assert "Idempotency-Key" in header_names(schema["paths"][path]["post"])


def test_reads_do_not_offer_an_idempotency_key(schema):
    assert "Idempotency-Key" not in header_names(schema["paths"]["/api/v1/bookings/"]["get"])
    assert "Idempotency-Key" not in header_names(schema["paths"]["/api/v1/daily-list/"]["get"])


def test_the_booking_schema_carries_the_order(schema):
    create = schema["components"]["schemas"]["BookingCreateInputRequest"]["properties"]
    assert create["level_names"]["type"] == "array"
    assert "prior_auth_status" in create
    assert "cpt_codes" in schema["components"]["schemas"]["Order"]["properties"]
