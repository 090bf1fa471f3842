"""What must reach a person: messages sent out (the outbox) and alerts shown to staff.

Rows name their subject by foreign key (a booking, a staff member, a site) so they go with it,
but this app imports none of those apps: what a message says is built by the app that
registered its kind (``outbox.registry``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    UNKNOWN = "unknown", "Outcome unknown"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class Notification(models.Model):
    """An outbox row: written in the same transaction as the change that calls for it, relayed
    to the broker by a periodic task once due. ``dedupe_key`` makes each (subject, kind) one row,
    so it is sent at most once. ``kind`` is a code from the registry of message kinds."""

    kind = models.CharField(max_length=40)
    dedupe_key = models.CharField(max_length=200, unique=True)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    booking = models.ForeignKey(
        "scheduling.Booking", null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    staff = models.ForeignKey("staff.StaffMember", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey("rooms.Site", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    subject_id = models.BigIntegerField(null=True, blank=True, help_text="Other subject (e.g. a credential) by id.")
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    queued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["status", "due_at"], name="outbox_notification_due")]

    def __str__(self) -> str:
        return f"{self.kind} {self.dedupe_key} {self.status}"


class AlertKind(models.TextChoices):
    RECOVERY_CLASH = "recovery_clash", "Late case: recovery clash"
    LEG_CLASH = "leg_clash", "Late case: resource clash"
    DOWNTIME_IMPACT = "downtime_impact", "Equipment or room downtime hits a booking"
    DELIVERY_UNKNOWN = "delivery_unknown", "A message may not have been sent"
    INTERFACE_FAILED = "interface_failed", "A webhook or HL7 delivery was given up"


class Alert(models.Model):
    """Something the charge nurse or a scheduler must look at. Holds ids and times only."""

    site = models.ForeignKey("rooms.Site", on_delete=models.CASCADE, related_name="alerts")
    booking = models.ForeignKey(
        "scheduling.Booking", null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    kind = models.CharField(max_length=30, choices=AlertKind.choices)
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.created_at:%Y-%m-%d %H:%M})"


class ChangeEvent(models.Model):
    """A change other systems hear of (a case booked, moved, cancelled, its status changed; a
    room or C-arm blocked or reopened). Written in the change's own transaction, so it exists
    exactly when the change does; the standards face turns it into HL7 messages and webhook
    deliveries (``fanned_out_at`` marks that done). ``data`` holds ids, codes and times only."""

    kind = models.CharField(max_length=40)
    booking = models.ForeignKey(
        "scheduling.Booking", null=True, blank=True, on_delete=models.CASCADE, related_name="change_events"
    )
    site = models.ForeignKey("rooms.Site", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    subject_id = models.BigIntegerField(null=True, blank=True, help_text="Other subject (e.g. a downtime) by id.")
    data = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    fanned_out_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], name="outbox_event_pending", condition=models.Q(fanned_out_at__isnull=True))
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"
