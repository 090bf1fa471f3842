"""Correcting the recorded time of a step afterwards ("the patient was in at 09:05; I pressed
start at 09:20"), with a reason, audited with the old and new times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.audit import audit_record
from core.errors import BookingInvalid, InvalidTransition, NotPermitted, Problem
from procedure_day.services.common import locked_booking
from scheduling import policy
from scheduling.models import Booking
from scheduling.words import local_hhmm

REASON_MAX = 255


@dataclass(frozen=True)
class Step:
    field: str
    label: str
    action: str  # the workflow step that records it: whoever may record it may correct it


# The steps of the day in the order they happen.
STEPS = (
    Step("checked_in_at", "Checked in", "check_in"),
    Step("ready_at", "Ready", "ready"),
    Step("procedure_started_at", "Procedure started", "start_procedure"),
    Step("procedure_ended_at", "Procedure ended", "end_procedure"),
    Step("recovery_started_at", "Recovery started", "start_recovery"),
    Step("ready_for_discharge_at", "Ready for discharge", "ready_for_discharge"),
    Step("discharged_at", "Discharged", "discharge"),
)
STEP_BY_FIELD = {step.field: step for step in STEPS}
STEP_FIELDS = tuple(step.field for step in STEPS)


def recorded_steps(booking: Booking) -> list[tuple[Step, datetime]]:
    """The steps the case has been through, with their times, in order."""
    return [(step, getattr(booking, step.field)) for step in STEPS if getattr(booking, step.field) is not None]


def _problems(current: Booking, step: str, at: datetime, reason: str, now: datetime) -> list[Problem]:
    problems = []
    if not reason:
        problems.append(Problem("reason_required", "Say why the time is corrected.", field="reason"))
    elif len(reason) > REASON_MAX:
        problems.append(Problem("reason_too_long", f"Keep the reason to {REASON_MAX} characters.", field="reason"))
    if timezone.is_naive(at):
        problems.append(Problem("naive_datetime", "The time needs a UTC offset.", field="at"))
        return problems
    if at > now:
        problems.append(Problem("in_future", "A step cannot be recorded in the future.", field="at"))
    zone = current.site.zone
    case_day = current.starts_at.astimezone(zone).date()
    if at.astimezone(zone).date() < case_day:
        problems.append(
            Problem(
                "before_the_day",
                f"The case is on {case_day.isoformat()}; its steps are recorded from then.",
                field="at",
            )
        )
    index = STEP_FIELDS.index(step)
    for earlier in reversed(STEPS[:index]):
        value = getattr(current, earlier.field)
        if value is not None:
            if at < value:
                problems.append(
                    Problem(
                        "before_previous_step",
                        f"{earlier.label} is recorded at {local_hhmm(value, zone)}; this step cannot be earlier.",
                        field="at",
                    )
                )
            break
    for later in STEPS[index + 1 :]:
        value = getattr(current, later.field)
        if value is not None:
            if at > value:
                problems.append(
                    Problem(
                        "after_next_step",
                        f"{later.label} is recorded at {local_hhmm(value, zone)}; this step cannot be later.",
                        field="at",
                    )
                )
            break
    return problems


@transaction.atomic
def step_time_correct(*, actor: Any, booking: Booking | int, step: str, at: datetime, reason: str) -> Booking:
    """Set the recorded time of a step the case has been through to ``at``.

    The time must not be in the future and must keep the steps in order; the reason is
    required. The audit record holds the step, both times and the reason. Only the record
    changes: legs stay where the live steps put them.
    Raises NotPermitted, BookingInvalid (bad step, time or reason), InvalidTransition (a step
    not recorded yet).
    """
    if step not in STEP_FIELDS:
        raise BookingInvalid(
            [Problem("unknown_step", "Unknown step.", field="step", extra={"allowed": list(STEP_FIELDS)})]
        )
    if actor is not None and not policy.may(actor, policy.STEP_ROLES[STEP_BY_FIELD[step].action]):
        raise NotPermitted(f"Your role does not record “{STEP_BY_FIELD[step].label}”, so it cannot correct it.")
    current = locked_booking(booking)
    before = getattr(current, step)
    if before is None:
        raise InvalidTransition(
            "That step has not been recorded yet; record it from the flow first.",
            details={"status": current.status, "step": step},
        )
    reason = (reason or "").strip()
    problems = _problems(current, step, at, reason, timezone.now())
    if problems:
        raise BookingInvalid(problems)
    setattr(current, step, at)
    current.save(update_fields=[step, "updated_at"])
    audit_record(
        actor=actor,
        action="booking.step_time_correct",
        obj=current,
        details={"step": step, "from": before.isoformat(), "to": at.isoformat(), "reason": reason},
    )
    return current
