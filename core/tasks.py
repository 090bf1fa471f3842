"""Celery tasks of core. The schedule is ``CELERY_BEAT_SCHEDULE`` in the settings."""

from __future__ import annotations

from celery import shared_task

from core.throttle import purge_expired


@shared_task(ignore_result=True)
def purge_throttle_counters() -> int:
    """Delete sign-in counters whose window ended over an hour ago (the table only grows
    otherwise: one row per address and per username that ever failed)."""
    return purge_expired()
