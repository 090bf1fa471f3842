from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import admin

from core.admin import AuditedAdmin, SiteLocalTimesForm, clinic_zone, local_label
from staff.models import Credential, Shift, StaffMember, TimeOff


class CredentialInline(admin.TabularInline):
    model = Credential
    extra = 0


class ShiftInline(admin.TabularInline):
    model = Shift
    extra = 0


@admin.register(StaffMember)
class StaffMemberAdmin(AuditedAdmin):
    list_display = ["__str__", "role", "sedation_capable", "user", "is_active"]
    list_filter = ["role", "sedation_capable", "is_active"]
    search_fields = ["first_name", "last_name"]
    inlines = [CredentialInline, ShiftInline]


@admin.register(Credential)
class CredentialAdmin(AuditedAdmin):
    list_display = ["staff", "kind", "procedure_code", "jurisdiction", "valid_from", "expires_on"]
    list_filter = ["kind", "jurisdiction"]


def staff_zone(member: StaffMember | None) -> ZoneInfo:
    """A person's times are read where they work: the site of their shifts."""
    shift = member.shifts.select_related("site").order_by("pk").first() if member is not None else None
    return shift.site.zone if shift is not None else clinic_zone()


class TimeOffForm(SiteLocalTimesForm):
    class Meta:
        model = TimeOff
        fields = ["staff", "starts_at", "ends_at", "reason"]

    def site_zone(self, cleaned: dict[str, Any]) -> ZoneInfo | None:
        return staff_zone(cleaned.get("staff"))


@admin.register(TimeOff)
class TimeOffAdmin(AuditedAdmin):
    form = TimeOffForm
    list_display = ["staff", "starts_local", "ends_local", "reason"]
    date_hierarchy = "starts_at"

    def zone_for(self, obj: TimeOff) -> ZoneInfo:
        return staff_zone(obj.staff)

    @admin.display(description="starts", ordering="starts_at")
    def starts_local(self, obj: TimeOff) -> str:
        return local_label(obj.starts_at, self.zone_for(obj))

    @admin.display(description="ends", ordering="ends_at")
    def ends_local(self, obj: TimeOff) -> str:
        return local_label(obj.ends_at, self.zone_for(obj))
