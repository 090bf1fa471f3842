from django.contrib import admin

from rooms.models import Downtime, Equipment, OpeningHours, ProcedureRoom, RecoveryBay, Site


class OpeningHoursInline(admin.TabularInline):
    model = OpeningHours
    extra = 0
    fields = ["room", "weekday", "opens_at", "closes_at"]


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "timezone", "jurisdiction", "is_active"]
    inlines = [OpeningHoursInline]


@admin.register(ProcedureRoom)
class ProcedureRoomAdmin(admin.ModelAdmin):
    list_display = ["name", "site", "capabilities", "is_active"]
    list_filter = ["site", "is_active"]


@admin.register(Equipment)
class EquipmentAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "site", "room", "serial_number", "is_active"]
    list_filter = ["site", "kind", "is_active"]


@admin.register(RecoveryBay)
class RecoveryBayAdmin(admin.ModelAdmin):
    list_display = ["name", "site", "is_active"]
    list_filter = ["site", "is_active"]


@admin.register(Downtime)
class DowntimeAdmin(admin.ModelAdmin):
    list_display = ["target", "reason", "starts_at", "ends_at", "note"]
    list_filter = ["reason"]
    date_hierarchy = "starts_at"
