from django.contrib import admin

from staff.models import Credential, Shift, StaffMember, TimeOff


class CredentialInline(admin.TabularInline):
    model = Credential
    extra = 0


class ShiftInline(admin.TabularInline):
    model = Shift
    extra = 0


@admin.register(StaffMember)
class StaffMemberAdmin(admin.ModelAdmin):
    list_display = ["__str__", "role", "sedation_capable", "user", "is_active"]
    list_filter = ["role", "sedation_capable", "is_active"]
    search_fields = ["first_name", "last_name"]
    inlines = [CredentialInline, ShiftInline]


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    list_display = ["staff", "kind", "procedure_code", "jurisdiction", "valid_from", "expires_on"]
    list_filter = ["kind", "jurisdiction"]


@admin.register(TimeOff)
class TimeOffAdmin(admin.ModelAdmin):
    list_display = ["staff", "starts_at", "ends_at", "reason"]
    date_hierarchy = "starts_at"
