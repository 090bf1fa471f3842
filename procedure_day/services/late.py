"""A case that runs late: moving its legs to the real end of the procedure, and saying what that
does to the cases after it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import audit_record
from core.dates import require_aware
from core.errors import BookingInvalid, InvalidTransition, Problem
from outbox.models import Alert, AlertKind
from outbox.services import alert_raise, enqueue_notification
from procedure_day.kinds import ProcedureDayMessage
from procedure_day.services.common import (
    END_PROCEDURE_FROM,
    local_iso,
    locked_booking,
    require_status,
)
from rooms.models import RecoveryBay
from scheduling.events import case_event
from scheduling.guard import is_overlap_violation, lock_keys
from scheduling.kinds import SchedulingEvent
from scheduling.legroles import LEG_ROLES
from scheduling.legs import room_minutes
from scheduling.models import Allocation, Booking, LegRole
from scheduling.services.holds import holds_release_expired
from scheduling.words import local_hhmm, local_span, resource_name


@dataclass(frozen=True)
class LegMove:
    leg_id: int
    role: str
    kind: str
    from_resource: int
    to_resource: int
    old: tuple[datetime, datetime]
    new: tuple[datetime, datetime]

    def as_dict(self) -> dict[str, Any]:
        return {
            "leg": self.leg_id,
            "role": self.role,
            "kind": self.kind,
            "from": {"id": self.from_resource, "start": self.old[0].isoformat(), "end": self.old[1].isoformat()},
            "to": {"id": self.to_resource, "start": self.new[0].isoformat(), "end": self.new[1].isoformat()},
        }


@dataclass
class EndProcedureResult:
    """What ending the procedure did: legs moved, legs released (their window was entirely
    after the end), legs kept as booked because the resource is taken for the new window, and
    the alerts raised (a late case's kept legs each raise one)."""

    booking: Booking
    moved: list[LegMove] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def _first_clash(column: str, resource_id: int, start: datetime, end: datetime, leg_id: int) -> Allocation | None:
    return (
        Allocation.objects.filter(**{f"{column}_id": resource_id}, is_active=True, starts_at__lt=end, ends_at__gt=start)
        .exclude(pk=leg_id)
        .order_by("starts_at", "id")
        .first()
    )


class _LateEnd:
    """Moves one case's legs to the actual end of its procedure, in the caller's transaction."""

    def __init__(self, current: Booking, *, end: datetime, now: datetime, bays: list[RecoveryBay]) -> None:
        procedure = current.procedure_type
        self.current = current
        self.end = end
        self.now = now
        self.bays = bays
        self.zone = current.site.zone
        self.turnover = timedelta(minutes=procedure.turnover_minutes)
        self.recovery = timedelta(minutes=procedure.recovery_minutes)
        planned_end = current.starts_at + timedelta(minutes=room_minutes(procedure, current.levels))
        self.minutes_late = math.floor((end - planned_end).total_seconds() / 60)
        self.result = EndProcedureResult(booking=current)

    # Moving a leg -------------------------------------------------------------------------

    def _move(
        self, leg: Allocation, start: datetime, end: datetime, resource_id: int | None = None
    ) -> tuple[bool, Allocation | None]:
        """Try to give ``leg`` the window (and resource). Returns (done, the leg in the way);
        the leg in the way is None when done, or when the database refused without one to name."""
        column = leg.resource_column
        target = resource_id if resource_id is not None else leg.resource_id
        shrinking = target == leg.resource_id and start >= leg.starts_at and end <= leg.ends_at
        if not shrinking:
            clash = _first_clash(column, target, start, end, leg.pk)
            if clash is not None:
                return False, clash
        try:
            # A savepoint: a refusal by the database must not poison the case's transaction.
            with transaction.atomic():
                Allocation.objects.filter(pk=leg.pk).update(starts_at=start, ends_at=end, **{f"{column}_id": target})
        except IntegrityError as exc:
            if not is_overlap_violation(exc):
                raise
            return False, _first_clash(column, target, start, end, leg.pk)
        old = (leg.starts_at, leg.ends_at)
        self.result.moved.append(LegMove(leg.pk, leg.role, column, leg.resource_id, target, old, (start, end)))
        leg.starts_at, leg.ends_at = start, end
        setattr(leg, f"{column}_id", target)
        return True, None

    def _release(self, leg: Allocation) -> None:
        Allocation.objects.filter(pk=leg.pk).update(is_active=False)
        leg.is_active = False
        self.result.released.append(leg.pk)

    def _alert(self, kind: str, message: str) -> Alert:
        alert = alert_raise(site=self.current.site, booking=self.current, kind=kind, message=message)
        self.result.alerts.append(alert)
        return alert

    # The legs ------------------------------------------------------------------------------

    def follow(self, leg: Allocation, start: datetime, end: datetime) -> None:
        """A leg that should end with the procedure (plus turnover for the room)."""
        if (start, end) == (leg.starts_at, leg.ends_at):
            return
        if end <= start:
            # The procedure ended before this leg began (the physician was never called in).
            self._release(leg)
            return
        done, blocker = self._move(leg, start, end)
        if done:
            return
        self.result.kept.append(leg.pk)
        self._alert(AlertKind.LEG_CLASH, self._leg_clash_message(leg, end, blocker))

    def recovery_bay(self, leg: Allocation) -> None:
        start, end = self.end, self.end + self.recovery
        if (start, end) == (leg.starts_at, leg.ends_at):
            return
        done, blocker = self._move(leg, start, end)
        if done or self._other_bay(leg, start, end):
            return
        self.result.kept.append(leg.pk)
        if leg.ends_at >= end:
            # Ended early and no bay is free sooner: the planned bay still covers the whole
            # recovery, the patient just waits for it. Nothing for the charge nurse to do.
            return
        self._alert(AlertKind.RECOVERY_CLASH, self._recovery_clash_message(leg, start, end, blocker))
        enqueue_notification(
            kind=ProcedureDayMessage.RECOVERY_CLASH,
            dedupe_key=f"recovery_clash:booking:{self.current.pk}",
            due_at=self.now,
            booking=self.current,
            site=self.current.site,
        )

    def _other_bay(self, leg: Allocation, start: datetime, end: datetime) -> bool:
        others = [bay for bay in self.bays if bay.pk != leg.bay_id]
        busy = set(
            Allocation.objects.filter(
                bay_id__in=[bay.pk for bay in others], is_active=True, starts_at__lt=end, ends_at__gt=start
            ).values_list("bay_id", flat=True)
        )
        for bay in others:
            if bay.pk not in busy and self._move(leg, start, end, resource_id=bay.pk)[0]:
                leg.bay = bay
                return True
        return False

    def patient(self, leg: Allocation, recovery_leg: Allocation | None) -> None:
        # The patient stays until the end of recovery: the new one, or the planned bay when it
        # was kept and ends later.
        end = self.end + self.recovery
        if recovery_leg is not None and recovery_leg.is_active:
            end = max(end, recovery_leg.ends_at)
        self.follow(leg, leg.starts_at, end)

    # Messages: ids, resource names and local times; never the patient's name. -------------

    def _late_phrase(self) -> str:
        ended = local_hhmm(self.end, self.zone)
        return f"Booking {self.current.pk} ran {self.minutes_late} min late (procedure ended {ended})."

    def _holder(self, blocker: Allocation | None) -> str:
        """The case in the way, with its physician and start: who the charge nurse calls."""
        if blocker is None:
            return "another booking holds it"
        case = Booking.objects.filter(pk=blocker.booking_id).values_list("starts_at", flat=True).first()
        physician = (
            Allocation.objects.filter(booking_id=blocker.booking_id, role=LegRole.PHYSICIAN, is_active=True)
            .select_related("staff")
            .first()
        )
        span = local_span(blocker.starts_at, blocker.ends_at, self.zone)
        whose = f"{physician.staff}'s case" if physician is not None and physician.staff is not None else "a case"
        at = f" at {local_hhmm(case, self.zone)}" if case is not None else ""
        return f"booking {blocker.booking_id} holds it {span}, {whose}{at}"

    def _recovery_clash_message(
        self, leg: Allocation, start: datetime, end: datetime, blocker: Allocation | None
    ) -> str:
        bay = str(leg.bay)
        return (
            f"{self._late_phrase()} Its recovery needs a bay {local_span(start, end, self.zone)}: {bay} is taken "
            f"({self._holder(blocker)}) and no other recovery bay is free then. Recovery stays booked in {bay} "
            f"{local_span(leg.starts_at, leg.ends_at, self.zone)}; find a bed for the rest."
        )

    def _leg_clash_message(self, leg: Allocation, end: datetime, blocker: Allocation | None) -> str:
        kept_until = local_hhmm(leg.ends_at, self.zone)
        if leg.role == LegRole.PATIENT:
            return (
                f"{self._late_phrase()} The patient stays until {local_hhmm(end, self.zone)} but has another case "
                f"({self._holder(blocker)}); that case cannot start on time."
            )
        name = resource_name(getattr(leg, leg.resource_column))
        noun = LEG_ROLES[leg.role].noun
        return (
            f"{self._late_phrase()} {name} is needed as {noun} until {local_hhmm(end, self.zone)}, but "
            f"{self._holder(blocker)}. It stays booked until {kept_until}; the next case there may start late."
        )


def _check_end_time(current: Booking, end: datetime, now: datetime) -> None:
    require_aware(end, "ended_at")
    problems = []
    if end > now:
        problems.append(Problem("ended_in_future", "The procedure cannot end in the future.", field="ended_at"))
    if current.procedure_started_at is not None and end <= current.procedure_started_at:
        started = local_hhmm(current.procedure_started_at, current.site.zone)
        problems.append(
            Problem(
                "ended_before_start", f"The procedure started at {started}; it must end after that.", field="ended_at"
            )
        )
    if problems:
        raise BookingInvalid(problems)


@transaction.atomic
def booking_end_procedure(*, actor: Any, booking: Booking, ended_at: datetime | None = None) -> EndProcedureResult:
    """Record the end of the procedure (``ended_at``, default now) and move the legs to it.

    Room-phase legs end at the actual end, the room after its turnover; the recovery bay leg
    moves to ``[end, end + recovery)`` and the patient's leg follows it. A leg whose resource
    is taken for the new window is never forced: the recovery leg tries every other active bay
    of the site (name order), else it stays as booked and a RECOVERY_CLASH alert and
    notification go to the site; any other leg stays as booked with a LEG_CLASH alert.
    Ending early only shortens (or releases) legs, except the recovery leg, which moves earlier
    when a bay is free then.

    Locking: the booking row, then advisory locks on every resource its legs hold and on every
    active recovery bay of the site, in ascending order (on SQLite the write lock covers it).
    """
    # An expired hold must not stop the recovery leg from moving into its old place.
    holds_release_expired(now=timezone.now())
    current = locked_booking(booking)
    require_status(current, END_PROCEDURE_FROM, "end its procedure")
    if current.procedure_ended_at is not None:
        raise InvalidTransition(
            "The procedure has already ended.",
            details={
                "status": current.status,
                "allowed_from": sorted(END_PROCEDURE_FROM),
                "procedure_ended_at": local_iso(current.procedure_ended_at, current),
            },
        )
    now = timezone.now()
    end = ended_at if ended_at is not None else now
    _check_end_time(current, end, now)

    legs = list(current.legs.filter(is_active=True).select_related("room", "equipment", "staff", "bay").order_by("id"))
    bays = list(RecoveryBay.objects.filter(site=current.site, is_active=True).order_by("name", "id"))
    lock_keys({(leg.resource_column, leg.resource_id) for leg in legs} | {("bay", bay.pk) for bay in bays})

    late = _LateEnd(current, end=end, now=now, bays=bays)
    by_role: dict[str, list[Allocation]] = {}
    for leg in legs:
        by_role.setdefault(leg.role, []).append(leg)
    for leg in legs:
        if LEG_ROLES[leg.role].ends_with_procedure:
            late.follow(leg, leg.starts_at, end)
        elif leg.role == LegRole.ROOM:
            late.follow(leg, leg.starts_at, end + late.turnover)
    recovery_leg = next(iter(by_role.get(LegRole.RECOVERY_BAY, [])), None)
    if recovery_leg is not None:
        late.recovery_bay(recovery_leg)
    for leg in by_role.get(LegRole.PATIENT, []):
        late.patient(leg, recovery_leg)

    current.procedure_ended_at = end
    current.ends_at = max(leg.ends_at for leg in legs if leg.is_active)
    current.save(update_fields=["procedure_ended_at", "ends_at", "updated_at"])
    # Other systems hear of the room, team and bay as they are now held.
    case_event(SchedulingEvent.BOOKING_UPDATED, current, legs=[leg for leg in legs if leg.is_active])
    result = late.result
    audit_record(
        actor=actor,
        action="booking.end_procedure",
        obj=current,
        details={
            "ended_at": end.isoformat(),
            "minutes_late": late.minutes_late,
            "moved": [move.as_dict() for move in result.moved],
            "released": result.released,
            "kept": result.kept,
            "alerts": [alert.pk for alert in result.alerts],
        },
    )
    return result
