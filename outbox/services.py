"""Writing notification intents and alerts. Call inside the transaction of the change that calls
for them: the rows commit or roll back with it, and no broker is touched on the way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.audit import audit_record
from core.errors import InvalidTransition
from outbox import registry
from outbox.models import Alert, ChangeEvent, Channel, Notification, NotificationStatus

ALERT_MESSAGE_MAX = 500


def enqueue_notification(
    *,
    kind: str,
    dedupe_key: str,
    due_at: datetime,
    booking: Any = None,
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


def skip_pending(*, booking: Any) -> int:
    """Withdraw a booking's notifications that have not gone out (e.g. it was cancelled)."""
    return Notification.objects.filter(booking=booking, status=NotificationStatus.PENDING).update(
        status=NotificationStatus.SKIPPED
    )


def alert_raise(*, site: Any, kind: str, message: str, booking: Any = None) -> Alert:
    """An alert for the staff of ``site``. The message names ids, resources and times, never a
    patient."""
    return Alert.objects.create(site=site, booking=booking, kind=kind, message=message[:ALERT_MESSAGE_MAX])


@transaction.atomic
def alert_resolve(*, actor: Any, alert: Alert) -> Alert:
    """Mark an alert dealt with; a second resolve is refused so the first one's author stands."""
    current = Alert.objects.select_for_update().get(pk=alert.pk)
    if current.resolved_at is not None:
        raise InvalidTransition(
            "The alert is already resolved.", details={"resolved_at": current.resolved_at.isoformat()}
        )
    current.resolved_at = timezone.now()
    current.resolved_by = actor if getattr(actor, "is_authenticated", False) else None
    current.save(update_fields=["resolved_at", "resolved_by"])
    audit_record(
        actor=actor, action="alert.resolve", obj=current, details={"kind": current.kind, "booking": current.booking_id}
    )
    return current


def event_build(
    *,
    kind: str,
    occurred_at: datetime | None = None,
    booking: Any = None,
    site: Any = None,
    subject_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> ChangeEvent:
    """A change for other systems, not yet saved. ``kind`` is a kind registered with
    ``outbox.registry.register_event``; ``data`` holds ids, codes and times only, never
    patient data."""
    if not registry.is_event_kind(kind):
        raise ValueError(f"Not a registered change event kind: {kind!r}.")
    return ChangeEvent(
        kind=kind,
        booking=booking,
        site=site if site is not None else getattr(booking, "site", None),
        subject_id=subject_id,
        data=data or {},
        occurred_at=occurred_at or timezone.now(),
    )


def event_record(**fields: Any) -> ChangeEvent:
    """Record a change for other systems inside the change's transaction (see ``event_build``)."""
    event = event_build(**fields)
    event.save(force_insert=True)
    return event
