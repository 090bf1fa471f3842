"""Writes on bookings. Each service is one transaction: all legs or none, plus its audit record."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from core import metrics
from core.audit import audit_record
from core.errors import BookingInvalid, InvalidTransition, Problem, SlotUnavailable
from patients.models import Patient
from rooms.models import Equipment, ProcedureRoom, RecoveryBay
from scheduling.availability.search import Pins, assign_resources, explain_start
from scheduling.guard import ensure_free, find_clashes, lock_resources, overlap_as_conflict
from scheduling.legs import LegSpec, plan_legs, resolve_sedation
from scheduling.models import ROLE_COLUMN, Allocation, Booking, BookingStatus, CancelReason, LegRole, ProcedureType
from scheduling.resources import ROLE_FIELD, BoundLeg, ResourceChoice
from scheduling.services.holds import hold_expiry, holds_release_expired
from scheduling.services.reminders import reminders_schedule, reminders_withdraw
from scheduling.validation import CaseContext, require_aware, validate_case
from staff.models import StaffMember

RESCHEDULABLE = frozenset({BookingStatus.HOLD, BookingStatus.SCHEDULED})
CANCELLABLE = frozenset({BookingStatus.HOLD, BookingStatus.SCHEDULED, BookingStatus.CHECKED_IN, BookingStatus.READY})


def bind_legs(
    plan: list[LegSpec], *, patient: Patient, resources: ResourceChoice, starts_at: datetime
) -> list[BoundLeg]:
    """Attach a resource to every planned leg; every role must be named."""
    bound: list[BoundLeg] = []
    missing: list[Problem] = []
    for spec in plan:
        resource = patient if spec.role == LegRole.PATIENT else resources.for_role(spec.role)
        if resource is None:
            missing.append(
                Problem(
                    "resource_missing",
                    f"Name a {spec.role.label.lower()} for this case.",
                    field=ROLE_FIELD[spec.role],
                    role=str(spec.role),
                )
            )
            continue
        start, end = spec.window(starts_at)
        bound.append(BoundLeg(spec=spec, resource=resource, starts_at=start, ends_at=end))
    if missing:
        raise BookingInvalid(missing)
    staff_seen: dict[int, LegRole] = {}
    for leg in bound:
        if leg.column == "staff":
            if leg.resource_id in staff_seen:
                raise BookingInvalid(
                    [
                        Problem(
                            "resource_reused",
                            f"{leg.resource} cannot be both {staff_seen[leg.resource_id].label.lower()} "
                            f"and {leg.role.label.lower()}.",
                            role=str(leg.role),
                        )
                    ]
                )
            staff_seen[leg.resource_id] = leg.role
    return bound


def _complete_resources(
    *,
    procedure_type: ProcedureType,
    patient: Patient,
    starts_at: datetime,
    levels: int,
    sedation: str | None,
    resources: ResourceChoice,
    site_id: int | None,
) -> ResourceChoice:
    """Fill every role left open with the engine's choice; raise SlotUnavailable if none fits."""
    sedation = resolve_sedation(procedure_type, sedation)
    plan = plan_legs(procedure_type, levels=levels, sedation=sedation)
    open_roles = [s.role for s in plan if s.role != LegRole.PATIENT and resources.for_role(s.role) is None]
    if not open_roles:
        return resources
    pinned = {str(s.role): obj.pk for s in plan if s.role != LegRole.PATIENT and (obj := resources.for_role(s.role))}
    if site_id is None and resources.room is not None:
        site_id = resources.room.site_id
    pins = Pins(site_id=site_id, by_role=pinned)
    picked = assign_resources(
        procedure_type=procedure_type, starts_at=starts_at, levels=levels, sedation=sedation, pins=pins, patient=patient
    )
    if picked is None:
        problems = explain_start(
            procedure_type=procedure_type,
            starts_at=starts_at,
            levels=levels,
            sedation=sedation,
            pins=pins,
            patient=patient,
        )
        conflicts = [conflict_from_problem(p) for p in problems]
        raise SlotUnavailable(conflicts or [{"role": None, "code": "no_combination", "message": "Nothing fits then."}])
    _, chosen = picked
    wanted: dict[str, list[int]] = {}
    for column, rid in chosen.values():
        wanted.setdefault(column, []).append(rid)
    loaded: dict[tuple[str, int], Any] = {}
    models_by_column: dict[str, Any] = {
        "room": ProcedureRoom.objects.select_related("site"),
        "equipment": Equipment.objects.all(),
        "bay": RecoveryBay.objects.all(),
        "staff": StaffMember.objects.all(),
    }
    for column, ids in wanted.items():
        for obj in models_by_column[column].filter(pk__in=ids):
            loaded[(column, obj.pk)] = obj
    result = dataclasses.replace(resources)
    for role in open_roles:
        setattr(result, ROLE_FIELD[role], loaded[chosen[str(role)]])
    return result


def conflict_from_problem(problem: Problem) -> dict[str, Any]:
    """A reason from the engine in the same shape as a clash found by the guard."""
    conflict: dict[str, Any] = {"role": problem.role, "code": problem.code, "message": problem.message}
    clashes = problem.extra.get("clashes") or []
    if clashes:
        conflict.update(resource=clashes[0]["resource"], clashing=clashes[0]["clashing"])
    if "requested" in problem.extra:
        conflict["requested"] = problem.extra["requested"]
    return conflict


def _write_legs(booking: Booking, legs: list[BoundLeg]) -> list[Allocation]:
    return Allocation.objects.bulk_create(
        Allocation(
            booking=booking,
            role=leg.role,
            starts_at=leg.starts_at,
            ends_at=leg.ends_at,
            is_active=True,
            # A hold's legs stop blocking when it expires (rescheduling a hold keeps its expiry).
            expires_at=booking.hold_expires_at if booking.status == BookingStatus.HOLD else None,
            **{ROLE_COLUMN[leg.role]: leg.resource},
        )
        for leg in legs
    )


def _prepare(
    *,
    procedure_type: ProcedureType,
    patient: Patient,
    starts_at: datetime,
    levels: int,
    sedation: str | None,
    resources: ResourceChoice,
) -> tuple[CaseContext, str]:
    require_aware(starts_at, "start")
    sedation = resolve_sedation(procedure_type, sedation)
    if not procedure_type.is_active:
        raise BookingInvalid(
            [Problem("procedure_inactive", f"{procedure_type.name} is not offered.", field="procedure_type")]
        )
    plan = plan_legs(procedure_type, levels=levels, sedation=sedation)
    legs = bind_legs(plan, patient=patient, resources=resources, starts_at=starts_at)
    room = resources.room
    assert room is not None  # bind_legs requires it: every procedure has a room leg
    ctx = CaseContext(procedure_type=procedure_type, site=room.site, room=room, legs=legs)
    return ctx, sedation


def _check_and_write(ctx: CaseContext, booking: Booking, *, allow_past: bool, exclude_booking_id: int | None) -> None:
    lock_resources(ctx.legs)
    problems = validate_case(ctx, allow_past=allow_past)
    if problems:
        raise BookingInvalid(problems)
    ensure_free(ctx.legs, ctx.site.zone, exclude_booking_id=exclude_booking_id)
    with overlap_as_conflict(ctx.legs, ctx.site.zone):
        if booking.pk is None:
            booking.save()
            _remember_legs(booking, _write_legs(booking, ctx.legs))
        else:
            booking.save(update_fields=["starts_at", "ends_at", "arrival_at", "site", "updated_at"])
            _write_legs(booking, ctx.legs)


def _remember_legs(booking: Booking, legs: list[Allocation]) -> None:
    """Keep a new booking's legs on it, as a prefetch would: the caller renders its answer from
    what was written instead of reading it back (two queries on the booking path)."""
    cached = booking.legs.all()
    cached._result_cache = sorted(legs, key=lambda leg: (leg.starts_at, leg.pk or 0))
    cached._prefetch_done = True  # type: ignore[attr-defined]
    booking._prefetched_objects_cache = {"legs": cached}  # type: ignore[attr-defined]


def _span(legs: list[BoundLeg]) -> tuple[datetime, datetime, datetime]:
    """(room start, end of the last leg, patient arrival)."""
    room = next(leg for leg in legs if leg.role == LegRole.ROOM)
    patient = next(leg for leg in legs if leg.role == LegRole.PATIENT)
    return room.starts_at, max(leg.ends_at for leg in legs), patient.starts_at


def _count(action: str) -> None:
    transaction.on_commit(lambda: metrics.bookings.labels(action).inc())


def booking_create(
    *,
    actor: Any,
    patient: Patient,
    procedure_type: ProcedureType,
    starts_at: datetime,
    resources: ResourceChoice,
    levels: int = 1,
    sedation: str | None = None,
    status: str = BookingStatus.SCHEDULED,
    allow_past: bool = False,
    site_id: int | None = None,
) -> Booking:
    """Book a case. Resources named in ``resources`` are pinned; the availability engine picks
    the rest (at ``site_id`` if given), inside this transaction and under its locks.

    Preconditions: ``starts_at`` is aware. Locks every resource (advisory locks on PostgreSQL, the IMMEDIATE write
    lock on SQLite) before checking for clashes, so the check and the insert are atomic.
    Raises BookingInvalid (rules) or SlotUnavailable (a clash); nothing is written then.
    Returns the booking with its legs, their resources, site, patient and procedure loaded.
    """
    if status not in (BookingStatus.HOLD, BookingStatus.SCHEDULED):
        raise BookingInvalid([Problem("invalid_status", "A new booking is a hold or scheduled.", field="status")])
    require_aware(starts_at, "start")
    with transaction.atomic():
        # Expired holds give their legs back before this booking looks for clashes.
        now = timezone.now()
        holds_release_expired(now=now)
        resources = _complete_resources(
            procedure_type=procedure_type,
            patient=patient,
            starts_at=starts_at,
            levels=levels,
            sedation=sedation,
            resources=resources,
            site_id=site_id,
        )
        ctx, sedation = _prepare(
            procedure_type=procedure_type,
            patient=patient,
            starts_at=starts_at,
            levels=levels,
            sedation=sedation,
            resources=resources,
        )
        start, end, arrival = _span(ctx.legs)
        booking = Booking(
            patient=patient,
            procedure_type=procedure_type,
            site=ctx.site,
            levels=levels,
            sedation=sedation,
            status=status,
            starts_at=start,
            ends_at=end,
            arrival_at=arrival,
            hold_expires_at=hold_expiry(now) if status == BookingStatus.HOLD else None,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        _check_and_write(ctx, booking, allow_past=allow_past, exclude_booking_id=None)
        audit_record(
            actor=actor,
            action="booking.create",
            obj=booking,
            details={
                "start": start.isoformat(),
                "procedure_type": procedure_type.code,
                "levels": levels,
                "sedation": sedation,
                "legs": _leg_summary(ctx.legs),
            },
        )
        # Outbox rows commit with the booking; a hold gets its reminders when confirmed.
        reminders_schedule(booking=booking, now=now, new=True)
    _count("create")
    return booking


def _leg_summary(legs: list[BoundLeg]) -> list[dict[str, Any]]:
    return [{"role": str(leg.role), "kind": leg.column, "id": leg.resource_id} for leg in legs]


def _current_resources(booking: Booking) -> ResourceChoice:
    choice = ResourceChoice()
    for leg in booking.legs.filter(is_active=True).select_related("room__site", "equipment", "staff", "bay"):
        if leg.role == LegRole.PATIENT:
            continue
        setattr(choice, ROLE_FIELD[LegRole(leg.role)], getattr(leg, leg.resource_column))
    return choice


def _locked(booking: Booking) -> Booking:
    return Booking.objects.select_for_update().select_related("procedure_type", "patient", "site").get(pk=booking.pk)


def booking_reschedule(
    *,
    actor: Any,
    booking: Booking,
    starts_at: datetime,
    resources: ResourceChoice | None = None,
    allow_past: bool = False,
) -> Booking:
    """Move a hold or scheduled case to ``starts_at``. A resource named in ``resources`` is
    pinned; every other resource the case holds is kept where it is still free at the new time,
    and the availability engine picks the rest, as for a new booking. If the kept set cannot
    take the case (hours, shifts, downtime), only the named resources are kept and the engine
    picks everything else. All or nothing: on any error the case keeps its old legs."""
    require_aware(starts_at, "start")
    with transaction.atomic():
        holds_release_expired(now=timezone.now())
        current = _locked(booking)
        if current.status not in RESCHEDULABLE:
            raise InvalidTransition(
                f"A {current.get_status_display().lower()} case cannot be rescheduled.",
                details={"status": current.status, "allowed_from": sorted(RESCHEDULABLE)},
            )
        pinned = dataclasses.replace(resources) if resources else ResourceChoice()
        kept = _still_free(current, starts_at=starts_at, pinned=pinned)
        old_start = current.starts_at
        # Its own legs no longer hold anything, so the engine may give the case any of them.
        current.legs.filter(is_active=True).update(is_active=False)
        try:
            with transaction.atomic():
                ctx = _move(current, starts_at=starts_at, resources=kept, allow_past=allow_past)
        except (BookingInvalid, SlotUnavailable):
            if kept == pinned:
                raise
            ctx = _move(current, starts_at=starts_at, resources=pinned, allow_past=allow_past)
        audit_record(
            actor=actor,
            action="booking.reschedule",
            obj=current,
            details={
                "from": old_start.isoformat(),
                "to": current.starts_at.isoformat(),
                "legs": _leg_summary(ctx.legs),
            },
        )
        reminders_schedule(booking=current)
    _count("reschedule")
    return current


def _still_free(current: Booking, *, starts_at: datetime, pinned: ResourceChoice) -> ResourceChoice:
    """The named resources, plus each resource the case holds that no other case holds at the
    new time."""
    kept = _current_resources(current)
    for name, value in pinned.named().items():
        setattr(kept, name, value)
    ctx, _ = _prepare(
        procedure_type=current.procedure_type,
        patient=current.patient,
        starts_at=starts_at,
        levels=current.levels,
        sedation=current.sedation,
        resources=kept,
    )
    named = pinned.named()
    for leg, _other in find_clashes(ctx.legs, exclude_booking_id=current.pk):
        field = ROLE_FIELD.get(leg.role)
        if field and field not in named:
            setattr(kept, field, None)
    return kept


def _move(current: Booking, *, starts_at: datetime, resources: ResourceChoice, allow_past: bool) -> CaseContext:
    completed = _complete_resources(
        procedure_type=current.procedure_type,
        patient=current.patient,
        starts_at=starts_at,
        levels=current.levels,
        sedation=current.sedation,
        resources=resources,
        site_id=resources.room.site_id if resources.room is not None else current.site_id,
    )
    ctx, _ = _prepare(
        procedure_type=current.procedure_type,
        patient=current.patient,
        starts_at=starts_at,
        levels=current.levels,
        sedation=current.sedation,
        resources=completed,
    )
    current.starts_at, current.ends_at, current.arrival_at = _span(ctx.legs)
    current.site = ctx.site
    _check_and_write(ctx, current, allow_past=allow_past, exclude_booking_id=current.pk)
    return ctx


def booking_cancel(*, actor: Any, booking: Booking, reason: str, note: str = "") -> Booking:
    """Cancel a case and free its resources. ``reason`` is a CancelReason code."""
    if reason not in CancelReason.values:
        raise BookingInvalid(
            [
                Problem(
                    "invalid_reason",
                    f"Unknown cancel reason {reason!r}.",
                    field="reason",
                    extra={"allowed": list(CancelReason.values)},
                )
            ]
        )
    with transaction.atomic():
        current = _locked(booking)
        if current.status not in CANCELLABLE:
            raise InvalidTransition(
                f"A {current.get_status_display().lower()} case cannot be cancelled.",
                details={"status": current.status, "allowed_from": sorted(CANCELLABLE)},
            )
        previous = current.status
        current.status = BookingStatus.CANCELLED
        current.cancel_reason = reason
        current.cancel_note = note
        current.save(update_fields=["status", "cancel_reason", "cancel_note", "updated_at"])
        current.legs.filter(is_active=True).update(is_active=False)
        reminders_withdraw(booking=current)
        audit_record(actor=actor, action="booking.cancel", obj=current, details={"from": previous, "reason": reason})
    _count("cancel")
    return current
