"""Counters the domain increments, exported by ops at /metrics. Under gunicorn they are shared
across worker processes through PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

from prometheus_client import Counter

bookings = Counter("clinic_bookings_total", "Booking changes committed, by action.", ["action"])
booking_conflicts = Counter(
    "clinic_booking_conflicts_total", "Bookings or moves refused because a resource was already held."
)
deliveries = Counter("clinic_notification_deliveries_total", "Notification send attempts, by outcome.", ["outcome"])
