from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from core.audit import audit_read
from scheduling.models import (
    Alert,
    Allocation,
    Booking,
    ImagingStudy,
    LabResult,
    MedicationHold,
    Notification,
    Patient,
    ProcedureType,
)


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


class PatientRecordInline(admin.TabularInline):
    extra = 0


class MedicationHoldInline(PatientRecordInline):
    model = MedicationHold


class LabResultInline(PatientRecordInline):
    model = LabResult


class ImagingStudyInline(PatientRecordInline):
    model = ImagingStudy


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    """Reads here are audited like the API's: the list (MRNs) and each opened record."""

    # Minimum necessary in lists: the MRN identifies the row; details open one patient at a time.
    list_display = ["mrn", "created_at"]
    search_fields = ["mrn"]
    inlines = [MedicationHoldInline, LabResultInline, ImagingStudyInline]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        # A redirect (e.g. after a bulk action) has no context and shows no patients.
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is not None:
            ids = [patient.pk for patient in changelist.result_list]
            audit_read(
                actor=request.user, action="patient.admin_list", object_type="scheduling.patient", object_ids=ids
            )
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            audit_read(
                actor=request.user,
                action="patient.admin_read",
                object_type="scheduling.patient",
                object_ids=[object_id],
            )
        return response


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
class BookingAdmin(admin.ModelAdmin):
    """Read-only: bookings are written through the scheduling services, which lock resources,
    check every rule and audit the change."""

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

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        booking = Booking.objects.filter(pk=object_id).only("patient_id").first() if object_id.isdigit() else None
        if request.method == "GET" and response.status_code == 200 and booking is not None:
            audit_read(
                actor=request.user,
                action="booking.admin_read",
                object_type="scheduling.patient",
                object_ids=[booking.patient_id],
                details={"booking": booking.pk},
            )
        return response

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Booking | None = None) -> bool:
        return False


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
