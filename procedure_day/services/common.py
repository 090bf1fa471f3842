"""What every step of the procedure day shares: the statuses each step starts from, the row
lock, and the status stamp."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import models

from core.errors import InvalidTransition
from procedure_day.models import CaseChecklist
from scheduling.events import case_event
from scheduling.kinds import SchedulingEvent
from scheduling.models import ACTIVE_STATUSES, Allocation, Booking, BookingStatus

S = BookingStatus
CHECK_IN_FROM = frozenset({S.SCHEDULED})
READY_FROM = frozenset({S.CHECKED_IN})
START_PROCEDURE_FROM = frozenset({S.READY})
END_PROCEDURE_FROM = frozenset({S.IN_PROCEDURE})
START_RECOVERY_FROM = frozenset({S.IN_PROCEDURE})
READY_FOR_DISCHARGE_FROM = frozenset({S.IN_RECOVERY})
DISCHARGE_FROM = frozenset({S.READY_FOR_DISCHARGE})
NO_SHOW_FROM = frozenset({S.SCHEDULED, S.CHECKED_IN})
# Staff record the checklist while the case is open; a closed case's record is history.
CHECKLIST_OPEN = ACTIVE_STATUSES
# Each step of the day and the statuses it starts from, in the order a case meets them.
STEPS_FROM: dict[str, frozenset[str]] = {
    "check_in": CHECK_IN_FROM,
    "ready": READY_FROM,
    "start_procedure": START_PROCEDURE_FROM,
    "end_procedure": END_PROCEDURE_FROM,
    "start_recovery": START_RECOVERY_FROM,
    "ready_for_discharge": READY_FOR_DISCHARGE_FROM,
    "discharge": DISCHARGE_FROM,
    "no_show": NO_SHOW_FROM,
}


def next_steps(booking: Booking) -> list[str]:
    """The steps a case's status allows next; in procedure, the end until it is recorded, then
    the start of recovery. The services still decide whether each may run now."""
    steps = [step for step, allowed in STEPS_FROM.items() if booking.status in allowed]
    if "end_procedure" in steps:
        ended = booking.procedure_ended_at is not None
        steps.remove("end_procedure" if ended else "start_recovery")
    return steps


def max_length_of(model: type[models.Model], name: str) -> int:
    column = model._meta.get_field(name)
    assert isinstance(column, models.CharField)
    assert column.max_length is not None
    return column.max_length


OVERRIDE_REASON_MAX = max_length_of(CaseChecklist, "override_reason")


def user_or_none(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def locked_booking(booking: Booking | int) -> Booking:
    pk = booking if isinstance(booking, int) else booking.pk
    # of=("self",): patient, site and procedure type are read, not locked, so a case's
    # transition never waits on another case of the same patient or site.
    return (
        Booking.objects.select_for_update(of=("self",)).select_related("procedure_type", "patient", "site").get(pk=pk)
    )


def local_iso(moment: datetime, current: Booking) -> str:
    return moment.astimezone(current.site.zone).isoformat()


def require_status(current: Booking, allowed: frozenset[str], doing: str) -> None:
    if current.status not in allowed:
        raise InvalidTransition(
            f"A {current.get_status_display().lower()} case cannot {doing}.",
            details={"status": current.status, "allowed_from": sorted(allowed)},
        )


def advance(
    current: Booking, *, status: str, stamp: str | None, now: datetime, legs: Iterable[Allocation] | None = None
) -> str:
    """Move the case to ``status`` (stamping the step's time) and announce it, with ``legs`` as
    the case held them when it has just let them go (by default its active legs)."""
    previous = current.status
    current.status = status
    fields = ["status", "updated_at"]
    if stamp is not None:
        setattr(current, stamp, now)
        fields.append(stamp)
    current.save(update_fields=fields)
    case_event(SchedulingEvent.BOOKING_STATUS_CHANGED, current, legs=legs, previous_status=previous)
    return previous
