"""Who may do what, and see how much: the one access policy every face (REST, pages,
standards) applies. Roles are Django groups (``core.roles``).

Which cases a user may see is a read (``scheduling.selectors.own_case_legs``); which roles see
every case is decided here.
"""

from __future__ import annotations

from typing import Any

from core.errors import NotPermitted
from core.roles import (
    ADMIN,
    ALL_ROLES,
    NURSE,
    PATIENTS_READ,
    PHYSICIAN,
    SCHEDULER,
    SYSTEM,
    TECH,
    primary_role,
    roles_of,
    scope_allows,
)

EVERYONE = frozenset(ALL_ROLES)
# Configuration: sites, rooms, equipment, bays, staff, credentials, shifts, the catalogues.
CONFIGURERS = frozenset({ADMIN})
# Downtime and time off change what can be booked; schedulers record them with admins.
AVAILABILITY_EDITORS = frozenset({ADMIN, SCHEDULER})
SEARCHERS = frozenset({ADMIN, SCHEDULER, PHYSICIAN})
BOOKERS = frozenset({ADMIN, SCHEDULER})
# A physician books and moves their own cases (as the case's physician), e.g. to override an
# anticoagulant hold; schedulers and admins book any case.
OWN_CASE_BOOKERS = frozenset({PHYSICIAN})
# Book, move and confirm a hold: any case, or (physicians) their own.
CASE_BOOKERS = BOOKERS | OWN_CASE_BOOKERS
CANCELLERS = BOOKERS
# Planning a whole day moves other people's cases: schedulers and admins.
PLANNERS = BOOKERS
PHYSICIANS = frozenset({PHYSICIAN})
PATIENT_REGISTRARS = frozenset({ADMIN, SCHEDULER})
MEDICATION_RECORDERS = frozenset({ADMIN, SCHEDULER, PHYSICIAN, NURSE})
CLINICAL_RECORDERS = frozenset({ADMIN, SCHEDULER, PHYSICIAN, NURSE})
# The front desk checks patients in, records no-shows and deals with alerts.
FRONT_DESK = frozenset({ADMIN, SCHEDULER, NURSE})
PROCEDURE_TEAM = frozenset({ADMIN, PHYSICIAN, NURSE})
# Overriding the readiness gate or an anticoagulant hold is a clinical judgement.
OVERRIDERS = frozenset({ADMIN, PHYSICIAN})
# Who records each step of the procedure day (the pages and the API use this one table).
STEP_ROLES: dict[str, frozenset[str]] = {
    "check_in": FRONT_DESK,
    "no_show": FRONT_DESK,
    "ready": PROCEDURE_TEAM,
    "start_procedure": PROCEDURE_TEAM,
    "end_procedure": PROCEDURE_TEAM,
    "start_recovery": PROCEDURE_TEAM,
    "ready_for_discharge": PROCEDURE_TEAM,
    "discharge": PROCEDURE_TEAM,
    "checklist": CLINICAL_RECORDERS,
}
# A step's recorded time is corrected afterwards, with a reason, by whoever records steps.
STEP_TIME_CORRECTORS = FRONT_DESK | PROCEDURE_TEAM
# Who runs the procedure day on the patient-flow page.
FLOW_USERS = FRONT_DESK | PROCEDURE_TEAM
# Roles that read every case; the others read only the cases they work on.
SEE_EVERY_CASE = frozenset({ADMIN, SCHEDULER, NURSE})
OWN_CASES_ONLY = frozenset({PHYSICIAN, TECH})
# Who may read any physician's daily list (a physician reads their own).
DAILY_LIST_OF_ANYONE = frozenset({ADMIN, SCHEDULER, NURSE, TECH})

# The minimum each role needs of a patient. The front desk and nurses call the patient and the
# escort; a physician needs identity, allergies and the escort; a tech confirms two identifiers
# on the table and checks allergies (contrast, cement).
FRONT_DESK_PATIENT_FIELDS = (
    "id",
    "mrn",
    "first_name",
    "last_name",
    "date_of_birth",
    "sex",
    "pregnancy_possible",
    "phone",
    "escort_name",
    "escort_phone",
    "allergies",
)
PATIENT_FIELDS_BY_ROLE: dict[str, tuple[str, ...]] = {
    ADMIN: FRONT_DESK_PATIENT_FIELDS,
    SCHEDULER: FRONT_DESK_PATIENT_FIELDS,
    NURSE: FRONT_DESK_PATIENT_FIELDS,
    PHYSICIAN: (
        "id",
        "mrn",
        "first_name",
        "last_name",
        "date_of_birth",
        "sex",
        "pregnancy_possible",
        "escort_name",
        "escort_phone",
        "allergies",
    ),
    TECH: ("id", "mrn", "first_name", "last_name", "date_of_birth", "allergies"),
    # A system client without the patients scope: the id, to match against its own records.
    SYSTEM: ("id",),
}


def may(user: Any, roles: frozenset[str]) -> bool:
    return bool(roles_of(user) & roles)


def may_override(actor: Any) -> bool:
    """Whether ``actor`` may override the readiness gate or an anticoagulant hold."""
    return may(actor, OVERRIDERS)


def sees_every_case(user: Any) -> bool:
    return may(user, SEE_EVERY_CASE)


def reads_own_cases(user: Any) -> bool:
    return may(user, OWN_CASES_ONLY)


def patient_fields(user: Any) -> tuple[str, ...]:
    """The patient fields ``user`` may see (none without a role)."""
    role = primary_role(user)
    return PATIENT_FIELDS_BY_ROLE.get(role or "", ())


def patient_fields_of_role(role: str | None) -> tuple[str, ...]:
    return PATIENT_FIELDS_BY_ROLE.get(role or "", ())


def sees_clinical_records(user: Any) -> bool:
    """Whether ``user`` reads a patient's medication holds, labs and imaging (a tech does not,
    nor a system client without the patients scope)."""
    return may(user, MEDICATION_RECORDERS | CLINICAL_RECORDERS) and scope_allows(user, PATIENTS_READ)


def may_read_daily_list(user: Any, physician: Any) -> bool:
    if may(user, DAILY_LIST_OF_ANYONE):
        return True
    return may(user, frozenset({PHYSICIAN})) and getattr(user, "staff_member", None) == physician


def booking_pins(user: Any, pins: dict[str, int]) -> dict[str, int]:
    """The pins a user may book with: a scheduler's or admin's as given; a physician's with
    themself as the case's physician. Raises NotPermitted for anyone else, or for a physician
    naming another physician."""
    if may(user, BOOKERS):
        return pins
    member = getattr(user, "staff_member", None)
    if may(user, OWN_CASE_BOOKERS) and member is not None:
        if pins.get("physician", member.pk) != member.pk:
            raise NotPermitted("A physician books their own cases only.")
        return {**pins, "physician": member.pk}
    raise NotPermitted("Your role does not allow booking.")
