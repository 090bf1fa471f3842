"""Writes on bookings. Each service is one transaction: all legs or none, plus its audit record.

Every decision about whether the case may happen is the rulebook's (``scheduling.rules``): the
services read what it needs once, lock, ask it, and write what it decided. A refusal's words
and the engine's explanation are worked out after the transaction, so the locks are held only
for the reads and the inserts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone

from core import metrics
from core.audit import audit_event, audit_record
from core.dates import require_aware, to_local
from core.errors import BookingInvalid, InvalidTransition, OverrideNotPermitted, Problem, SlotUnavailable
from core.models import AuditEvent
from core.sql import PARENT_KEY, Children, FromParent, insert_tree
from outbox.models import ChangeEvent, Notification
from rooms.models import Equipment, ProcedureRoom, RecoveryBay, Site
from scheduling import policy
from scheduling.events import case_event, instant, unsaved_case_event
from scheduling.guard import PlannedLeg, clashes_after_refusal, is_lost_race, lock_keys
from scheduling.holdrule import HoldRow
from scheduling.kinds import SchedulingEvent
from scheduling.legroles import LEG_ROLES, LegRole
from scheduling.models import Allocation, Booking, BookingStatus, CancelReason
from scheduling.order import CaseOrder, level_count
from scheduling.request import CaseRequest, held_pins, request_of
from scheduling.rules import rulebook_for
from scheduling.rules.inputs import ResourceRow, SiteRow
from scheduling.rules.rulebook import CLASH_CODES, PIN_COLUMN, Decision, Refusal, Rulebook, to_min, window_bounds
from scheduling.services.holds import hold_expiry, holds_release_expired
from scheduling.services.reminders import new_reminders, reminders_schedule, reminders_withdraw
from staff.models import StaffMember

OVERRIDE_REASON_MAX = Booking._meta.get_field("anticoagulant_override_reason").max_length or 255
RESCHEDULABLE = frozenset({BookingStatus.HOLD, BookingStatus.SCHEDULED})
CANCELLABLE = frozenset({BookingStatus.HOLD, BookingStatus.SCHEDULED, BookingStatus.CHECKED_IN, BookingStatus.READY})


def conflict_of(problem: Problem) -> dict[str, Any]:
    """A problem in the shape of a clash: what a 409 lists under ``conflicts``."""
    conflict: dict[str, Any] = {"role": problem.role, "code": problem.code, "message": problem.message}
    if problem.resource is not None:
        conflict["resource"] = problem.resource
    clashes = problem.extra.get("clashes") or []
    if "clashing" in problem.extra:
        conflict["clashing"] = problem.extra["clashing"]
    elif clashes:
        conflict.update(resource=clashes[0]["resource"], clashing=clashes[0]["clashing"])
    if "requested" in problem.extra:
        conflict["requested"] = problem.extra["requested"]
    return conflict


def refusal_error(rulebook: Rulebook, refusal: Refusal, starts_at: datetime) -> Exception:
    """The error for a refusal, with the problems the reasons endpoint gives for the same
    request (``explain`` over the snapshot the decision read): 422 (BookingInvalid) when a rule
    is broken, 409 (SlotUnavailable) when other cases hold what the case needs. Pure: run it
    after the transaction, its locks released."""
    problems = rulebook.explain(starts_at) or refusal.problems + refusal.clashes
    if any(p.code not in (*CLASH_CODES, "leg_unavailable", "no_combination") for p in problems):
        return BookingInvalid(problems)
    conflicts = [conflict_of(p) for p in problems]
    return SlotUnavailable(conflicts or [{"role": None, "code": "no_combination", "message": "Nothing fits then."}])


@dataclass
class Written:
    """The legs a decision writes, with the rows they came from (for the answer)."""

    decision: Decision
    legs: list[tuple[str, ResourceRow, datetime, datetime]]

    @property
    def site(self) -> SiteRow:
        return self.decision.site

    def span(self) -> tuple[datetime, datetime, datetime]:
        """(room start, end of the last leg, patient arrival)."""
        room = next(start for role, _, start, _ in self.legs if role == LegRole.ROOM)
        arrival = next(start for role, _, start, _ in self.legs if role == LegRole.PATIENT)
        return room, max(end for _, _, _, end in self.legs), arrival

    def planned(self) -> list[PlannedLeg]:
        return [PlannedLeg(role, row.column, row.id, row.name, start, end) for role, row, start, end in self.legs]

    def summary(self) -> list[dict[str, Any]]:
        return [{"role": role, "kind": row.column, "id": row.id} for role, row, _, _ in self.legs]


def _written(rulebook: Rulebook, decision: Decision, starts_at: datetime) -> Written:
    legs = []
    for spec in rulebook.legs:
        row = decision.chosen[str(spec.role)]
        start, end = spec.window(starts_at)
        legs.append((str(spec.role), row, start, end))
    return Written(decision, legs)


def _instance(row: ResourceRow) -> Any:
    """The resource as the rules read it, for the answer (names and ids; not for saving)."""
    site_id = row.site_id or 0  # rooms, equipment and bays always belong to a site
    if row.column == "room":
        return ProcedureRoom(id=row.id, site_id=site_id, name=row.name, capabilities=list(row.capabilities))
    if row.column == "equipment":
        return Equipment(id=row.id, site_id=site_id, kind=row.role, name=row.name, room_id=row.room_id)
    if row.column == "bay":
        return RecoveryBay(id=row.id, site_id=site_id, name=row.name)
    return StaffMember(
        id=row.id,
        first_name=row.first_name,
        last_name=row.last_name,
        role=row.role,
        sedation_capable=row.sedation_capable,
    )


def _leg_rows(booking: Booking, written: Written) -> list[Allocation]:
    expires = booking.hold_expires_at if booking.status == BookingStatus.HOLD else None
    return [
        Allocation(
            booking=booking if booking.pk is not None else None,
            role=role,
            starts_at=start,
            ends_at=end,
            is_active=True,
            # A hold's legs stop blocking when it expires (rescheduling a hold keeps its expiry).
            expires_at=expires,
            **{f"{LEG_ROLES[role].column}_id": row.id},
        )
        for role, row, start, end in written.legs
    ]


def _remember_legs(booking: Booking, legs: list[Allocation], written: Written) -> None:
    """Keep the legs on the booking as a prefetch would, with their resources as the rules read
    them, so the answer is built from what was written rather than read back."""
    for leg, (_, row, _, _) in zip(legs, written.legs, strict=True):
        leg.booking = booking
        if row.column == "patient":
            leg.patient = booking.patient
        else:
            setattr(leg, LEG_ROLES[leg.role].column, _instance(row))
    cached = booking.legs.all()
    cached._result_cache = sorted(legs, key=lambda leg: (leg.starts_at, leg.pk or 0))
    cached._prefetch_done = True  # type: ignore[attr-defined]
    booking._prefetched_objects_cache = {"legs": cached}  # type: ignore[attr-defined]


def _sweep_if_needed(rulebook: Rulebook, written: Written, now: datetime) -> None:
    """Release expired holds whose legs stand where this case's legs go. Their time is up, so
    the rules treat them as free, but the database guard refuses an overlap until they are
    released; most bookings meet none and pay nothing for this."""
    for stale in rulebook.window.stale:
        for _, row, start, end in written.legs:
            if stale.key == row.key and stale.start < end and start < stale.end:
                holds_release_expired(now=now)
                return


def _site_iso(moment: datetime | None, booking: Booking) -> str | None:
    """An instant for a caller to read: with the offset of the case's site."""
    return to_local(moment, booking.site.zone).isoformat() if moment is not None else None


def _count(action: str) -> None:
    transaction.on_commit(lambda: metrics.bookings.labels(action).inc())


def _site_instance(row: SiteRow) -> Site:
    return row.instance()


def booking_create(
    *,
    actor: Any,
    request: CaseRequest,
    starts_at: datetime,
    status: str = BookingStatus.SCHEDULED,
    allow_past: bool = False,
    anticoagulant_override_reason: str | None = None,
    order: CaseOrder | None = None,
) -> Booking:
    """Book a case. Resources the request pins are checked by every rule; the availability
    engine picks the rest, inside this transaction and under its locks.

    A start inside the patient's anticoagulant or antiplatelet hold is refused unless
    ``anticoagulant_override_reason`` is given by a role the policy lets override (a physician
    or an administrator); the override is kept on the case and audited. A reason given for a
    start no hold touches overrides nothing and is not stored.

    Reads the inventory before the transaction; in it, advisory-locks every resource the case
    could use (on SQLite the IMMEDIATE transaction holds the write lock), reads the window, and
    writes the booking, its legs, its audit record and its reminders: one insert each.
    ``actor`` None is the system (the demo seed); a physician books as the case's physician
    (``policy.booking_pins``).
    Raises BookingInvalid (a rule, with every problem), SlotUnavailable (other cases hold what
    it needs), UnknownReference (a pinned id that does not exist), NotPermitted or
    OverrideNotPermitted (the role); nothing is written then.
    ``order`` (the referral's levels by name, indication, referrer, authorisation) is stored
    with the case; its named levels must match ``request.levels``.
    Returns the booking with its legs and their resources, its site, patient and procedure.
    """
    order = order or CaseOrder()
    level_count(order.level_names, request.levels)
    if status not in (BookingStatus.HOLD, BookingStatus.SCHEDULED):
        raise BookingInvalid([Problem("invalid_status", "A new booking is a hold or scheduled.", field="status")])
    require_aware(starts_at, "start")
    procedure = request.procedure_type
    if not procedure.is_active:
        raise BookingInvalid(
            [Problem("procedure_inactive", f"{procedure.name} is not offered.", field="procedure_type")]
        )
    if request.patient is None:
        raise BookingInvalid([Problem("patient_missing", "Name the patient.", field="patient")])
    override = override_reason(actor, anticoagulant_override_reason)
    if actor is not None:
        request = request.pinning(**policy.booking_pins(actor, dict(request.pins)))
    now = timezone.now()
    lo, hi = window_bounds(request.legs, to_min(starts_at))
    rulebook = rulebook_for(request, lo=lo, hi=hi, now=now, allow_past=allow_past, hold_override=bool(override))
    written: Written | None = None
    try:
        with transaction.atomic():
            rulebook.read_window(lock=True)
            decision = rulebook.decide(starts_at)
            if isinstance(decision, Decision):
                written = _written(rulebook, decision, starts_at)
                _sweep_if_needed(rulebook, written, now)
                booking = _insert(
                    actor, request, written, status=status, now=now, holds=rulebook.window.holds, order=order
                )
                _record_override(actor, booking, rulebook, written, override, now=now)
    except DatabaseError as exc:
        # Another writer skipped the locks and won; its legs are committed now.
        if written is None or not is_lost_race(exc):
            raise
        raise clashes_after_refusal(written.planned(), written.site.zone) from exc
    if written is None:
        assert isinstance(decision, Refusal)
        raise refusal_error(rulebook, decision, starts_at)
    _count("create")
    return booking


def override_reason(actor: Any, reason: str | None) -> str:
    """A stripped override reason, refused for a role that may not override."""
    text = (reason or "").strip()
    if not text:
        return ""
    if not policy.may_override(actor):
        raise OverrideNotPermitted(
            "Only a physician or an administrator may book inside an anticoagulant hold.",
            details={"override": "anticoagulant"},
        )
    if len(text) > OVERRIDE_REASON_MAX:
        raise BookingInvalid(
            [
                Problem(
                    "override_reason_too_long",
                    f"Keep the override reason to {OVERRIDE_REASON_MAX} characters.",
                    field="anticoagulant_override_reason",
                )
            ]
        )
    return text


def _record_override(
    actor: Any,
    booking: Booking,
    rulebook: Rulebook,
    written: Written,
    reason: str,
    *,
    now: datetime,
    keep: bool = False,
) -> None:
    """Keep a new override on the case, and audit it, when the hold it overrides was in the
    way; ``keep`` leaves the override the case already carries; one that no longer applies (a
    case moved out of the hold) is cleared."""
    site = written.site
    verdict = rulebook.hold_verdict_at(site)
    inside = verdict.blocks(booking.starts_at.astimezone(site.zone).date())
    fields = ["anticoagulant_override_reason", "anticoagulant_override_by", "anticoagulant_override_at"]
    if inside and keep:
        return
    if inside and reason:
        assert verdict.hold is not None
        assert verdict.first_day is not None
        booking.anticoagulant_override_reason = reason
        booking.anticoagulant_override_by = actor if getattr(actor, "is_authenticated", False) else None
        booking.anticoagulant_override_at = now
        booking.save(update_fields=fields)
        audit_record(
            actor=actor,
            action="booking.anticoagulant_override",
            obj=booking,
            details={
                "hold": verdict.hold.id,
                "drug": verdict.hold.drug_code,
                "earliest_date": verdict.first_day.isoformat(),
            },
        )
    elif not inside and booking.anticoagulant_override_at is not None:
        booking.anticoagulant_override_reason = ""
        booking.anticoagulant_override_by = None
        booking.anticoagulant_override_at = None
        booking.save(update_fields=fields)


def _insert(
    actor: Any,
    request: CaseRequest,
    written: Written,
    *,
    status: str,
    now: datetime,
    holds: list[HoldRow],
    order: CaseOrder,
) -> Booking:
    start, end, arrival = written.span()
    booking = Booking(
        patient=request.patient,
        procedure_type=request.procedure_type,
        site=_site_instance(written.site),
        levels=request.levels,
        sedation=request.sedation_level,
        status=status,
        starts_at=start,
        ends_at=end,
        arrival_at=arrival,
        hold_expires_at=hold_expiry(now) if status == BookingStatus.HOLD else None,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        **order.as_model_fields(),
    )
    legs = _leg_rows(booking, written)
    audit = audit_event(
        actor=actor,
        action="booking.create",
        object_type=Booking._meta.label_lower,
        object_id="",
        details={
            "start": start.isoformat(),
            "procedure_type": request.procedure_type.code,
            "levels": request.levels,
            "level_names": list(order.level_names),
            "sedation": request.sedation_level,
            "legs": written.summary(),
        },
    )
    # Outbox rows commit with the booking; a hold gets its reminders when confirmed.
    reminders = new_reminders(booking=booking, holds=holds, now=now)
    # Other systems hear of a scheduled case now, of a hold once it is confirmed.
    created = unsaved_case_event(SchedulingEvent.BOOKING_CREATED, booking, legs)
    # The booking, its legs, its audit record and its reminders: one statement on PostgreSQL.
    insert_tree(
        booking,
        [
            Children(Allocation, legs, {"booking_id": PARENT_KEY}),
            Children(AuditEvent, [audit], {"object_id": FromParent("{}")}),
            *(
                Children(Notification, [note], {"booking_id": PARENT_KEY, "dedupe_key": FromParent(key)})
                for note, key in reminders
            ),
            Children(ChangeEvent, [created] if created is not None else [], {"booking_id": PARENT_KEY}),
        ],
    )
    _remember_legs(booking, legs, written)
    return booking


def _locked(booking: Booking) -> Booking:
    return (
        Booking.objects.select_for_update(of=("self",))
        .select_related("procedure_type", "patient", "site")
        .get(pk=booking.pk)
    )


def _current_keys(booking: Booking) -> dict[str, tuple[str, int]]:
    return {
        leg.role: (leg.resource_column, leg.resource_id)
        for leg in booking.legs.filter(is_active=True)
        if leg.role != LegRole.PATIENT
    }


def booking_reschedule(
    *,
    actor: Any,
    booking: Booking,
    starts_at: datetime,
    pins: dict[str, int] | None = None,
    allow_past: bool = False,
    anticoagulant_override_reason: str | None = None,
) -> Booking:
    """Move a hold or scheduled case to ``starts_at``, exactly as a new booking would be placed:
    a resource the caller pins is checked by every rule, and the engine picks the rest,
    preferring each resource the case already holds where it is still free. The case's own legs
    do not block the move. All or nothing: on any error the case keeps its old legs.

    An anticoagulant override the case carries still covers a move to the same day or later
    (more days without the drug); an earlier start inside the hold needs a new one.

    Locking: the booking row, then the advisory locks of every resource the case could use.
    """
    require_aware(starts_at, "start")
    override = override_reason(actor, anticoagulant_override_reason)
    now = timezone.now()
    rulebook: Rulebook | None = None
    decision: Decision | Refusal | None = None
    written: Written | None = None
    try:
        with transaction.atomic():
            current = _locked(booking)
            if current.status not in RESCHEDULABLE:
                raise InvalidTransition(
                    f"A {current.get_status_display().lower()} case cannot be rescheduled.",
                    details={"status": current.status, "allowed_from": sorted(RESCHEDULABLE)},
                )
            if current.status == BookingStatus.HOLD and (current.hold_expires_at or now) <= now:
                raise InvalidTransition(
                    "The hold has expired and its resources may be taken; search again.",
                    details={"status": current.status, "hold_expired_at": _site_iso(current.hold_expires_at, current)},
                )
            pins = dict(pins or {})
            if actor is not None:
                pins = policy.booking_pins(actor, pins)
            request = CaseRequest(
                procedure_type=current.procedure_type,
                levels=current.levels,
                sedation=current.sedation,
                patient=current.patient,
                # A pinned room may take the case to its own site; otherwise it stays where it is.
                site_id=None if "room" in pins else current.site_id,
                pins=pins,
            )
            lo, hi = window_bounds(request.legs, to_min(starts_at))
            # An override the case carries covers a move to the same day or later.
            kept = not override and _override_still_covers(current, starts_at)
            rulebook = rulebook_for(
                request,
                lo=lo,
                hi=hi,
                now=now,
                allow_past=allow_past,
                prefer=_current_keys(current),
                hold_override=bool(override) or kept,
            )
            rulebook.read_window(lock=True, exclude_booking_id=current.pk)
            decision = rulebook.decide(starts_at)
            if isinstance(decision, Decision):
                written = _written(rulebook, decision, starts_at)
                _sweep_if_needed(rulebook, written, now)
                moved = _move(actor, current, written, now=now, holds=rulebook.window.holds)
                _record_override(actor, moved, rulebook, written, override, now=now, keep=kept)
    except DatabaseError as exc:
        if written is None or not is_lost_race(exc):
            raise
        raise clashes_after_refusal(written.planned(), written.site.zone) from exc
    if written is None:
        assert rulebook is not None
        assert isinstance(decision, Refusal)
        raise refusal_error(rulebook, decision, starts_at)
    _count("reschedule")
    return moved


@dataclass(frozen=True)
class Move:
    """One case of a move together: where it goes, and the resources it takes there."""

    booking: Booking
    starts_at: datetime
    pins: dict[str, int]


def lock_for_cases(cases: Iterable[tuple[Mapping[str, int], int | None]]) -> None:
    """Take the booking guard's locks on every resource a set of cases pins, and on their
    patients, in one ordered batch, before the services that write them take theirs case by
    case (re-taking a lock held is free): a writer taking its locks in several batches could
    otherwise deadlock with one that takes the same locks in one. Runs in the caller's
    transaction."""
    keys = {(PIN_COLUMN[name], pk) for pins, _ in cases for name, pk in pins.items()}
    keys |= {("patient", patient) for _, patient in cases if patient is not None}
    lock_keys(keys)


def bookings_move_together(*, actor: Any, moves: list[Move]) -> list[Booking]:
    """Move several cases at once, each exactly as ``booking_reschedule`` moves one (the same
    rules, locks, reminders, audit and change event), in one transaction: every case's own legs
    stop holding anything first, so one case may take the place another leaves. All or nothing:
    on any error every case keeps its old legs.

    Locking: the booking rows in id order, then each move's resource locks in turn.
    """
    if not moves:
        return []
    with transaction.atomic():
        ids = sorted(move.booking.pk for move in moves)
        if len(set(ids)) != len(ids):
            raise InvalidTransition("A case appears twice in one move.", details={"bookings": ids})
        list(Booking.objects.select_for_update(of=("self",)).filter(pk__in=ids).order_by("pk"))
        lock_for_cases((move.pins, move.booking.patient_id) for move in moves)
        Allocation.objects.filter(booking_id__in=ids, is_active=True).update(is_active=False)
        return [
            booking_reschedule(actor=actor, booking=move.booking, starts_at=move.starts_at, pins=move.pins)
            for move in moves
        ]


def _override_still_covers(current: Booking, starts_at: datetime) -> bool:
    if current.anticoagulant_override_at is None:
        return False
    zone = current.site.zone
    return starts_at.astimezone(zone).date() >= current.starts_at.astimezone(zone).date()


def _move(actor: Any, current: Booking, written: Written, *, now: datetime, holds: list[HoldRow]) -> Booking:
    old_start = current.starts_at
    # Its own legs stop holding anything first: the guard would refuse the new ones otherwise.
    current.legs.filter(is_active=True).update(is_active=False)
    current.starts_at, current.ends_at, current.arrival_at = written.span()
    current.site = _site_instance(written.site)
    current.save(update_fields=["starts_at", "ends_at", "arrival_at", "site", "updated_at"])
    Allocation.objects.bulk_create(_leg_rows(current, written))
    audit_record(
        actor=actor,
        action="booking.reschedule",
        obj=current,
        details={"from": old_start.isoformat(), "to": current.starts_at.isoformat(), "legs": written.summary()},
    )
    reminders_schedule(booking=current, now=now, holds=holds)
    case_event(SchedulingEvent.BOOKING_RESCHEDULED, current, previous_starts_at=instant(old_start))
    return current


def booking_recheck(*, booking: Booking, now: datetime) -> list[Problem]:
    """Every rule the case as booked breaks now, its own legs aside (a hold about to be
    confirmed: downtime or a hold of the patient's may have been recorded meanwhile). Runs in
    the caller's transaction, under the booking guard's locks."""
    legs = list(booking.legs.filter(is_active=True))
    request = request_of(booking, held_pins(legs))
    lo, hi = window_bounds(request.legs, to_min(booking.starts_at))
    rulebook = rulebook_for(request, lo=lo, hi=hi, now=now, hold_override=booking.anticoagulant_override_at is not None)
    rulebook.read_window(lock=True, exclude_booking_id=booking.pk)
    decision = rulebook.decide(booking.starts_at)
    if isinstance(decision, Decision):
        return []
    return decision.problems + decision.clashes


def hold_confirm(*, actor: Any, booking: Booking, now: datetime | None = None) -> Booking:
    """Turn an unexpired hold into a scheduled case and schedule its reminders.

    The rules are asked again for the case as held (its own legs aside): what was recorded
    since the hold was made (downtime, time off, a medication hold) can forbid it.
    Raises InvalidTransition if the booking is not a hold or its time is up, BookingInvalid
    with every problem if a rule now refuses it; nothing is written then. The legs keep their
    resources: they were held all along.
    """
    with transaction.atomic():
        current = _locked(booking)
        now = now or timezone.now()
        if current.status != BookingStatus.HOLD:
            raise InvalidTransition(
                f"Only a hold can be confirmed; this case is {current.get_status_display().lower()}.",
                details={"status": current.status, "allowed_from": [BookingStatus.HOLD.value]},
            )
        if current.hold_expires_at is None or current.hold_expires_at <= now:
            raise InvalidTransition(
                "The hold has expired and its resources may be taken; search again.",
                details={"status": current.status, "hold_expired_at": _site_iso(current.hold_expires_at, current)},
            )
        problems = booking_recheck(booking=current, now=now)
        if problems:
            # Downtime, time off or a medication hold recorded since the hold was made.
            raise BookingInvalid(problems)
        current.status = BookingStatus.SCHEDULED
        current.hold_expires_at = None
        current.save(update_fields=["status", "hold_expires_at", "updated_at"])
        current.legs.filter(is_active=True).update(expires_at=None)
        reminders_schedule(booking=current, now=now)
        audit_record(actor=actor, action="booking.confirm", obj=current, details={"from": BookingStatus.HOLD.value})
        case_event(SchedulingEvent.BOOKING_CREATED, current, previous_status=BookingStatus.HOLD.value)
    return current


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
        held = list(current.legs.filter(is_active=True))
        current.legs.filter(is_active=True).update(is_active=False)
        case_event(SchedulingEvent.BOOKING_CANCELLED, current, legs=held, previous_status=previous, reason=reason)
        reminders_withdraw(booking=current)
        audit_record(actor=actor, action="booking.cancel", obj=current, details={"from": previous, "reason": reason})
    _count("cancel")
    return current
