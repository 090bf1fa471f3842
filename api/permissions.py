"""Roles are Django groups. Each view names the roles allowed per action."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

ADMIN, SCHEDULER, PHYSICIAN, NURSE, TECH = "admin", "scheduler", "physician", "nurse", "tech"
ALL_ROLES = (ADMIN, SCHEDULER, PHYSICIAN, NURSE, TECH)
STAFF_ROLES_BY_GROUP = {PHYSICIAN: "physician", NURSE: "nurse", TECH: "rad_tech"}


def roles_of(user: Any) -> set[str]:
    if not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_api_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True)) & set(ALL_ROLES)
        if user.is_superuser:
            cached.add(ADMIN)
        user._api_roles = cached
    return set(cached)


def has_any_role(user: Any, roles: Iterable[str]) -> bool:
    return bool(roles_of(user) & set(roles))


def primary_role(user: Any) -> str | None:
    """The broadest role a user has, which decides how much patient data they see."""
    mine = roles_of(user)
    return next((role for role in ALL_ROLES if role in mine), None)


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
