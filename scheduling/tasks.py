"""Celery tasks of scheduling. Each takes ids (or nothing), calls one service, and returns
quietly when there is nothing to do. The schedule is ``CELERY_BEAT_SCHEDULE`` in the settings."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from scheduling.services.holds import holds_release_expired
from scheduling.services.reminders import credential_warnings_enqueue, daily_lists_enqueue, follow_up_lists_enqueue


@shared_task(ignore_result=True)
def release_expired_holds() -> int:
    return holds_release_expired(now=timezone.now())


@shared_task(ignore_result=True)
def enqueue_work_lists() -> int:
    now = timezone.now()
    return daily_lists_enqueue(now=now) + follow_up_lists_enqueue(now=now)


@shared_task(ignore_result=True)
def enqueue_credential_warnings() -> int:
    return credential_warnings_enqueue(now=timezone.now())
