"""Service accounts: an administrator creates one with a scoped key (shown once, stored as a
digest), the key acts as a scheduler narrowed to its scopes, every use is audited, and a
revoked key is refused at once."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from core.clients import key_digest
from core.models import ApiKey, AuditEvent, ServiceAccount
from scheduling.models import Booking
from tests import factories as f
from tests.api_helpers import client_for, field_errors, persona_users, post
from tests.conftest import MONDAY, local

pytestmark = pytest.mark.django_db


def key_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def new_account(admin, name: str, *scopes: str) -> dict:
    answer = post(client_for(admin), "/api/v1/service-accounts/", {"name": name, "scopes": list(scopes)})
    assert answer.status_code == 201, answer.content
    return answer.json()


def booking_body(clinic) -> dict:
    return {
        "patient": clinic.patients[0].pk,
        "procedure_type": "VP",
        "levels": 1,
        "start": local(MONDAY, 9).isoformat(),
    }


def test_an_admin_creates_an_account_whose_key_is_shown_once_and_stored_as_a_digest(clinic):
    users = persona_users(clinic)
    issued = new_account(users["admin"], "Portal", "schedule:read")
    assert issued["key"].startswith("sk_")
    assert len(issued["key"]) > 40
    key = ApiKey.objects.get(pk=issued["key_id"])
    assert key.key_hash == key_digest(issued["key"])
    assert issued["key"] not in str(list(ApiKey.objects.values()))
    listed = client_for(users["admin"]).get(f"/api/v1/service-accounts/{issued['account']}/").json()
    assert listed["name"] == "Portal"
    assert [k["prefix"] for k in listed["keys"]] == [issued["key"][:11]]
    assert "key" not in listed["keys"][0]
    assert issued["key"] not in str(listed)
    assert AuditEvent.objects.filter(action="service_account.create", actor=users["admin"]).count() == 1


@pytest.mark.parametrize("persona", ["scheduler", "physician", "nurse", "tech"])
def test_only_an_admin_manages_service_accounts(clinic, persona):
    users = persona_users(clinic)
    answer = post(client_for(users[persona]), "/api/v1/service-accounts/", {"name": "X", "scopes": ["book"]})
    assert answer.status_code == 403
    assert not ServiceAccount.objects.exists()


def test_bad_input_is_a_clear_error(clinic):
    users = persona_users(clinic)
    admin = client_for(users["admin"])
    unknown = post(admin, "/api/v1/service-accounts/", {"name": "X", "scopes": ["everything"]})
    assert unknown.status_code == 400
    assert "scopes.0" in field_errors(unknown)
    none = post(admin, "/api/v1/service-accounts/", {"name": "X", "scopes": []})
    assert none.status_code == 400
    new_account(users["admin"], "EHR", "book")
    taken = post(admin, "/api/v1/service-accounts/", {"name": "ehr", "scopes": ["book"]})
    assert taken.status_code == 422
    assert ServiceAccount.objects.count() == 1


def test_a_read_scope_cannot_book_and_its_uses_are_audited(clinic):
    users = persona_users(clinic)
    issued = new_account(users["admin"], "Portal", "schedule:read")
    client = key_client(issued["key"])
    listed = client.get("/api/v1/bookings/")
    assert listed.status_code == 200
    refused = post(client, "/api/v1/bookings/", booking_body(clinic))
    assert refused.status_code == 403
    assert "book" in refused.json()["detail"]
    assert not Booking.objects.exists()
    uses = list(AuditEvent.objects.filter(action="api_key.use", object_id=str(issued["key_id"])).order_by("id"))
    assert [(u.details["method"], u.details["path"]) for u in uses] == [
        ("GET", "/api/v1/bookings/"),
        ("POST", "/api/v1/bookings/"),
    ]
    account = ServiceAccount.objects.get(pk=issued["account"])
    assert {u.actor_id for u in uses} == {account.user_id}


def test_a_book_scope_books_and_sees_patients_by_id_only(clinic):
    users = persona_users(clinic)
    issued = new_account(users["admin"], "EHR", "book", "schedule:read")
    client = key_client(issued["key"])
    booked = post(client, "/api/v1/bookings/", booking_body(clinic))
    assert booked.status_code == 201, booked.content
    assert booked.json()["patient"] == {"id": clinic.patients[0].pk}
    read = client.get(f"/api/v1/bookings/{booked.json()['id']}/").json()
    assert read["patient"] == {"id": clinic.patients[0].pk}
    assert client.get("/api/v1/patients/").status_code == 403
    assert client.get(f"/api/v1/patients/{clinic.patients[0].pk}/").status_code == 403


def test_the_patients_scope_reads_demographics(clinic):
    users = persona_users(clinic)
    issued = new_account(users["admin"], "Registry", "patients:read")
    client = key_client(issued["key"])
    answer = client.get(f"/api/v1/patients/{clinic.patients[0].pk}/")
    assert answer.status_code == 200
    assert answer.json()["last_name"] == clinic.patients[0].last_name
    assert client.get("/api/v1/bookings/").status_code == 403


def test_no_key_records_downtime(clinic):
    users = persona_users(clinic)
    issued = new_account(users["admin"], "EHR", "book", "schedule:read")
    body = {
        "equipment": clinic.c_arms[0].pk,
        "starts_at": local(MONDAY, 9).isoformat(),
        "ends_at": local(MONDAY, 10).isoformat(),
        "reason": "repair",
    }
    assert post(key_client(issued["key"]), "/api/v1/downtime/", body).status_code == 403
    assert key_client(issued["key"]).get("/api/v1/downtime/").status_code == 200


def test_a_revoked_key_or_account_is_refused_at_once(clinic):
    users = persona_users(clinic)
    admin = client_for(users["admin"])
    issued = new_account(users["admin"], "Portal", "schedule:read")
    second = post(admin, f"/api/v1/service-accounts/{issued['account']}/keys/", {"scopes": ["schedule:read"]}).json()
    assert key_client(issued["key"]).get("/api/v1/bookings/").status_code == 200
    assert post(admin, f"/api/v1/api-keys/{issued['key_id']}/revoke/", {}).status_code == 200
    refused = key_client(issued["key"]).get("/api/v1/bookings/")
    assert refused.status_code == 401
    assert key_client(second["key"]).get("/api/v1/bookings/").status_code == 200
    assert post(admin, f"/api/v1/service-accounts/{issued['account']}/revoke/", {}).status_code == 200
    assert key_client(second["key"]).get("/api/v1/bookings/").status_code == 401
    assert key_client("sk_made-up").get("/api/v1/bookings/").status_code == 401
    account = ServiceAccount.objects.get(pk=issued["account"])
    assert account.revoked_at is not None
    assert not account.user.is_active


def test_a_service_account_cannot_sign_in_with_a_password(clinic, client):
    users = persona_users(clinic)
    issued = new_account(users["admin"], "Portal", "schedule:read")
    account = ServiceAccount.objects.get(pk=issued["account"])
    assert not account.user.has_usable_password()
    answer = post(APIClient(), "/api/v1/auth/token/", {"username": account.user.username, "password": ""})
    assert answer.status_code in (400, 401)


def test_the_admin_adds_an_account_shows_its_key_once_and_revokes_it(clinic, client):
    root = f.UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    page = client.post(
        "/admin/core/serviceaccount/add/", {"name": "Interface engine", "scopes": ["schedule:read"]}, follow=True
    )
    assert page.status_code == 200
    account = ServiceAccount.objects.get(name="Interface engine")
    raw = next(word for word in page.content.decode().split() if word.startswith("sk_"))
    assert key_client(raw).get("/api/v1/bookings/").status_code == 200
    assert raw not in client.get(f"/admin/core/serviceaccount/{account.pk}/change/").content.decode()
    client.post(
        "/admin/core/serviceaccount/",
        {"action": "revoke", "_selected_action": [account.pk]},
        follow=True,
    )
    assert key_client(raw).get("/api/v1/bookings/").status_code == 401
