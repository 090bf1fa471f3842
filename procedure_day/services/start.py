"""Starting a procedure at the real time: the case's legs move with its start, and a start that
would take a room, C-arm, staff member or bay another case holds then is refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from core.dates import to_local
from core.errors import SlotUnavailable
from rooms.models import Downtime
from scheduling.guard import is_overlap_violation, lock_keys
from scheduling.legroles import LEG_ROLES, LegRole
from scheduling.models import Allocation, Booking, BookingStatus
from scheduling.words import local_span, resource_name
from staff.models import TimeOff


@dataclass(frozen=True)
class Shift:
    minutes: int
    legs: list[tuple[Allocation, datetime, datetime]]


def _resource_q(legs: list[Allocation]) -> Q:
    query = Q(pk__in=[])
    for leg in legs:
        query |= Q(**{f"{leg.resource_column}_id": leg.resource_id})
    return query


def _conflict(leg: Allocation, other: Allocation, message: str, zone: Any) -> dict[str, Any]:
    return {
        "message": message,
        "role": leg.role,
        "resource": {"kind": LEG_ROLES[leg.role].kind, "id": leg.resource_id},
        "booking": other.booking_id,
        "start": to_local(other.starts_at, zone).isoformat(),
        "end": to_local(other.ends_at, zone).isoformat(),
    }


def _blocked(moved: list[tuple[Allocation, datetime, datetime]], zone: Any) -> list[dict[str, Any]]:
    """Downtime of the room or equipment, and time off of the staff, the moved legs run into."""
    conflicts = []
    for leg, start, end in moved:
        if leg.resource_column in ("room", "equipment"):
            column = f"{leg.resource_column}_id"
            blocks: list[Any] = list(
                Downtime.objects.filter(**{column: leg.resource_id}, starts_at__lt=end, ends_at__gt=start)
            )
            what = "is down"
        elif leg.resource_column == "staff":
            blocks = list(TimeOff.objects.filter(staff_id=leg.resource_id, starts_at__lt=end, ends_at__gt=start))
            what = "is off"
        else:
            continue
        for block in blocks:
            name = resource_name(getattr(leg, leg.resource_column))
            conflicts.append(
                {
                    "message": f"Starting now needs {name} {local_span(start, end, zone)}, but it {what} "
                    f"{local_span(block.starts_at, block.ends_at, zone)}.",
                    "role": leg.role,
                    "resource": {"kind": LEG_ROLES[leg.role].kind, "id": leg.resource_id},
                    "start": to_local(block.starts_at, zone).isoformat(),
                    "end": to_local(block.ends_at, zone).isoformat(),
                }
            )
    return conflicts


def shift_to_real_start(current: Booking, now: datetime) -> Shift:
    """The case's active legs moved by the whole minutes between its planned start and ``now``,
    checked against every other case's live legs on the same resources, and against cases still
    in procedure on them (their room phase runs on past its plan). Locks the resources first.

    Raises SlotUnavailable naming each clash; writes nothing then.
    """
    zone = current.site.zone
    # Whole minutes toward zero: a start 30 s early or late keeps the plan.
    minutes = int((now - current.starts_at).total_seconds() / 60)
    shift = timedelta(minutes=minutes)
    legs = list(current.legs.filter(is_active=True).select_related("room", "equipment", "staff", "bay").order_by("id"))
    lock_keys((leg.resource_column, leg.resource_id) for leg in legs)
    moved = [(leg, leg.starts_at + shift, leg.ends_at + shift) for leg in legs]
    others = list(
        Allocation.objects.filter(_resource_q(legs), is_active=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .exclude(booking_id=current.pk)
        .exclude(booking__status__in=[BookingStatus.CANCELLED, BookingStatus.NO_SHOW, BookingStatus.DISCHARGED])
        .filter(starts_at__lt=max((end for _, _, end in moved), default=now))
        .filter(
            Q(ends_at__gt=min((start for _, start, _ in moved), default=now))
            | Q(booking__status=BookingStatus.IN_PROCEDURE, booking__procedure_ended_at__isnull=True)
        )
        .select_related("booking")
        .order_by("starts_at", "id")
    )
    conflicts = []
    for leg, start, end in moved:
        name = resource_name(getattr(leg, leg.resource_column))
        for other in others:
            if (other.resource_column, other.resource_id) != (leg.resource_column, leg.resource_id):
                continue
            # A case still in procedure keeps its room and team until its end is recorded,
            # whatever its plan says.
            still_running = (
                other.booking.status == BookingStatus.IN_PROCEDURE
                and other.booking.procedure_ended_at is None
                and (LEG_ROLES[other.role].ends_with_procedure or other.role == LegRole.ROOM)
                and other.starts_at <= now
            )
            if still_running and leg.role != "patient":
                conflicts.append(
                    _conflict(
                        leg,
                        other,
                        f"{name} is still in case {other.booking_id}, whose procedure has not ended; "
                        "record its end first.",
                        zone,
                    )
                )
            elif other.starts_at < end and other.ends_at > start:
                conflicts.append(
                    _conflict(
                        leg,
                        other,
                        f"Starting now needs {name} {local_span(start, end, zone)}, but case {other.booking_id} "
                        f"holds it {local_span(other.starts_at, other.ends_at, zone)}.",
                        zone,
                    )
                )
    conflicts += _blocked(moved, zone)
    if conflicts:
        raise SlotUnavailable(conflicts)
    if minutes:
        try:
            # A savepoint: a refusal by the database leaves the case's transaction usable.
            with transaction.atomic():
                for leg, start, end in moved:
                    Allocation.objects.filter(pk=leg.pk).update(starts_at=start, ends_at=end)
        except IntegrityError as exc:
            if not is_overlap_violation(exc):
                raise
            raise SlotUnavailable(
                [{"message": "Another case took one of this case's resources for the new time; try again."}]
            ) from exc
        current.starts_at += shift
        current.ends_at += shift
        current.arrival_at += shift
    return Shift(minutes, moved)
