"""Recording the readiness checklist of a case."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.audit import audit_record
from core.errors import BookingInvalid, InvalidTransition, Problem
from procedure_day.models import CaseChecklist, PregnancyStatus
from procedure_day.services.common import CHECKLIST_OPEN, locked_booking
from scheduling.models import Booking

CHECKLIST_DATETIMES = ("consent_signed_at", "last_solids_at", "last_clears_at")
CHECKLIST_FLAGS = ("escort_confirmed", "allergies_reviewed")
CHECKLIST_FIELDS = frozenset({*CHECKLIST_DATETIMES, *CHECKLIST_FLAGS, "pregnancy_status"})


def _checklist_problems(fields: dict[str, Any], now: datetime) -> list[Problem]:
    problems = []
    for name in sorted(set(fields) - CHECKLIST_FIELDS):
        problems.append(Problem("unknown_field", f"{name} is not a checklist field.", field=name))
    for name in CHECKLIST_DATETIMES:
        if name not in fields or fields[name] is None:
            continue
        value = fields[name]
        if not isinstance(value, datetime) or timezone.is_naive(value):
            problems.append(Problem("naive_datetime", f"{name} must be a time with a UTC offset.", field=name))
        elif value > now:
            # These record what happened; a future time is a typo that would pass the gate.
            problems.append(Problem("in_future", f"{name} cannot be in the future.", field=name))
    for name in CHECKLIST_FLAGS:
        if name in fields and not isinstance(fields[name], bool):
            problems.append(Problem("not_boolean", f"{name} must be true or false.", field=name))
    if "pregnancy_status" in fields and fields["pregnancy_status"] not in PregnancyStatus.values:
        problems.append(
            Problem(
                "invalid_choice",
                "Unknown pregnancy status.",
                field="pregnancy_status",
                extra={"allowed": list(PregnancyStatus.values)},
            )
        )
    return problems


@transaction.atomic
def checklist_update(*, actor: Any, booking: Booking, **fields: Any) -> CaseChecklist:
    """Record checklist answers for an open case, creating its checklist on first use.

    Locks the booking row so an answer and the readiness gate do not interleave. The audit
    record names the fields changed, not their values (they are patient data).
    Raises BookingInvalid (bad fields) or InvalidTransition (closed case).
    """
    now = timezone.now()
    problems = _checklist_problems(fields, now)
    if problems:
        raise BookingInvalid(problems)
    current = locked_booking(booking)
    if current.status not in CHECKLIST_OPEN:
        raise InvalidTransition(
            f"A {current.get_status_display().lower()} case's checklist is closed.",
            details={"status": current.status, "allowed_from": sorted(CHECKLIST_OPEN)},
        )
    if not fields:
        return CaseChecklist.objects.filter(booking=current).first() or CaseChecklist(booking=current)
    checklist, _ = CaseChecklist.objects.get_or_create(booking=current)
    for name, value in fields.items():
        setattr(checklist, name, value)
    checklist.save()
    audit_record(
        actor=actor, action="checklist.update", obj=checklist, details={"booking": current.pk, "fields": sorted(fields)}
    )
    return checklist
