"""Each view names the roles allowed per action; the roles themselves are ``core.roles``."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from core.roles import BOOK, SCHEDULE_READ, has_any_role, scope_allows

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def scope_needed(request: Request, view: Any) -> str:
    """The key scope a request needs: the view's ``scopes`` for its action, else reading the
    schedule for a read and booking for a write."""
    action = getattr(view, "action", None) or (request.method or "").lower()
    named: str | None = getattr(view, "scopes", {}).get(action)
    if named is not None:
        return named
    return SCHEDULE_READ if request.method in SAFE_METHODS else BOOK


class RolePermission(BasePermission):
    """Allows a request when the user has one of the roles the view lists for its action.

    Views set ``roles = {"list": {...}, "create": {...}, ...}``; an action missing there is
    refused, so a new action is closed until someone opens it.
    """

    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        if not hasattr(view, (request.method or "").lower()):
            # A method the operation does not have: let the view answer 405 with Allow,
            # which tells a client more (and no more) than a 403 would.
            return True
        action = getattr(view, "action", None) or (request.method or "").lower()
        allowed = getattr(view, "roles", {}).get(action, set())
        if not has_any_role(request.user, allowed):
            return False
        if not scope_allows(request.user, scope_needed(request, view)):
            self.message = f"The API key does not have the scope {scope_needed(request, view)!r}."
            return False
        return True
