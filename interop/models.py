"""Where changes go: webhook subscriptions and HL7 v2 interfaces, and the delivery of each
change event to each of them, with every attempt logged."""

from __future__ import annotations

import secrets
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models

from outbox.registry import event_kinds


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# Events are POSTed over HTTP(S): no other scheme, whichever way the subscription is written.
http_url = URLValidator(schemes=["http", "https"], message="Give an http:// or https:// address.")


def known_event_kinds(value: object) -> None:
    kinds = {code for code, _ in event_kinds()}
    if not isinstance(value, list) or not all(isinstance(kind, str) for kind in value):
        raise ValidationError("A list of event kinds.")
    unknown = sorted(set(value) - kinds)
    if unknown:
        raise ValidationError(f"Not an event kind: {', '.join(unknown)}.")


class WebhookSubscription(models.Model):
    """An HTTPS endpoint that receives the kinds of change it names, signed with ``secret``
    (HMAC-SHA256 over the timestamp and the body). The secret is kept to sign with; it is
    shown to administrators only."""

    name = models.CharField(max_length=80)
    url = models.URLField(max_length=500, validators=[http_url])
    secret = models.CharField(max_length=80, default=new_secret)
    # After a rotation the old secret signs too, for a while, so the receiver can switch over.
    previous_secret = models.CharField(max_length=80, blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    events = models.JSONField(
        default=list, blank=True, validators=[known_event_kinds], help_text="Event kinds; empty means every kind."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # One sender at a time per endpoint, so its deliveries keep their order.
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def wants(self, kind: str) -> bool:
        return not self.events or kind in self.events

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret, and the one before it while its grace period lasts."""
        secrets_now = [self.secret]
        if self.previous_secret and self.previous_secret_until is not None and now < self.previous_secret_until:
            secrets_now.append(self.previous_secret)
        return secrets_now


class Hl7Interface(models.Model):
    """An HL7 v2 receiver (an EHR, an interface engine) reached over MLLP, which is sent SIU
    messages for cases and for blocked and reopened rooms and C-arms. The application and
    facility names are HL7 namespace ids: 20 characters at most."""

    name = models.CharField(max_length=80, unique=True)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField()
    sending_application = models.CharField(max_length=20, default="PAINSCHED")
    sending_facility = models.CharField(max_length=20, default="CLINIC")
    receiving_application = models.CharField(max_length=20, default="EHR")
    receiving_facility = models.CharField(max_length=20, default="HOSPITAL")
    processing_id = models.CharField(max_length=1, default="P", help_text="MSH-11: P production, T training, D debug.")
    timeout_seconds = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(30)],
        help_text="How long to wait to connect, and for the acknowledgement (1 to 30 s).",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "HL7 interface"

    def __str__(self) -> str:
        return f"{self.name} ({self.host}:{self.port})"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    # Given up (too many failures, or rejected): a person looks and redelivers or skips it.
    PARKED = "parked", "Parked"
    # Given up by a person, so the case's later messages go.
    SKIPPED = "skipped", "Skipped"


class Delivery(models.Model):
    """One change event for one webhook or one HL7 interface. Deliveries of the same subject
    (a case, a downtime) to the same destination go in event order; ``control_id`` is the HL7
    message's MSH-10, kept for every resend so the receiver can tell a repeat."""

    event = models.ForeignKey("outbox.ChangeEvent", on_delete=models.CASCADE, related_name="deliveries")
    webhook = models.ForeignKey(
        WebhookSubscription, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    interface = models.ForeignKey(
        Hl7Interface, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    subject_key = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # When it was handed out, or last redelivered by hand: the give-up clock runs from here.
    queued_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    control_id = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["event_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(webhook__isnull=False, interface__isnull=True)
                | models.Q(webhook__isnull=True, interface__isnull=False),
                name="interop_delivery_one_destination",
            ),
            models.UniqueConstraint(fields=["event", "webhook"], name="interop_delivery_once_per_webhook"),
            models.UniqueConstraint(fields=["event", "interface"], name="interop_delivery_once_per_interface"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="interop_delivery_due")]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.event.kind} → {self.webhook or self.interface} ({self.status})"


class DeliveryAttempt(models.Model):
    """The delivery log: what each attempt got back. No message text, no payload."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="log")
    at = models.DateTimeField()
    outcome = models.CharField(max_length=20)
    code = models.CharField(max_length=10, blank=True, help_text="HTTP status or HL7 acknowledgement code.")
    detail = models.CharField(max_length=255, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.outcome} {self.code}"
