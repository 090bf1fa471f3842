from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import admin
from django.http import HttpRequest

from core.admin import AuditedAdmin, clinic_zone, local_label
from outbox.models import Alert, Notification
from outbox.registry import label_of


class ReadOnlyAdmin(AuditedAdmin):
    """Written by the services; the admin only shows them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["created_local", "site", "kind", "booking_id", "message", "resolved_local"]
    list_filter = ["kind", "site"]
    list_select_related = ["site"]
    date_hierarchy = "created_at"

    def zone_for(self, obj: Alert) -> ZoneInfo:
        return obj.site.zone

    @admin.display(description="created", ordering="created_at")
    def created_local(self, obj: Alert) -> str:
        return local_label(obj.created_at, obj.site.zone)

    @admin.display(description="resolved", ordering="resolved_at")
    def resolved_local(self, obj: Alert) -> str:
        return local_label(obj.resolved_at, obj.site.zone)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["due_local", "kind_label", "channel", "status", "booking_id", "attempts", "sent_local"]
    list_filter = ["status", "kind", "channel"]
    list_select_related = ["site", "booking__site"]
    date_hierarchy = "due_at"

    def zone_for(self, obj: Notification) -> ZoneInfo:
        site = obj.site or (obj.booking.site if obj.booking is not None else None)
        return site.zone if site is not None else clinic_zone()

    @admin.display(description="kind", ordering="kind")
    def kind_label(self, obj: Notification) -> str:
        return label_of(obj.kind)

    @admin.display(description="due", ordering="due_at")
    def due_local(self, obj: Notification) -> str:
        return local_label(obj.due_at, self.zone_for(obj))

    @admin.display(description="sent", ordering="sent_at")
    def sent_local(self, obj: Notification) -> str:
        return local_label(obj.sent_at, self.zone_for(obj))
