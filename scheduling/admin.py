from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from patients.admin import PatientDataAdmin
from scheduling.models import Allocation, Booking, ProcedureType


@admin.register(ProcedureType)
class ProcedureTypeAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "room_minutes",
        "minutes_per_extra_level",
        "max_levels",
        "turnover_minutes",
        "recovery_minutes",
        "sedation_default",
        "bleeding_risk",
        "is_active",
    ]
    list_filter = ["bleeding_risk", "is_active"]


class AllocationInline(admin.TabularInline):
    model = Allocation
    extra = 0
    fields = ("role", "room", "equipment", "staff", "bay", "starts_at", "ends_at", "is_active")
    readonly_fields = ("role", "room", "equipment", "staff", "bay", "starts_at", "ends_at", "is_active")

    def has_add_permission(self, request: HttpRequest, obj: Booking | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Booking | None = None) -> bool:
        return False


@admin.register(Booking)
class BookingAdmin(PatientDataAdmin):
    """Read-only: bookings are written through the scheduling services, which lock resources,
    check every rule and audit the change. An opened booking shows its patient's MRN; the list
    does not name patients."""

    list_display = ["id", "procedure_type", "site", "starts_at", "status"]
    list_filter = ["status", "site", "procedure_type"]
    date_hierarchy = "starts_at"
    inlines = [AllocationInline]
    readonly_fields = [
        "patient",
        "procedure_type",
        "site",
        "levels",
        "sedation",
        "status",
        "starts_at",
        "ends_at",
        "arrival_at",
        "cancel_reason",
        "cancel_note",
        "created_by",
        "created_at",
        "updated_at",
    ]
    audit_prefix = "booking"

    def patients_shown(self, object_ids: list[str]) -> dict[int, int]:
        return dict(Booking.objects.filter(pk__in=object_ids).values_list("pk", "patient_id"))

    def audit_details(self, object_pks: list[int]) -> dict[str, Any]:
        return {"booking": object_pks[0]} if len(object_pks) == 1 else {"bookings": object_pks}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Booking | None = None) -> bool:
        return False
