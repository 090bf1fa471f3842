from django.contrib import admin

from core.admin import AuditedAdmin
from rooms.models import Equipment, OpeningHours, ProcedureRoom, RecoveryBay, Site


class OpeningHoursInline(admin.TabularInline):
    model = OpeningHours
    extra = 0
    fields = ["room", "weekday", "opens_at", "closes_at"]


@admin.register(Site)
class SiteAdmin(AuditedAdmin):
    list_display = ["name", "code", "timezone", "jurisdiction", "is_active"]
    inlines = [OpeningHoursInline]


@admin.register(ProcedureRoom)
class ProcedureRoomAdmin(AuditedAdmin):
    list_display = ["name", "site", "capabilities", "is_active"]
    list_filter = ["site", "is_active"]


@admin.register(Equipment)
class EquipmentAdmin(AuditedAdmin):
    list_display = ["name", "kind", "site", "room", "serial_number", "is_active"]
    list_filter = ["site", "kind", "is_active"]


@admin.register(RecoveryBay)
class RecoveryBayAdmin(AuditedAdmin):
    list_display = ["name", "site", "is_active"]
    list_filter = ["site", "is_active"]


# Downtime is registered by scheduling's admin: it is saved through the downtime services,
# which flag the cases a block hits.
