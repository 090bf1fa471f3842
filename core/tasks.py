"""Celery tasks of core. The schedule is ``CELERY_BEAT_SCHEDULE`` in the settings."""

from __future__ import annotations

import logging

from celery import shared_task

from core.idempotency import idempotency_records_purge
from core.throttle import purge_expired

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def purge_throttle_counters() -> int:
    """Delete sign-in counters whose window ended over an hour ago (the table only grows
    otherwise: one row per address and per username that ever failed)."""
    return purge_expired()


@shared_task(ignore_result=True)
def purge_idempotency_records() -> int:
    """Delete Idempotency-Key records past their retention: their bodies hold patient data.

    Safe to run twice or concurrently; a second run finds nothing to delete.
    """
    deleted = idempotency_records_purge()
    if deleted:
        logger.info("purged %d idempotency records", deleted)
    return deleted
