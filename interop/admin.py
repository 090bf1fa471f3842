"""Configuration of the destinations (webhooks, HL7 interfaces) and the delivery log, with
redelivery by hand. Deliveries are read-only here: they are written by the relay."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from core.admin import AuditedAdmin
from interop.delivery import delivery_redeliver
from interop.models import Delivery, DeliveryAttempt, Hl7Interface, WebhookSubscription


@admin.register(WebhookSubscription)
class WebhookAdmin(AuditedAdmin):
    list_display = ["name", "url", "is_active", "created_at"]
    readonly_fields = ["secret", "created_at", "lease_until"]
    exclude = ["created_by"]


@admin.register(Hl7Interface)
class Hl7InterfaceAdmin(AuditedAdmin):
    list_display = ["name", "host", "port", "receiving_application", "is_active"]
    readonly_fields = ["created_at", "lease_until"]


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("at", "outcome", "code", "detail", "duration_ms")
    readonly_fields = ("at", "outcome", "code", "detail", "duration_ms")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(AuditedAdmin):
    list_display = ["id", "event", "webhook", "interface", "status", "attempts", "next_attempt_at", "last_error"]
    list_filter = ["status", "webhook", "interface"]
    inlines = [AttemptInline]
    actions = ["redeliver"]
    readonly_fields = [
        "event",
        "webhook",
        "interface",
        "subject_key",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "last_error",
        "control_id",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Redeliver the selected deliveries")
    def redeliver(self, request: HttpRequest, queryset: Any) -> None:
        for delivery in queryset:
            delivery_redeliver(actor=request.user, delivery=delivery)
        self.message_user(request, f"{queryset.count()} delivery(ies) will go at the next run.")
