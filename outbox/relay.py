"""The relay's bookkeeping: which rows are due, which to put back, which are stuck. The
publishing itself is in ``outbox.tasks``."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F

from outbox.models import Notification, NotificationStatus
from outbox.sending import delivery_alert, notification_finish

logger = logging.getLogger(__name__)


def outbox_take_due(*, now: datetime, limit: int) -> list[int]:
    """Mark up to ``limit`` due pending rows queued and return their ids, oldest first.

    Concurrent relays take disjoint rows: FOR UPDATE SKIP LOCKED on PostgreSQL; on SQLite the
    IMMEDIATE transaction runs one relay at a time.
    """
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(status=NotificationStatus.PENDING, due_at__lte=now)
            .order_by("due_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Notification.objects.filter(pk__in=ids).update(status=NotificationStatus.QUEUED, queued_at=now)
    return ids


def outbox_put_back(ids: list[int], *, error: str) -> int:
    """Return rows whose publish failed to pending, for the next relay run."""
    return Notification.objects.filter(pk__in=ids, status=NotificationStatus.QUEUED).update(
        status=NotificationStatus.PENDING, queued_at=None, attempts=F("attempts") + 1, last_error=error[:255]
    )


def outbox_recover(*, now: datetime) -> tuple[int, int]:
    """Repair rows stuck in flight; returns (requeued, marked unknown).

    - queued for longer than ``OUTBOX_REQUEUE_AFTER_MINUTES``: the publish was lost (a crash
      after the relay's commit, a broker that dropped it); back to pending. If the message
      was only slow, the second copy finds the row claimed.
    - sending for longer than ``OUTBOX_UNKNOWN_AFTER_MINUTES``: the sender died and may or may
      not have sent it. Marked unknown with an alert instead of sending again.
    """
    requeued = Notification.objects.filter(
        status=NotificationStatus.QUEUED,
        queued_at__lt=now - timedelta(minutes=settings.OUTBOX_REQUEUE_AFTER_MINUTES),
    ).update(status=NotificationStatus.PENDING, queued_at=None)
    with transaction.atomic():
        stuck = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                status=NotificationStatus.SENDING,
                claimed_at__lt=now - timedelta(minutes=settings.OUTBOX_UNKNOWN_AFTER_MINUTES),
            )
            .select_related("site", "booking__site")
            .order_by("pk")
        )
        for notification in stuck:
            notification_finish(notification.pk, NotificationStatus.UNKNOWN, last_error="sender stopped mid-send")
            delivery_alert(
                notification,
                f"Message {notification.pk} ({notification.kind}) may not have been sent: its sender stopped "
                "mid-send. Check with the recipient; it will not be sent again automatically.",
            )
    if stuck:
        logger.warning("%d notifications marked unknown: %s", len(stuck), [n.pk for n in stuck])
    return requeued, len(stuck)
