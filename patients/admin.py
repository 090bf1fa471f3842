from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from core.admin import AuditedAdmin
from core.audit import audit_read
from patients.models import Drug, ImagingStudy, LabResult, MedicationHold, Patient


class PatientDataAdmin(AuditedAdmin):
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

    def _audit_read(self, request: HttpRequest, action: str, object_ids: list[str]) -> None:
        shown = self.patients_shown([i for i in object_ids if i.isdigit()])
        if shown:
            audit_read(
                actor=request.user,
                action=f"{self.audit_prefix}.{action}",
                object_type="patients.patient",
                object_ids=sorted(set(shown.values())),
                details=self.audit_details(sorted(shown)),
            )

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        # A redirect (e.g. after a bulk action) has no context and shows no patients.
        context = getattr(response, "context_data", None) or {}
        changelist = context.get("cl")
        if changelist is not None and self.audit_list:
            self._audit_read(request, "admin_list", [str(obj.pk) for obj in changelist.result_list])
        elif "deletable_objects" in context and context.get("queryset") is not None:
            # "Delete selected" asks for confirmation on a page naming every record concerned.
            self._audit_read(request, "admin_delete_confirm", [str(obj.pk) for obj in context["queryset"]])
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        # A 200 is the record on screen: opened, or sent back with errors after a POST.
        if response.status_code == 200:
            self._audit_read(request, "admin_read", [object_id])
        return response

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().history_view(request, object_id, extra_context)
        if response.status_code == 200:
            self._audit_read(request, "admin_history", [object_id])
        return response

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().delete_view(request, object_id, extra_context)
        # A confirmed delete redirects; a 200 is the confirmation page.
        if response.status_code == 200:
            self._audit_read(request, "admin_delete_confirm", [object_id])
        return response


class PatientRecordInline(admin.TabularInline):
    """Shown with the patient, written only through the API and its services (validated,
    audited, and re-timing the patient's reminders)."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MedicationHoldInline(PatientRecordInline):
    model = MedicationHold
    fields = readonly_fields = ("drug", "hold_days", "last_dose_on")


class LabResultInline(PatientRecordInline):
    model = LabResult
    fields = readonly_fields = ("test", "value", "taken_at")


class ImagingStudyInline(PatientRecordInline):
    model = ImagingStudy
    fields = readonly_fields = ("modality", "performed_on")


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


@admin.register(Drug)
class DrugAdmin(AuditedAdmin):
    """The drug list: hold days per bleeding risk, edited by the clinic."""

    list_display = [
        "name",
        "code",
        "drug_class",
        "hold_days_high",
        "hold_days_intermediate",
        "hold_days_low",
        "is_active",
    ]
    list_filter = ["drug_class", "is_active"]
    search_fields = ["name", "code"]
