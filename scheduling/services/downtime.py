"""Recording downtime of a room or a piece of equipment, and flagging the cases it hits.

Booking refuses new cases on a resource that is down; this handles the cases booked before
the block was known (a C-arm failing its yearly physicist inspection, a repair).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from core.services import record_create, record_delete, record_update
from outbox.models import AlertKind, Notification, NotificationStatus
from outbox.services import alert_raise, enqueue_notification, event_record
from rooms.models import Downtime
from scheduling.events import instant
from scheduling.kinds import SchedulingEvent, SchedulingMessage
from scheduling.legroles import LegRole
from scheduling.models import Allocation
from scheduling.selectors import bookings_hit_by
from scheduling.services.swaps import swaps_for
from scheduling.words import local_span


def downtime_span(downtime: Downtime, zone: ZoneInfo) -> str:
    """The block in the site's wall-clock time, always with its date."""
    span = local_span(downtime.starts_at, downtime.ends_at, zone)
    first, last = downtime.starts_at.astimezone(zone), downtime.ends_at.astimezone(zone)
    return f"{first:%Y-%m-%d} {span}" if first.date() == last.date() else span


def _flag_hit_cases(downtime: Downtime, *, now: datetime) -> int:
    """An alert and an email notice for every active case the block hits that has not been
    flagged for it yet; returns how many were flagged."""
    target = downtime.room or downtime.equipment
    flagged = 0
    hit = list(bookings_hit_by(downtime, now=now))
    physicians = {
        leg.booking_id: str(leg.staff)
        for leg in Allocation.objects.filter(
            booking_id__in=[b.pk for b in hit], role=LegRole.PHYSICIAN, is_active=True
        ).select_related("staff")
    }
    for booking in hit:
        key = f"downtime_impact:booking:{booking.pk}:downtime:{downtime.pk}"
        if Notification.objects.filter(dedupe_key=key).exists():
            continue
        zone = booking.site.zone
        swaps = swaps_for(booking, downtime, now=now)
        found = f"First swap found: {swaps[0].title}." if swaps else "No swap found the same day."
        alert_raise(
            site=booking.site,
            booking=booking,
            kind=AlertKind.DOWNTIME_IMPACT,
            message=(
                f"{target} is down {downtime_span(downtime, zone)} ({downtime.get_reason_display().lower()}); "
                f"booking {booking.pk} at {booking.starts_at.astimezone(zone):%Y-%m-%d %H:%M}"
                f"{' with ' + physicians[booking.pk] if booking.pk in physicians else ''} needs it. "
                f"{found} The downtime page lists every swap."
            ),
        )
        enqueue_notification(
            kind=SchedulingMessage.DOWNTIME_IMPACT,
            dedupe_key=key,
            due_at=now,
            booking=booking,
            site=booking.site,
            subject_id=downtime.pk,
        )
        flagged += 1
    return flagged


def _announce(kind: str, downtime: Downtime) -> None:
    """A room or C-arm blocked, its block changed, or reopened: ids and times only."""
    target = downtime.room or downtime.equipment
    assert target is not None
    event_record(
        kind=kind,
        site=target.site,
        subject_id=downtime.pk,
        data={
            "resource": {"kind": "room" if downtime.room_id else "equipment", "id": target.pk},
            "starts_at": instant(downtime.starts_at),
            "ends_at": instant(downtime.ends_at),
            "reason": downtime.reason,
        },
    )


def downtime_create(*, actor: Any, data: dict[str, Any], now: datetime | None = None) -> Downtime:
    """Record a downtime block (validated with ``full_clean`` and audited) and, in the same
    transaction, raise an alert and write a notice for every active case it hits.

    Raises django ValidationError for a malformed block; nothing is written then. The notice
    goes by email to the site's ``notify_email`` when the relay sends it; each (case,
    downtime) pair is noticed once.
    """
    now = now or timezone.now()
    with transaction.atomic():
        downtime = record_create(actor=actor, model=Downtime, data=data)
        _flag_hit_cases(downtime, now=now)
        _announce(SchedulingEvent.DOWNTIME_CREATED, downtime)
    return downtime


def downtime_update(*, actor: Any, downtime: Downtime, data: dict[str, Any], now: datetime | None = None) -> Downtime:
    """Change a block (validated and audited); cases it hits now that it did not before are
    flagged as for a new block."""
    now = now or timezone.now()
    with transaction.atomic():
        downtime = record_update(actor=actor, instance=downtime, data=data)
        _flag_hit_cases(downtime, now=now)
        _announce(SchedulingEvent.DOWNTIME_CHANGED, downtime)
    return downtime


def downtime_delete(*, actor: Any, downtime: Downtime) -> None:
    """Remove a block (audited); its notices not yet sent are withdrawn."""
    with transaction.atomic():
        Notification.objects.filter(
            kind=SchedulingMessage.DOWNTIME_IMPACT, subject_id=downtime.pk, status=NotificationStatus.PENDING
        ).update(status=NotificationStatus.SKIPPED)
        _announce(SchedulingEvent.DOWNTIME_REMOVED, downtime)
        record_delete(actor=actor, instance=downtime)
