"""Each view names the roles allowed per action; the roles themselves are ``core.roles``."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from core.roles import has_any_role


class RolePermission(BasePermission):
    """Allows a request when the user has one of the roles the view lists for its action.

    Views set ``roles = {"list": {...}, "create": {...}, ...}``; an action missing there is
    refused, so a new action is closed until someone opens it.
    """

    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        action = getattr(view, "action", None) or (request.method or "").lower()
        allowed = getattr(view, "roles", {}).get(action, set())
        return has_any_role(request.user, allowed)
