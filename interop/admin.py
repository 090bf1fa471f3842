"""Configuration of the destinations (webhooks, HL7 interfaces) and the delivery log, with
redelivery by hand. Deliveries are read-only here: they are written by the relay."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from core.admin import AuditedAdmin, ReadOnlyInline
from core.errors import InvalidTransition
from interop.delivery import delivery_redeliver, delivery_skip, webhook_rotate_secret
from interop.models import Delivery, DeliveryAttempt, Hl7Interface, WebhookSubscription, http_url
from outbox.registry import event_kinds


class WebhookForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        validators=[http_url],
        help_text="Where events are POSTed: https://, or http:// inside your own network.",
    )
    events = forms.MultipleChoiceField(
        choices=event_kinds,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The changes to send; none ticked means every kind.",
    )

    class Meta:
        model = WebhookSubscription
        fields = ["name", "url", "events", "is_active"]


@admin.register(WebhookSubscription)
class WebhookAdmin(AuditedAdmin):
    form = WebhookForm
    list_display = ["name", "url", "is_active", "created_at"]
    actions = ["rotate_secret"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["name", "url", "events", "is_active"]
        # The secret is made when the subscription is saved, and shown from then on.
        return fields if obj is None else [*fields, "secret", "previous_secret_until", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else ["secret", "previous_secret_until", "created_at"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Rotate the signing secret (the old one signs too for a grace period)")
    def rotate_secret(self, request: HttpRequest, queryset: Any) -> None:
        for hook in queryset:
            webhook_rotate_secret(actor=request.user, hook=hook)
        self.message_user(request, f"New secrets for {queryset.count()} subscription(s).", messages.SUCCESS)


@admin.register(Hl7Interface)
class Hl7InterfaceAdmin(AuditedAdmin):
    list_display = ["name", "host", "port", "receiving_application", "is_active"]
    fields = [
        "name",
        "host",
        "port",
        "sending_application",
        "sending_facility",
        "receiving_application",
        "receiving_facility",
        "processing_id",
        "timeout_seconds",
        "is_active",
    ]


class AttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = ("at", "outcome", "code", "detail", "duration_ms")


@admin.register(Delivery)
class DeliveryAdmin(AuditedAdmin):
    list_display = ["id", "event", "webhook", "interface", "status", "attempts", "next_attempt_at", "last_error"]
    list_filter = ["status", "webhook", "interface"]
    inlines = [AttemptInline]
    actions = ["redeliver", "skip"]
    fields = readonly_fields = (
        "event",
        "webhook",
        "interface",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "last_error",
        "control_id",
        "created_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Redeliver the selected deliveries")
    def redeliver(self, request: HttpRequest, queryset: Any) -> None:
        self._each(request, queryset, delivery_redeliver, "will go at the next run")

    @admin.action(description="Skip the selected deliveries (the cases' later messages then go)")
    def skip(self, request: HttpRequest, queryset: Any) -> None:
        self._each(request, queryset, delivery_skip, "skipped")

    def _each(self, request: HttpRequest, queryset: Any, service: Any, done: str) -> None:
        count = 0
        for delivery in queryset.order_by("event_id", "id"):
            try:
                service(actor=request.user, delivery=delivery)
                count += 1
            except InvalidTransition as exc:
                self.message_user(request, f"Delivery {delivery.pk}: {exc.message}", messages.WARNING)
        if count:
            self.message_user(request, f"{count} delivery(ies) {done}.", messages.SUCCESS)
