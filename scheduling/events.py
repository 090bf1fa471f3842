"""What a booking's change event says: the case's status and times and each leg's resource and
window, by id. Other systems (HL7 SIU, webhooks) build their messages from it, so a message
says what the case was at the change, not what it became later."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from outbox.models import ChangeEvent
from outbox.registry import register_event
from outbox.services import event_record
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


def unsaved_case_event(kind: str, booking: Booking, legs: Iterable[Allocation], **extra: Any) -> ChangeEvent:
    """The event for a booking not yet inserted (written with it, in one statement)."""
    return ChangeEvent(
        kind=kind,
        site_id=booking.site_id,
        data={**case_snapshot(booking, legs), **extra},
        occurred_at=timezone.now(),
    )


def _latest_legs(booking: Booking) -> list[Allocation]:
    """The active legs, or for a closed case the last set it held (a moved case keeps its old
    legs, inactive, with lower ids)."""
    legs = list(Allocation.objects.filter(booking=booking).order_by("id"))
    active = [leg for leg in legs if leg.is_active]
    if active:
        return active
    last: dict[str, Allocation] = {}
    for leg in legs:
        last[leg.role] = leg
    return list(last.values())


def case_event(
    kind: str, booking: Booking, *, legs: list[Allocation] | None = None, **extra: Any
) -> ChangeEvent | None:
    """Record a change of a case in the caller's transaction. A hold is tentative: nothing is
    announced of it (its confirmation is announced as created; its expiry or cancellation not
    at all)."""
    was_hold = extra.get("previous_status") == BookingStatus.HOLD and kind != SchedulingEvent.BOOKING_CREATED
    if booking.status == BookingStatus.HOLD or was_hold:
        return None
    snapshot = case_snapshot(booking, legs if legs is not None else _latest_legs(booking))
    return event_record(kind=kind, booking=booking, data={**snapshot, **extra})
