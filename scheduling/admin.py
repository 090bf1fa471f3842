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


class PatientDataAdmin(admin.ModelAdmin):
    """Audits, like the API's reads, every admin page that shows patient data: the list (if
    ``audit_list``), an opened record, its history, and the delete confirmation, which lists
    the records that would go with it. One audit row per page, with ids only."""

    audit_prefix = ""
    audit_list = False

    def patients_shown(self, object_ids: list[str]) -> dict[int, int]:
        """Patient id of each object (by primary key) among ``object_ids`` that exists."""
        raise NotImplementedError

    def audit_details(self, object_pks: list[int]) -> dict[str, Any]:
        return {}

    def _audit(self, request: HttpRequest, action: str, object_ids: list[str]) -> None:
        shown = self.patients_shown([i for i in object_ids if i.isdigit()])
        if shown:
            audit_read(
                actor=request.user,
                action=f"{self.audit_prefix}.{action}",
                object_type="scheduling.patient",
                object_ids=sorted(set(shown.values())),
                details=self.audit_details(sorted(shown)),
            )

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        # A redirect (e.g. after a bulk action) has no context and shows no patients.
        context = getattr(response, "context_data", None) or {}
        changelist = context.get("cl")
        if changelist is not None and self.audit_list:
            self._audit(request, "admin_list", [str(obj.pk) for obj in changelist.result_list])
        elif "deletable_objects" in context and context.get("queryset") is not None:
            # "Delete selected" asks for confirmation on a page naming every record concerned.
            self._audit(request, "admin_delete_confirm", [str(obj.pk) for obj in context["queryset"]])
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        # A 200 is the record on screen: opened, or sent back with errors after a POST.
        if response.status_code == 200:
            self._audit(request, "admin_read", [object_id])
        return response

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().history_view(request, object_id, extra_context)
        if response.status_code == 200:
            self._audit(request, "admin_history", [object_id])
        return response

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().delete_view(request, object_id, extra_context)
        # A confirmed delete redirects; a 200 is the confirmation page.
        if response.status_code == 200:
            self._audit(request, "admin_delete_confirm", [object_id])
        return response


class PatientRecordInline(admin.TabularInline):
    extra = 0


class MedicationHoldInline(PatientRecordInline):
    model = MedicationHold


class LabResultInline(PatientRecordInline):
    model = LabResult


class ImagingStudyInline(PatientRecordInline):
    model = ImagingStudy


@admin.register(Patient)
class PatientAdmin(PatientDataAdmin):
    """The patient's holds, labs and imaging are shown inline, so their reads are audited with
    the patient's pages."""

    # Minimum necessary in lists: the MRN identifies the row; details open one patient at a time.
    list_display = ["mrn", "created_at"]
    search_fields = ["mrn"]
    inlines = [MedicationHoldInline, LabResultInline, ImagingStudyInline]
    audit_prefix = "patient"
    audit_list = True

    def patients_shown(self, object_ids: list[str]) -> dict[int, int]:
        return {pk: pk for pk in Patient.objects.filter(pk__in=object_ids).values_list("pk", flat=True)}


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
