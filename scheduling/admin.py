from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from core.admin import AuditedAdmin, SiteLocalTimesForm, clinic_zone, local_label
from patients.admin import PatientDataAdmin
from rooms.models import Downtime
from scheduling.models import Allocation, Booking, ProcedureType
from scheduling.services.downtime import downtime_create, downtime_delete, downtime_update


@admin.register(ProcedureType)
class ProcedureTypeAdmin(AuditedAdmin):
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

    def has_change_permission(self, request: HttpRequest, obj: Booking | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Booking | None = None) -> bool:
        return False


def fieldset_names(fieldsets: Any) -> list[str]:
    """Every field a fieldsets layout names, rows flattened."""
    names: list[str] = []
    for _, options in fieldsets:
        for entry in options["fields"]:
            names.extend(entry if isinstance(entry, tuple) else (entry,))
    return names


@admin.register(Booking)
class BookingAdmin(PatientDataAdmin):
    """Read-only: bookings are written through the scheduling services, which lock resources,
    check every rule and audit the change. An opened booking shows its patient's MRN; the list
    does not name patients."""

    list_display = ["id", "procedure_type", "site", "starts_local", "status"]
    list_select_related = ["procedure_type", "site"]
    list_filter = ["status", "site", "procedure_type"]
    date_hierarchy = "starts_at"
    inlines = [AllocationInline]
    # The case first, then what happened to it; everything read-only.
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "patient",
                    "procedure_type",
                    ("levels", "sedation"),
                    "site",
                    "status",
                    ("arrival_at", "starts_at", "ends_at"),
                ]
            },
        ),
        (
            "Procedure day",
            {
                "fields": [
                    "checked_in_at",
                    "ready_at",
                    ("procedure_started_at", "procedure_ended_at"),
                    "recovery_started_at",
                    "ready_for_discharge_at",
                    "discharged_at",
                ]
            },
        ),
        (
            "Anticoagulant override",
            {"fields": ["anticoagulant_override_reason", "anticoagulant_override_by", "anticoagulant_override_at"]},
        ),
        ("Hold and cancellation", {"fields": ["hold_expires_at", "cancel_reason", "cancel_note"]}),
        ("Record", {"fields": ["created_by", "created_at", "updated_at"]}),
    ]
    readonly_fields = fieldset_names(fieldsets)
    audit_prefix = "booking"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Booking]:
        # With its site, so the title names the start in the site's zone.
        return super().get_queryset(request).select_related("procedure_type", "site")

    def patients_shown(self, object_ids: list[str]) -> dict[int, int]:
        return dict(Booking.objects.filter(pk__in=object_ids).values_list("pk", "patient_id"))

    def audit_details(self, object_pks: list[int]) -> dict[str, Any]:
        return {"booking": object_pks[0]} if len(object_pks) == 1 else {"bookings": object_pks}

    def zone_for(self, obj: Booking) -> ZoneInfo:
        return obj.site.zone

    @admin.display(description="starts", ordering="starts_at")
    def starts_local(self, obj: Booking) -> str:
        return local_label(obj.starts_at, obj.site.zone)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Booking | None = None) -> bool:
        # Viewing only: the services lock, check every rule and audit; the admin would not.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Booking | None = None) -> bool:
        return False


def downtime_zone(downtime: Downtime | None, room: Any = None, equipment: Any = None) -> ZoneInfo:
    target = room or equipment or (downtime.target if downtime is not None else None)
    return target.site.zone if target is not None else clinic_zone()


class DowntimeForm(SiteLocalTimesForm):
    class Meta:
        model = Downtime
        fields = ["room", "equipment", "starts_at", "ends_at", "reason", "note"]

    def site_zone(self, cleaned: dict[str, Any]) -> ZoneInfo | None:
        return downtime_zone(None, cleaned.get("room"), cleaned.get("equipment"))


DOWNTIME_FIELDS = ("room", "equipment", "starts_at", "ends_at", "reason", "note")


@admin.register(Downtime)
class DowntimeAdmin(AuditedAdmin):
    """Saved through the downtime services, as from the API: a block raises an alert and a
    notice for every case it hits, and is audited."""

    form = DowntimeForm
    list_display = ["target", "reason", "starts_local", "ends_local", "note"]
    list_filter = ["reason"]
    list_select_related = ["room__site", "equipment__site"]
    date_hierarchy = "starts_at"

    def zone_for(self, obj: Downtime) -> ZoneInfo:
        return downtime_zone(obj)

    @admin.display(description="starts", ordering="starts_at")
    def starts_local(self, obj: Downtime) -> str:
        return local_label(obj.starts_at, self.zone_for(obj))

    @admin.display(description="ends", ordering="ends_at")
    def ends_local(self, obj: Downtime) -> str:
        return local_label(obj.ends_at, self.zone_for(obj))

    def save_model(self, request: HttpRequest, obj: Downtime, form: ModelForm, change: bool) -> None:
        data = {name: form.cleaned_data.get(name) for name in DOWNTIME_FIELDS}
        data["note"] = data["note"] or ""
        if change:
            current = Downtime.objects.get(pk=obj.pk)
            saved = downtime_update(actor=request.user, downtime=current, data=data)
        else:
            saved = downtime_create(actor=request.user, data=data)
        obj.pk = saved.pk
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Downtime) -> None:
        downtime_delete(actor=request.user, downtime=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Downtime]) -> None:
        for downtime in queryset:
            downtime_delete(actor=request.user, downtime=downtime)
