from __future__ import annotations

from celery import shared_task

from interop.delivery import deliveries_purge, deliveries_run


@shared_task(ignore_result=True)
def deliver_changes() -> dict[str, int]:
    """Fan change events out to webhooks and HL7 interfaces and send what is due. Safe to run
    twice at once: fan-out skips locked events and each destination is sent to under a lease."""
    return deliveries_run()


@shared_task(ignore_result=True)
def purge_delivered() -> int:
    """Forget change events whose deliveries are all through, after the log's retention."""
    return deliveries_purge()
