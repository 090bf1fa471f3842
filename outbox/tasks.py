"""Celery tasks of the outbox. Each takes ids (or nothing) and returns quietly when there is
nothing to do. The schedule is ``CELERY_BEAT_SCHEDULE`` in the settings.

Nothing in a web request publishes to the broker: services write outbox rows in their
transaction, and ``relay_outbox`` hands due rows to the broker from beat.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from outbox.relay import outbox_put_back, outbox_recover, outbox_take_due
from outbox.sending import notification_send

logger = logging.getLogger(__name__)

# One connection attempt per relay run: the socket timeouts in the transport options bound it,
# and the rows wait in the database for the next run. Without this kombu keeps reconnecting.
PUBLISH_TRANSPORT_OPTIONS = {"max_retries": 0}
# Batches per relay run when the backlog is large (after an outage): bounded so that one run
# ends well before the next starts.
MAX_BATCHES_PER_RUN = 10


@shared_task(acks_late=True, ignore_result=True)
def send_notification(notification_id: int) -> str:
    """Send one outbox row. Late acknowledgement: if the worker dies mid-task the broker
    redelivers it, and the claim in ``notification_send`` turns that second run into a no-op,
    so a message is sent at most once."""
    return notification_send(int(notification_id))


def publish(ids: list[int]) -> int:
    """Hand queued rows to the broker; on any broker failure put the rest back to pending.

    Returns how many were published. One connection for the batch; a broker that refuses
    fails in milliseconds, one that accepts and never answers within the socket timeout.
    """
    app = send_notification.app
    published = 0
    try:
        with app.connection_for_write(transport_options=PUBLISH_TRANSPORT_OPTIONS) as connection:
            for notification_id in ids:
                send_notification.apply_async(args=[notification_id], connection=connection, retry=False)
                published += 1
    except Exception as exc:
        # Whatever the broker did, the row is the record: the next run tries again, and a
        # message that did get through despite the error finds its row claimed or re-claims
        # it only once.
        outbox_put_back(ids[published:], error=f"publish: {type(exc).__name__}")
        logger.warning(
            "outbox relay: broker unavailable (%s); %d of %d rows back to pending",
            type(exc).__name__,
            len(ids) - published,
            len(ids),
        )
    return published


@shared_task(ignore_result=True)
def relay_outbox() -> int:
    """Publish the ids of due pending rows (ids only: the sender reloads everything)."""
    total = 0
    for _ in range(MAX_BATCHES_PER_RUN):
        ids = outbox_take_due(now=timezone.now(), limit=settings.OUTBOX_BATCH_SIZE)
        if not ids:
            break
        published = publish(ids)
        total += published
        if published < len(ids) or len(ids) < settings.OUTBOX_BATCH_SIZE:
            break
    return total


@shared_task(ignore_result=True)
def recover_outbox() -> tuple[int, int]:
    return outbox_recover(now=timezone.now())
