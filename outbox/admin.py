from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from outbox.models import Alert, Notification


class ReadOnlyAdmin(admin.ModelAdmin):
    """Written by the services; the admin only shows them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "site", "kind", "booking_id", "message", "resolved_at"]
    list_filter = ["kind", "site"]
    date_hierarchy = "created_at"


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["due_at", "kind", "channel", "status", "booking_id", "attempts", "sent_at"]
    list_filter = ["status", "kind", "channel"]
    date_hierarchy = "due_at"
