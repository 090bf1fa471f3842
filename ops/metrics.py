"""Figures read from the database at scrape time: they are true for every process at once,
which counters kept in one worker's memory are not."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ops.checks import outbox_lag_seconds
from outbox.models import Notification, NotificationStatus
from scheduling.models import Booking


class ClinicCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_status = GaugeMetricFamily("clinic_bookings", "Bookings stored, by status.", labels=["status"])
        for row in Booking.objects.values("status").annotate(n=Count("id")).order_by("status"):
            by_status.add_metric([row["status"]], row["n"])
        yield by_status

        outbox = GaugeMetricFamily("clinic_outbox_notifications", "Notifications, by status.", labels=["status"])
        for row in Notification.objects.values("status").annotate(n=Count("id")).order_by("status"):
            outbox.add_metric([row["status"]], row["n"])
        yield outbox

        yield GaugeMetricFamily(
            "clinic_outbox_lag_seconds",
            "Age of the oldest due notification not yet handed to a worker.",
            value=outbox_lag_seconds(),
        )
        failures = Notification.objects.filter(
            status__in=[NotificationStatus.FAILED, NotificationStatus.UNKNOWN]
        ).count()
        yield GaugeMetricFamily(
            "clinic_outbox_delivery_failures", "Notifications that failed or whose outcome is unknown.", value=failures
        )
