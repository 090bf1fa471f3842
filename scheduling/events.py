"""What a booking's change event says: the case's status and times and each leg's resource and
window, by id. Other systems (HL7 SIU, webhooks) build their messages from it, so a message
says what the case was at the change, not what it became later."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from outbox.models import ChangeEvent
from outbox.registry import register_event
from outbox.services import event_build, event_record
from scheduling.kinds import SchedulingEvent
from scheduling.legroles import LEG_ROLES
from scheduling.models import Allocation, Booking, BookingStatus

for _kind in SchedulingEvent:
    register_event(_kind.value, _kind.label)


def instant(moment: datetime) -> str:
    """Event times are UTC, whatever zone the caller's value carried."""
    return moment.astimezone(UTC).isoformat()


def case_snapshot(booking: Booking, legs: Iterable[Allocation]) -> dict[str, Any]:
    return {
        "status": booking.status,
        "starts_at": instant(booking.starts_at),
        "ends_at": instant(booking.ends_at),
        "procedure_type": booking.procedure_type.code,
        "levels": booking.levels,
        "legs": [
            {
                "role": leg.role,
                "kind": LEG_ROLES[leg.role].kind,
                "id": leg.resource_id,
                "start": instant(leg.starts_at),
                "end": instant(leg.ends_at),
            }
            for leg in sorted(legs, key=lambda leg: (leg.starts_at, leg.role))
        ],
    }


def resource_legs(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The legs of an event's snapshot that hold a resource (room, equipment, staff, bay): the
    patient's own leg is not one other systems book."""
    return [leg for leg in data.get("legs", []) if leg["kind"] != "patient"]


def announced(kind: str, status: str, previous_status: str | None = None) -> bool:
    """A hold is tentative: nothing is announced of it. Its confirmation is announced as a
    case created; its expiry or cancellation not at all."""
    if status == BookingStatus.HOLD:
        return False
    return not (previous_status == BookingStatus.HOLD and kind != SchedulingEvent.BOOKING_CREATED)


def unsaved_case_event(kind: str, booking: Booking, legs: Iterable[Allocation], **extra: Any) -> ChangeEvent | None:
    """The event for a booking not yet inserted (written with it, in one statement), or None
    if the change is not announced."""
    if not announced(kind, booking.status, extra.get("previous_status")):
        return None
    return event_build(kind=kind, site=booking.site, data={**case_snapshot(booking, legs), **extra})


def case_event(
    kind: str, booking: Booking, *, legs: Iterable[Allocation] | None = None, **extra: Any
) -> ChangeEvent | None:
    """Record a change of a case in the caller's transaction, with ``legs`` as the case now
    holds them (by default its active legs; a case that has just let its legs go passes the
    ones it held), or nothing if the change is not announced."""
    if not announced(kind, booking.status, extra.get("previous_status")):
        return None
    held = legs if legs is not None else Allocation.objects.filter(booking=booking, is_active=True)
    return event_record(kind=kind, booking=booking, data={**case_snapshot(booking, held), **extra})
