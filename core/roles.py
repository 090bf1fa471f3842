"""Roles are Django groups; every face (REST, pages, standards) reads them through here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

ADMIN, SCHEDULER, PHYSICIAN, NURSE, TECH = "admin", "scheduler", "physician", "nurse", "tech"
# Broadest first: a user with several roles sees patient data as the first of them.
ALL_ROLES = (ADMIN, SCHEDULER, PHYSICIAN, NURSE, TECH)
# A system client whose key may not read patients' demographics sees patients by id only. It is
# never a group: only a key's scopes give it.
SYSTEM = "system"
# A key's scopes (``core.models.Scope``), as codes.
SCHEDULE_READ, BOOK, PATIENTS_READ = "schedule:read", "book", "patients:read"
# What no key may do, only a person: recording downtime and time off.
PEOPLE_ONLY = "people-only"


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


def remember_scopes(user: Any, scopes: Iterable[str]) -> None:
    """Mark the user as a system client signed in with a key of these scopes."""
    user._api_scopes = frozenset(scopes)


def scopes_of(user: Any) -> frozenset[str] | None:
    """A system client's scopes; None for a person (whom only roles limit)."""
    scopes: frozenset[str] | None = getattr(user, "_api_scopes", None)
    return scopes


def scope_allows(user: Any, scope: str) -> bool:
    """Whether the request's key allows ``scope``; always for a person."""
    scopes = scopes_of(user)
    return scopes is None or scope in scopes


def primary_role(user: Any) -> str | None:
    """The broadest role a user has, which decides how much patient data they see."""
    if not scope_allows(user, PATIENTS_READ):
        return SYSTEM
    mine = roles_of(user)
    return next((role for role in ALL_ROLES if role in mine), None)
