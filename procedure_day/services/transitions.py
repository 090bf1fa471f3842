"""The day of the procedure: status transitions and the readiness gate.

Every transition is one transaction that first locks the booking row (``select_for_update``),
so two people pressing the same button queue and the second one sees the new status; it
checks the status it starts from, stamps the step's time, and writes an audit record holding
ids and codes only. Who acted is the audit record's actor; ``None`` is the system.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.audit import audit_record
from core.dates import require_aware
from core.errors import BookingInvalid, InvalidTransition, OverrideNotPermitted, Problem, ReadinessNotMet
from outbox.services import enqueue_notification, skip_pending
from procedure_day.kinds import ProcedureDayMessage
from procedure_day.models import CaseChecklist
from procedure_day.readiness import escort_required, evaluate_with, failing_codes, load_readiness
from procedure_day.recovery import recovery_clock
from procedure_day.services.common import (
    CHECK_IN_FROM,
    DISCHARGE_FROM,
    NO_SHOW_FROM,
    OVERRIDE_REASON_MAX,
    READY_FOR_DISCHARGE_FROM,
    READY_FROM,
    START_PROCEDURE_FROM,
    START_RECOVERY_FROM,
    S,
    advance,
    local_iso,
    locked_booking,
    require_status,
    user_or_none,
)
from procedure_day.services.start import shift_to_real_start
from scheduling import policy
from scheduling.models import Allocation, Booking
from scheduling.services.holds import holds_release_expired
from scheduling.words import local_hhmm


@transaction.atomic
def booking_check_in(*, actor: Any, booking: Booking) -> Booking:
    """scheduled → checked_in, on the case's local day only: an early click on next week's
    case would otherwise start its day's workflow."""
    current = locked_booking(booking)
    require_status(current, CHECK_IN_FROM, "be checked in")
    now = timezone.now()
    zone = current.site.zone
    case_day = current.starts_at.astimezone(zone).date()
    if now.astimezone(zone).date() != case_day:
        raise InvalidTransition(
            f"The case is on {case_day.isoformat()}; patients check in on the day of their case.",
            details={"status": current.status, "allowed_from": sorted(CHECK_IN_FROM), "case_day": case_day.isoformat()},
        )
    previous = advance(current, status=S.CHECKED_IN, stamp="checked_in_at", now=now)
    audit_record(actor=actor, action="booking.check_in", obj=current, details={"from": previous})
    return current


@transaction.atomic
def booking_mark_ready(*, actor: Any, booking: Booking, override_reason: str | None = None) -> Booking:
    """checked_in → ready when the readiness checklist passes.

    If it does not, an override needs a role the policy lets override (a physician or an
    administrator) and a non-empty reason; it is recorded on the checklist
    and audited with the codes of the items it overrode. A reason sent while the checklist
    passes overrides nothing and is not stored.
    Raises ReadinessNotMet (no reason), OverrideNotPermitted, BookingInvalid (reason too long).
    """
    current = locked_booking(booking)
    require_status(current, READY_FROM, "be marked ready")
    now = timezone.now()
    inputs = load_readiness(current)
    items = evaluate_with(current, inputs, now=now)
    failing = failing_codes(items)
    reason = (override_reason or "").strip()
    if failing:
        if not reason:
            raise ReadinessNotMet([item.as_dict() for item in items if not item.passes])
        if not policy.may_override(actor):
            raise OverrideNotPermitted(
                "Only a physician or an administrator may override the readiness checklist.",
                details={"failing": failing},
            )
        if len(reason) > OVERRIDE_REASON_MAX:
            raise BookingInvalid(
                [
                    Problem(
                        "override_reason_too_long",
                        f"Keep the override reason to {OVERRIDE_REASON_MAX} characters.",
                        field="override_reason",
                    )
                ]
            )
        checklist, _ = CaseChecklist.objects.get_or_create(booking=current)
        checklist.override_reason = reason
        checklist.override_by = user_or_none(actor)
        checklist.override_at = now
        checklist.save(update_fields=["override_reason", "override_by", "override_at", "updated_at"])
        audit_record(actor=actor, action="booking.readiness_override", obj=current, details={"failing": failing})
    previous = advance(current, status=S.READY, stamp="ready_at", now=now)
    audit_record(
        actor=actor, action="booking.ready", obj=current, details={"from": previous, "overridden": bool(failing)}
    )
    return current


@transaction.atomic
def booking_start_procedure(*, actor: Any, booking: Booking) -> Booking:
    """ready → in_procedure. The checklist is evaluated again (consent or fasting can change
    between the gate and the room) unless the gate was overridden.

    The case starts now: its legs move by the minutes it starts early or late, and a start
    that would overlap another case's legs then (or a case still in procedure in the room or
    with the team) is refused with SlotUnavailable naming each clash.
    """
    current = locked_booking(booking)
    require_status(current, START_PROCEDURE_FROM, "start its procedure")
    now = timezone.now()
    inputs = load_readiness(current)
    overridden = inputs.checklist is not None and inputs.checklist.override_at is not None
    if not overridden:
        items = evaluate_with(current, inputs, now=now)
        if failing_codes(items):
            raise ReadinessNotMet([item.as_dict() for item in items if not item.passes])
    holds_release_expired(now=now)
    shift = shift_to_real_start(current, now)
    if shift.minutes:
        current.save(update_fields=["starts_at", "ends_at", "arrival_at", "updated_at"])
    previous = advance(current, status=S.IN_PROCEDURE, stamp="procedure_started_at", now=now)
    audit_record(
        actor=actor,
        action="booking.start_procedure",
        obj=current,
        details={"from": previous, "minutes_from_plan": shift.minutes},
    )
    return current


@transaction.atomic
def booking_start_recovery(*, actor: Any, booking: Booking) -> Booking:
    """in_procedure (procedure ended) → in_recovery; the minimum recovery counts from now."""
    current = locked_booking(booking)
    require_status(current, START_RECOVERY_FROM, "start recovery")
    if current.procedure_ended_at is None:
        raise InvalidTransition(
            "End the procedure before starting recovery.",
            details={"status": current.status, "allowed_from": sorted(START_RECOVERY_FROM), "missing": "end_procedure"},
        )
    previous = advance(current, status=S.IN_RECOVERY, stamp="recovery_started_at", now=timezone.now())
    audit_record(actor=actor, action="booking.start_recovery", obj=current, details={"from": previous})
    return current


def _recovery_due(current: Booking) -> datetime:
    clock = recovery_clock(current)
    assert clock is not None  # recovery_started_at is set with the in_recovery status
    return clock.due


def _ready_for_discharge(current: Booking, *, actor: Any, now: datetime) -> None:
    require_status(current, READY_FOR_DISCHARGE_FROM, "be marked ready for discharge")
    due = _recovery_due(current)
    if now < due:
        remaining = math.ceil((due - now).total_seconds() / 60)
        raise InvalidTransition(
            f"Minimum recovery is {current.procedure_type.recovery_minutes} min: {remaining} min remain "
            f"(until {local_hhmm(due, current.site.zone)}).",
            details={"status": current.status, "remaining_minutes": remaining, "not_before": local_iso(due, current)},
        )
    previous = advance(current, status=S.READY_FOR_DISCHARGE, stamp="ready_for_discharge_at", now=now)
    # Written with the status so the front desk hears of every case that becomes ready, once.
    enqueue_notification(
        kind=ProcedureDayMessage.READY_FOR_DISCHARGE,
        dedupe_key=f"ready_for_discharge:booking:{current.pk}",
        due_at=now,
        booking=current,
        site=current.site,
    )
    audit_record(actor=actor, action="booking.ready_for_discharge", obj=current, details={"from": previous})


@transaction.atomic
def booking_mark_ready_for_discharge(*, actor: Any, booking: Booking) -> Booking:
    """in_recovery → ready_for_discharge once the procedure type's minimum recovery has passed
    since recovery started; refused with the minutes remaining before that. ``actor`` may be
    None (the recovery timer)."""
    current = locked_booking(booking)
    _ready_for_discharge(current, actor=actor, now=timezone.now())
    return current


def recovery_timers_run(*, now: datetime) -> int:
    """Mark every case whose minimum recovery has passed ready for discharge; returns how many.

    For a periodic task. Each case is its own transaction, so one slow row does not hold the
    others back; a case someone moved on meanwhile is skipped. Running it twice marks and
    notifies nothing twice.
    """
    require_aware(now, "now")
    candidates = (
        Booking.objects.filter(status=S.IN_RECOVERY, recovery_started_at__lte=now)
        .select_related("procedure_type")
        .order_by("recovery_started_at", "id")
    )
    due = [b.pk for b in candidates if _recovery_due(b) <= now]
    marked = 0
    for pk in due:
        with transaction.atomic():
            current = locked_booking(pk)
            if current.status != S.IN_RECOVERY or _recovery_due(current) > now:
                continue
            _ready_for_discharge(current, actor=None, now=now)
            marked += 1
    return marked


def _release_after(current: Booking, now: datetime) -> tuple[list[int], list[int]]:
    """Shorten legs running past ``now`` to end then; deactivate legs not yet begun."""
    ongoing = current.legs.filter(is_active=True, ends_at__gt=now)
    shortened = list(ongoing.filter(starts_at__lt=now).values_list("pk", flat=True))
    released = list(ongoing.filter(starts_at__gte=now).values_list("pk", flat=True))
    Allocation.objects.filter(pk__in=shortened).update(ends_at=now)
    Allocation.objects.filter(pk__in=released).update(is_active=False)
    return shortened, released


@transaction.atomic
def booking_discharge(*, actor: Any, booking: Booking, escort_present: bool) -> Booking:
    """ready_for_discharge → discharged. A patient who needed an escort leaves only with them:
    refused (BookingInvalid) unless ``escort_present`` is True. Frees what is left of the
    case's legs from now on."""
    current = locked_booking(booking)
    require_status(current, DISCHARGE_FROM, "be discharged")
    if escort_required(current) and escort_present is not True:
        raise BookingInvalid(
            [
                Problem(
                    "escort_not_present",
                    "This patient may leave only with their escort; confirm the escort is here.",
                    field="escort_present",
                )
            ]
        )
    now = timezone.now()
    if escort_present is True:
        checklist, _ = CaseChecklist.objects.get_or_create(booking=current)
        checklist.escort_present_at = now
        checklist.save(update_fields=["escort_present_at", "updated_at"])
    shortened, released = _release_after(current, now)
    if current.starts_at < now < current.ends_at:
        current.ends_at = now
        current.save(update_fields=["ends_at"])
    # Announced with the legs the case used: those not begun are let go, the rest end by now.
    previous = advance(current, status=S.DISCHARGED, stamp="discharged_at", now=now)
    audit_record(
        actor=actor,
        action="booking.discharge",
        obj=current,
        details={
            "from": previous,
            "escort_present": escort_present is True,
            "legs_shortened": shortened,
            "legs_released": released,
        },
    )
    return current


@transaction.atomic
def booking_no_show(*, actor: Any, booking: Booking) -> Booking:
    """scheduled or checked_in → no_show, once the patient's arrival time has passed. Frees
    every leg and withdraws the notifications not yet sent."""
    current = locked_booking(booking)
    require_status(current, NO_SHOW_FROM, "be marked a no-show")
    now = timezone.now()
    if now < current.arrival_at:
        raise InvalidTransition(
            f"The patient is due at {local_hhmm(current.arrival_at, current.site.zone)}; "
            "a no-show is recorded after that.",
            details={
                "status": current.status,
                "allowed_from": sorted(NO_SHOW_FROM),
                "not_before": local_iso(current.arrival_at, current),
            },
        )
    held = list(current.legs.filter(is_active=True))
    released = current.legs.filter(is_active=True).update(is_active=False)
    skipped = skip_pending(booking=current)
    previous = advance(current, status=S.NO_SHOW, stamp=None, now=now, legs=held)
    audit_record(
        actor=actor,
        action="booking.no_show",
        obj=current,
        details={"from": previous, "legs_released": released, "notifications_skipped": skipped},
    )
    return current
