"""Roles are Django groups; every face (REST, pages, standards) reads them through here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

ADMIN, SCHEDULER, PHYSICIAN, NURSE, TECH = "admin", "scheduler", "physician", "nurse", "tech"
# Broadest first: a user with several roles sees patient data as the first of them.
ALL_ROLES = (ADMIN, SCHEDULER, PHYSICIAN, NURSE, TECH)


def roles_of(user: Any) -> set[str]:
    """The user's roles; a superuser is an admin. Cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_clinic_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True)) & set(ALL_ROLES)
        if user.is_superuser:
            cached.add(ADMIN)
        user._clinic_roles = cached
    return set(cached)


def remember_roles(user: Any, group_names: Iterable[str]) -> None:
    """Set the user's roles from group names read with the user (one query for both)."""
    roles = set(group_names) & set(ALL_ROLES)
    if user.is_superuser:
        roles.add(ADMIN)
    user._clinic_roles = roles


def has_any_role(user: Any, roles: Iterable[str]) -> bool:
    return bool(roles_of(user) & set(roles))


def primary_role(user: Any) -> str | None:
    """The broadest role a user has, which decides how much patient data they see."""
    mine = roles_of(user)
    return next((role for role in ALL_ROLES if role in mine), None)
