from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework.test import APIClient

from api.authentication import issue_token
from tests import factories as f
from tests.conftest import Clinic

PERSONAS = ("admin", "scheduler", "physician", "nurse", "tech", "outsider")


def persona_users(clinic: Clinic) -> dict[str, User]:
    users = {}
    for name in PERSONAS:
        groups = [] if name == "outsider" else [name]
        users[name] = f.UserFactory(username=f"{name}-user", groups=groups)
    clinic.physicians[0].user = users["physician"]
    clinic.physicians[0].save()
    clinic.nurses[0].user = users["nurse"]
    clinic.nurses[0].save()
    clinic.techs[0].user = users["tech"]
    clinic.techs[0].save()
    return users


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        raw, _ = issue_token(user)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def post(client: APIClient, url: str, data: Any, **headers: str) -> Any:
    return client.post(url, data, format="json", headers=headers)


def field_errors(response: Any) -> dict[str | None, list[str]]:
    """A problem's ``errors`` (a list of ``{field, code, message}``) by field."""
    found: dict[str | None, list[str]] = {}
    for item in response.json()["errors"]:
        found.setdefault(item["field"], []).append(item["message"])
    return found


def problem_extra(response: Any) -> dict[str, Any]:
    """The data a problem carries in its one item's ``extra``."""
    [item] = response.json()["errors"]
    return item.get("extra", {})
