"""Holds: a found start kept for a scheduler on the phone with the patient.

A hold is a booking in status ``hold`` whose legs carry ``expires_at``. Until then it blocks its
resources like any booking; from then on searches ignore its legs, and the next write that
needs them (or the minute sweep) releases them. Confirming turns it into a scheduled case.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.audit import SYSTEM_ACTOR
from core.models import AuditEvent
from outbox.models import Notification, NotificationStatus
from scheduling.models import Allocation, Booking, BookingStatus, CancelReason


def hold_expiry(now: datetime) -> datetime:
    return now + timedelta(minutes=settings.HOLD_MINUTES)


def holds_release_expired(*, now: datetime | None = None) -> int:
    """Cancel every hold whose time is up and free its legs; returns how many.

    Runs in the caller's transaction when there is one (the booking services call it first
    thing, so the clash check and the constraint that follow see the freed legs), else in its
    own. Locks the expired bookings (FOR UPDATE on PostgreSQL, the IMMEDIATE write lock on
    SQLite) in primary-key order so that two sweeps queue rather than deadlock, and so that a
    confirm racing the sweep either commits first or then finds the hold cancelled.
    """
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            Booking.objects.select_for_update()
            .filter(status=BookingStatus.HOLD, hold_expires_at__lte=now)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not ids:
            return 0
        Booking.objects.filter(pk__in=ids).update(
            status=BookingStatus.CANCELLED, cancel_reason=CancelReason.HOLD_EXPIRED, updated_at=now
        )
        Allocation.objects.filter(booking_id__in=ids, is_active=True).update(is_active=False)
        # A downtime notice may have been written for a hold; it is moot now.
        Notification.objects.filter(booking_id__in=ids, status=NotificationStatus.PENDING).update(
            status=NotificationStatus.SKIPPED
        )
        AuditEvent.objects.bulk_create(
            AuditEvent(
                actor=None,
                actor_label=SYSTEM_ACTOR,
                action="booking.hold_expire",
                object_type=Booking._meta.label_lower,
                object_id=str(pk),
                details={"expired_before": now.isoformat()},
            )
            for pk in ids
        )
    return len(ids)
