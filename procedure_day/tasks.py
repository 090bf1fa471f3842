"""Celery tasks of the procedure day. The schedule is ``CELERY_BEAT_SCHEDULE`` in the settings."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from procedure_day.services.transitions import recovery_timers_run


@shared_task(ignore_result=True)
def run_recovery_timers() -> int:
    """Cases in recovery whose minimum time is up become ready for discharge (the transition
    writes their notifications)."""
    return recovery_timers_run(now=timezone.now())
