"""The admin is for configuration. Every model it shows uses ``AuditedAdmin``: each write it
makes leaves an audit record (who, what, which fields; never values), and every time it shows
or takes is in the site's zone, named on the page.

Operational records (bookings and their legs, downtime, labs, imaging, medication holds,
checklists, alerts, messages) are read-only here or saved through the same services as the
API; the apps' admin modules say which.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from core.audit import audit_record
from core.clients import service_account_create, service_account_revoke
from core.dates import to_local
from core.models import ApiKey, AuditEvent, Scope, ServiceAccount

UTC_ZONE = ZoneInfo("UTC")
# The admin takes a model date-time as a split date and time.
DATETIME_FORM_FIELDS = (forms.DateTimeField, forms.SplitDateTimeField)


def clinic_zone() -> ZoneInfo:
    """The zone of a page that shows no one site: the sites' zone when they share one (the
    usual clinic), else UTC, named on the page either way."""
    site_model = apps.get_model("rooms", "Site")
    zones = set(site_model.objects.filter(is_active=True).values_list("timezone", flat=True))
    return ZoneInfo(zones.pop()) if len(zones) == 1 else UTC_ZONE


def local_label(moment: datetime | None, zone: ZoneInfo) -> str:
    """A time as the site reads it, with the zone's abbreviation (CST, CDT...)."""
    if moment is None:
        return "-"
    local = to_local(moment, zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def _change_summary(message: Any) -> dict[str, Any]:
    """Field and inline names from an admin change message; never the values or the objects'
    names, which can be patient data."""
    if not isinstance(message, list):
        return {}
    fields: set[str] = set()
    inlines: list[dict[str, str]] = []
    for entry in message:
        for verb, what in entry.items():
            if not isinstance(what, dict):
                continue
            if "name" in what:
                inlines.append({verb: str(what["name"])})
            fields.update(str(name) for name in what.get("fields", ()))
    summary: dict[str, Any] = {}
    if fields:
        summary["fields"] = sorted(fields)
    if inlines:
        summary["inlines"] = inlines
    return summary


class AuditedAdmin(admin.ModelAdmin):
    """Every admin write is audited, in the write's own transaction (Django calls these hooks
    inside it), as ``admin.<model>.add|change|delete``."""

    def construct_change_message(self, request: HttpRequest, form: Any, formsets: Any, add: bool = False) -> Any:
        # The audit names fields as the model does; the admin's message uses their labels.
        request._admin_changed_fields = sorted(form.changed_data)  # type: ignore[attr-defined]
        return super().construct_change_message(request, form, formsets, add)

    def _audit(self, request: HttpRequest, obj: models.Model, verb: str, message: Any = None) -> None:
        details = _change_summary(message)
        changed = getattr(request, "_admin_changed_fields", None)
        if changed:
            details["fields"] = changed
        audit_record(actor=request.user, action=f"admin.{obj._meta.model_name}.{verb}", obj=obj, details=details)

    def log_addition(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        self._audit(request, obj, "add", message)
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        self._audit(request, obj, "change", message)
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        for obj in queryset:
            self._audit(request, obj, "delete")
        return super().log_deletions(request, queryset)

    # --- times in the site's zone ----------------------------------------------------------

    def zone_for(self, obj: Any) -> ZoneInfo:
        """The zone an object's times are shown and taken in; models with a site override it."""
        return clinic_zone()

    def _zoned(self, zone: ZoneInfo, view: Any, *args: Any) -> HttpResponse:
        # Pages render lazily; render inside the zone so every time on them is in it.
        with timezone.override(zone):
            response = view(*args)
            render = getattr(response, "render", None)
            if render is not None and not getattr(response, "is_rendered", True):
                response = render()
        return response

    def _object_zone(self, request: HttpRequest, object_id: str | None) -> tuple[Any, ZoneInfo]:
        obj = self.get_object(request, object_id) if object_id else None
        return obj, (self.zone_for(obj) if obj is not None else clinic_zone())

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        obj, zone = self._object_zone(request, object_id)
        subtitle = f"{obj} · times in {zone.key}" if obj is not None else f"Times in {zone.key}"
        context = {**(extra_context or {}), "subtitle": subtitle}
        return self._zoned(zone, super().changeform_view, request, object_id, form_url, context)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        zone = clinic_zone()
        context = {**(extra_context or {}), "subtitle": f"Times in {zone.key}"}
        return self._zoned(zone, super().changelist_view, request, context)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        _, zone = self._object_zone(request, object_id)
        return self._zoned(zone, super().history_view, request, object_id, extra_context)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        zone = self.zone_for(obj) if obj is not None else clinic_zone()
        for field in form.base_fields.values():
            if isinstance(field, DATETIME_FORM_FIELDS):
                note = f"Local time, {zone.key}."
                field.help_text = f"{field.help_text} {note}".strip() if field.help_text else note
        return form


@admin.register(AuditEvent)
class AuditEventAdmin(AuditedAdmin):
    list_display = ["at_local", "actor_label", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_label", "object_id"]
    date_hierarchy = "at"

    @admin.display(description="at", ordering="at")
    def at_local(self, obj: AuditEvent) -> str:
        return local_label(obj.at, clinic_zone())

    # The trail is append-only: nobody edits or deletes it through the admin.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False


# Accounts and roles are configuration too: their writes are audited like any other.
class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    pass


class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    pass


admin.site.unregister(User)
admin.site.unregister(Group)
admin.site.register(User, AuditedUserAdmin)
admin.site.register(Group, AuditedGroupAdmin)


class SiteLocalTimesForm(forms.ModelForm):
    """Date-times typed as the wall clock of the record's own site.

    The page reads them in its zone (the clinic's); a record of a site in another zone has
    them read again in that site's zone once the form knows the site (``site_zone``).
    """

    def site_zone(self, cleaned: dict[str, Any]) -> ZoneInfo | None:
        return None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        zone = self.site_zone(cleaned)
        page_zone = timezone.get_current_timezone()
        if zone is not None and zone.key != getattr(page_zone, "key", None):
            for name, field in self.fields.items():
                value = cleaned.get(name)
                if isinstance(field, DATETIME_FORM_FIELDS) and isinstance(value, datetime):
                    cleaned[name] = value.astimezone(page_zone).replace(tzinfo=zone)
        return cleaned


class ServiceAccountAddForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, help_text="What its first key may do."
    )

    class Meta:
        model = ServiceAccount
        fields = ["name"]


class ReadOnlyInline(admin.TabularInline):
    """Rows shown under their parent as written elsewhere: no adding, changing or deleting."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields or ()

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ApiKeyInline(ReadOnlyInline):
    model = ApiKey
    fields = ("prefix", "scopes", "created_at", "last_used_at", "revoked_at")


@admin.register(ServiceAccount)
class ServiceAccountAdmin(AuditedAdmin):
    """Adding an account issues its first key, shown once on the next page; revoking is an
    action on the list. Keys are never edited: issue a new one and revoke the old."""

    list_display = ["name", "created_at", "revoked_at"]
    inlines = [ApiKeyInline]
    actions = ["revoke"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ServiceAccountAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["name", "user", "created_at", "created_by", "revoked_at"] if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["name", "scopes"] if obj is None else ["name", "user", "created_at", "created_by", "revoked_at"]

    def save_model(self, request: HttpRequest, obj: ServiceAccount, form: Any, change: bool) -> None:
        if change:
            return
        account, key = service_account_create(
            actor=request.user, name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"]
        )
        obj.pk, obj.user_id = account.pk, account.user_id
        self.message_user(
            request, f"The key for {account.name} is {key.raw} — copy it now: it is not stored and is not shown again."
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return None

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> Any:
        return super().get_inline_instances(request, obj) if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke the selected accounts and all their keys")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for account in queryset:
            service_account_revoke(actor=request.user, account=account)
        self.message_user(request, f"Revoked {queryset.count()} service account(s).")
