from __future__ import annotations

from celery import shared_task

from planner.services import plans_purge, plans_run_queued


@shared_task(ignore_result=True)
def run_queued_plans() -> int:
    """Solve the oldest queued plan, if any. Safe to run twice at once: a run is claimed by one
    conditional UPDATE."""
    return plans_run_queued(limit=1)


@shared_task(ignore_result=True)
def purge_plans() -> int:
    """Delete plans past their keeping time."""
    return plans_purge()
