"""The day of the procedure: status transitions, the readiness gate, the checklist and the
records it reads, and what a case that runs late does to its recovery bay.

Every transition is one transaction that first locks the booking row (``select_for_update``),
so two people pressing the same button queue and the second one sees the new status; it
checks the status it starts from, stamps the step's time, and writes an audit record holding
ids and codes only. Who acted is the audit record's actor; ``None`` is the system.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from core.audit import audit_record
from rooms.models import RecoveryBay
from scheduling.availability.search import ROLE_NOUN
from scheduling.errors import (
    BookingInvalid,
    InvalidTransition,
    OverrideNotPermitted,
    Problem,
    ReadinessNotMet,
)
from scheduling.guard import is_overlap_violation, lock_keys
from scheduling.legs import room_minutes
from scheduling.models import (
    ACTIVE_STATUSES,
    Alert,
    AlertKind,
    Allocation,
    Booking,
    BookingStatus,
    CaseChecklist,
    ImagingModality,
    ImagingStudy,
    LabResult,
    LabTest,
    LegRole,
    NotificationKind,
    Patient,
    PregnancyStatus,
)
from scheduling.outbox import enqueue_notification, skip_pending
from scheduling.readiness import (
    escort_required,
    evaluate_with,
    failing_codes,
    load_readiness,
)
from scheduling.resources import local_hhmm, local_span, resource_name
from scheduling.services.holds import holds_release_expired
from scheduling.validation import require_aware

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

# Legs that end when the procedure ends; the room adds its turnover after them.
ROOM_PHASE_ROLES = frozenset(
    {
        LegRole.C_ARM,
        LegRole.RF_GENERATOR,
        LegRole.PHYSICIAN,
        LegRole.RAD_TECH,
        LegRole.SEDATION_NURSE,
        LegRole.ANESTHESIA,
        LegRole.DEVICE_REP,
    }
)


def _max_length(model: type[models.Model], name: str) -> int:
    column = model._meta.get_field(name)
    assert isinstance(column, models.CharField)
    assert column.max_length is not None
    return column.max_length


OVERRIDE_REASON_MAX = _max_length(CaseChecklist, "override_reason")


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def _locked(booking: Booking | int) -> Booking:
    pk = booking if isinstance(booking, int) else booking.pk
    # of=("self",): patient, site and procedure type are read, not locked, so a case's
    # transition never waits on another case of the same patient or site.
    return (
        Booking.objects.select_for_update(of=("self",)).select_related("procedure_type", "patient", "site").get(pk=pk)
    )


def _local_iso(moment: datetime, current: Booking) -> str:
    return moment.astimezone(current.site.zone).isoformat()


def _require(current: Booking, allowed: frozenset[str], doing: str) -> None:
    if current.status not in allowed:
        raise InvalidTransition(
            f"A {current.get_status_display().lower()} case cannot {doing}.",
            details={"status": current.status, "allowed_from": sorted(allowed)},
        )


def _advance(current: Booking, *, status: str, stamp: str | None, now: datetime) -> str:
    previous = current.status
    current.status = status
    fields = ["status", "updated_at"]
    if stamp is not None:
        setattr(current, stamp, now)
        fields.append(stamp)
    current.save(update_fields=fields)
    return previous


# --- transitions ----------------------------------------------------------------------------


@transaction.atomic
def booking_check_in(*, actor: Any, booking: Booking) -> Booking:
    """scheduled → checked_in, on the case's local day only: an early click on next week's
    case would otherwise start its day's workflow."""
    current = _locked(booking)
    _require(current, CHECK_IN_FROM, "be checked in")
    now = timezone.now()
    zone = current.site.zone
    case_day = current.starts_at.astimezone(zone).date()
    if now.astimezone(zone).date() != case_day:
        raise InvalidTransition(
            f"The case is on {case_day.isoformat()}; patients check in on the day of their case.",
            details={"status": current.status, "allowed_from": sorted(CHECK_IN_FROM), "case_day": case_day.isoformat()},
        )
    previous = _advance(current, status=S.CHECKED_IN, stamp="checked_in_at", now=now)
    audit_record(actor=actor, action="booking.check_in", obj=current, details={"from": previous})
    return current


@transaction.atomic
def booking_mark_ready(
    *, actor: Any, booking: Booking, override_reason: str | None = None, may_override: bool = False
) -> Booking:
    """checked_in → ready when the readiness checklist passes.

    If it does not, an override needs ``may_override`` (the caller decides who may: a
    physician or an administrator) and a non-empty reason; it is recorded on the checklist
    and audited with the codes of the items it overrode. A reason sent while the checklist
    passes overrides nothing and is not stored.
    Raises ReadinessNotMet (no reason), OverrideNotPermitted, BookingInvalid (reason too long).
    """
    current = _locked(booking)
    _require(current, READY_FROM, "be marked ready")
    now = timezone.now()
    inputs = load_readiness(current)
    items = evaluate_with(current, inputs, now=now)
    failing = failing_codes(items)
    reason = (override_reason or "").strip()
    if failing:
        if not reason:
            raise ReadinessNotMet([item.as_dict() for item in items if not item.passes])
        if not may_override:
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
        checklist.override_by = _user(actor)
        checklist.override_at = now
        checklist.save(update_fields=["override_reason", "override_by", "override_at", "updated_at"])
        audit_record(actor=actor, action="booking.readiness_override", obj=current, details={"failing": failing})
    previous = _advance(current, status=S.READY, stamp="ready_at", now=now)
    audit_record(
        actor=actor, action="booking.ready", obj=current, details={"from": previous, "overridden": bool(failing)}
    )
    return current


@transaction.atomic
def booking_start_procedure(*, actor: Any, booking: Booking) -> Booking:
    """ready → in_procedure. The checklist is evaluated again (consent or fasting can change
    between the gate and the room) unless the gate was overridden."""
    current = _locked(booking)
    _require(current, START_PROCEDURE_FROM, "start its procedure")
    now = timezone.now()
    inputs = load_readiness(current)
    overridden = inputs.checklist is not None and inputs.checklist.override_at is not None
    if not overridden:
        items = evaluate_with(current, inputs, now=now)
        if failing_codes(items):
            raise ReadinessNotMet([item.as_dict() for item in items if not item.passes])
    previous = _advance(current, status=S.IN_PROCEDURE, stamp="procedure_started_at", now=now)
    audit_record(actor=actor, action="booking.start_procedure", obj=current, details={"from": previous})
    return current


@transaction.atomic
def booking_start_recovery(*, actor: Any, booking: Booking) -> Booking:
    """in_procedure (procedure ended) → in_recovery; the minimum recovery counts from now."""
    current = _locked(booking)
    _require(current, START_RECOVERY_FROM, "start recovery")
    if current.procedure_ended_at is None:
        raise InvalidTransition(
            "End the procedure before starting recovery.",
            details={"status": current.status, "allowed_from": sorted(START_RECOVERY_FROM), "missing": "end_procedure"},
        )
    previous = _advance(current, status=S.IN_RECOVERY, stamp="recovery_started_at", now=timezone.now())
    audit_record(actor=actor, action="booking.start_recovery", obj=current, details={"from": previous})
    return current


def _recovery_due(current: Booking) -> datetime:
    assert current.recovery_started_at is not None  # set with the in_recovery status
    return current.recovery_started_at + timedelta(minutes=current.procedure_type.recovery_minutes)


def _ready_for_discharge(current: Booking, *, actor: Any, now: datetime) -> None:
    _require(current, READY_FOR_DISCHARGE_FROM, "be marked ready for discharge")
    due = _recovery_due(current)
    if now < due:
        remaining = math.ceil((due - now).total_seconds() / 60)
        raise InvalidTransition(
            f"Minimum recovery is {current.procedure_type.recovery_minutes} min: {remaining} min remain "
            f"(until {local_hhmm(due, current.site.zone)}).",
            details={"status": current.status, "remaining_minutes": remaining, "not_before": _local_iso(due, current)},
        )
    previous = _advance(current, status=S.READY_FOR_DISCHARGE, stamp="ready_for_discharge_at", now=now)
    # Written with the status so the front desk hears of every case that becomes ready, once.
    enqueue_notification(
        kind=NotificationKind.READY_FOR_DISCHARGE,
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
    current = _locked(booking)
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
            current = _locked(pk)
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
    current = _locked(booking)
    _require(current, DISCHARGE_FROM, "be discharged")
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
    previous = _advance(current, status=S.DISCHARGED, stamp="discharged_at", now=now)
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
    current = _locked(booking)
    _require(current, NO_SHOW_FROM, "be marked a no-show")
    now = timezone.now()
    if now < current.arrival_at:
        raise InvalidTransition(
            f"The patient is due at {local_hhmm(current.arrival_at, current.site.zone)}; "
            "a no-show is recorded after that.",
            details={
                "status": current.status,
                "allowed_from": sorted(NO_SHOW_FROM),
                "not_before": _local_iso(current.arrival_at, current),
            },
        )
    released = current.legs.filter(is_active=True).update(is_active=False)
    skipped = skip_pending(booking=current)
    previous = _advance(current, status=S.NO_SHOW, stamp=None, now=now)
    audit_record(
        actor=actor,
        action="booking.no_show",
        obj=current,
        details={"from": previous, "legs_released": released, "notifications_skipped": skipped},
    )
    return current


# --- running late ---------------------------------------------------------------------------


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
        alert = Alert.objects.create(site=self.current.site, booking=self.current, kind=kind, message=message[:500])
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
            kind=NotificationKind.RECOVERY_CLASH,
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
        if blocker is not None:
            return f"booking {blocker.booking_id} holds it {local_span(blocker.starts_at, blocker.ends_at, self.zone)}"
        return "another booking holds it"

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
        noun = ROLE_NOUN[LegRole(leg.role)]
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
    current = _locked(booking)
    _require(current, END_PROCEDURE_FROM, "end its procedure")
    if current.procedure_ended_at is not None:
        raise InvalidTransition(
            "The procedure has already ended.",
            details={
                "status": current.status,
                "allowed_from": sorted(END_PROCEDURE_FROM),
                "procedure_ended_at": _local_iso(current.procedure_ended_at, current),
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
        if leg.role in ROOM_PHASE_ROLES:
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


# --- the checklist and the records it reads -------------------------------------------------

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
    current = _locked(booking)
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


LAB_VALUE_LIMIT = Decimal("100000")


@transaction.atomic
def lab_result_record(
    *, actor: Any, patient: Patient, test: str, value: Decimal | int | str, taken_at: datetime
) -> LabResult:
    """Record an INR or platelet count (platelets in thousand per microlitre)."""
    problems = []
    if test not in LabTest.values:
        problems.append(Problem("invalid_choice", f"Unknown lab test {test!r}.", field="test"))
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal("NaN")
    if (
        not amount.is_finite()
        or not Decimal(0) <= amount < LAB_VALUE_LIMIT
        or amount != amount.quantize(Decimal("0.01"))
    ):
        problems.append(
            Problem("invalid_value", "The value must be 0 to 99999.99, two decimals at most.", field="value")
        )
    if timezone.is_naive(taken_at):
        problems.append(Problem("naive_datetime", "taken_at must include a UTC offset.", field="taken_at"))
    elif taken_at > timezone.now():
        problems.append(Problem("in_future", "A lab result cannot be taken in the future.", field="taken_at"))
    if problems:
        raise BookingInvalid(problems)
    lab = LabResult.objects.create(patient=patient, test=test, value=amount, taken_at=taken_at)
    audit_record(actor=actor, action="lab_result.create", obj=lab, details={"patient": patient.pk, "test": test})
    return lab


@transaction.atomic
def imaging_study_record(*, actor: Any, patient: Patient, modality: str, performed_on: date) -> ImagingStudy:
    """Record that a study (MRI with STIR, CT or bone scan) is on file for the patient."""
    problems = []
    if modality not in ImagingModality.values:
        problems.append(Problem("invalid_choice", f"Unknown imaging modality {modality!r}.", field="modality"))
    # The clinic's date may run up to 14 hours ahead of UTC; later than that is in the future.
    latest = (timezone.now() + timedelta(hours=14)).date()
    if performed_on > latest:
        problems.append(Problem("in_future", "A study cannot be performed in the future.", field="performed_on"))
    if problems:
        raise BookingInvalid(problems)
    study = ImagingStudy.objects.create(patient=patient, modality=modality, performed_on=performed_on)
    audit_record(
        actor=actor, action="imaging_study.create", obj=study, details={"patient": patient.pk, "modality": modality}
    )
    return study


@transaction.atomic
def alert_resolve(*, actor: Any, alert: Alert) -> Alert:
    """Mark an alert dealt with; a second resolve is refused so the first one's author stands."""
    current = Alert.objects.select_for_update().get(pk=alert.pk)
    if current.resolved_at is not None:
        raise InvalidTransition(
            "The alert is already resolved.", details={"resolved_at": current.resolved_at.isoformat()}
        )
    current.resolved_at = timezone.now()
    current.resolved_by = _user(actor)
    current.save(update_fields=["resolved_at", "resolved_by"])
    audit_record(
        actor=actor, action="alert.resolve", obj=current, details={"kind": current.kind, "booking": current.booking_id}
    )
    return current
