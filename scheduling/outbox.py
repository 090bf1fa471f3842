"""Writing notification intents. Call inside the transaction of the change that calls for them:
the row commits or rolls back with it, and no broker is touched on the way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scheduling.models import Booking, Channel, Notification, NotificationStatus


def enqueue_notification(
    *,
    kind: str,
    dedupe_key: str,
    due_at: datetime,
    booking: Booking | None = None,
    staff: Any = None,
    site: Any = None,
    subject_id: int | None = None,
    channel: str = Channel.EMAIL,
) -> Notification:
    """Create the notification once per ``dedupe_key``; a repeat returns the existing row.

    A pending row has its due time refreshed (a rescheduled case moves its reminders); a row
    already queued or sent is left alone, so nothing is sent twice.
    """
    notification, created = Notification.objects.get_or_create(
        dedupe_key=dedupe_key,
        defaults={
            "kind": kind,
            "due_at": due_at,
            "booking": booking,
            "staff": staff,
            "site": site,
            "subject_id": subject_id,
            "channel": channel,
        },
    )
    if not created and notification.status == NotificationStatus.PENDING and notification.due_at != due_at:
        notification.due_at = due_at
        notification.save(update_fields=["due_at"])
    return notification


def skip_pending(*, booking: Booking) -> int:
    """Withdraw a booking's notifications that have not gone out (e.g. it was cancelled)."""
    return Notification.objects.filter(booking=booking, status=NotificationStatus.PENDING).update(
        status=NotificationStatus.SKIPPED
    )
