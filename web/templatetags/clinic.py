"""Times in the site's zone, named; small display helpers for the pages."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from scheduling.legroles import LEG_ROLES, LegRole

register = template.Library()


@register.filter
def hm(moment: datetime | None, zone: ZoneInfo) -> str:
    """ "09:30" in ``zone``."""
    return "" if moment is None else f"{moment.astimezone(zone):%H:%M}"


@register.filter
def when(moment: datetime | None, zone: ZoneInfo) -> str:
    """ "Mon 7 Dec 09:30 CST" in ``zone``, the zone named."""
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y %H:%M} {local.tzname()}"


@register.filter
def tzname(moment: datetime | None, zone: ZoneInfo) -> str:
    return "" if moment is None else str(moment.astimezone(zone).tzname())


@register.filter
def longdate(day: date | None) -> str:
    return "" if day is None else f"{day:%A} {day.day} {day:%B %Y}"


@register.filter
def get(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key) if mapping else None


@register.simple_tag
def hidden_copy(form: Any) -> str:
    """The form's values as hidden inputs without ids (one copy per slot on a page)."""
    parts = []
    for field in form:
        value = field.field.prepare_value(field.value())
        if value is None or value is False:
            continue
        parts.append(format_html('<input type="hidden" name="{}" value="{}">', field.html_name, value))
    return mark_safe("".join(parts))  # noqa: S308 (each part escaped by format_html)


ITEM_WORDS = {
    "ok": "done",
    "missing": "missing",
    "failed": "failed",
    "not_required": "not needed",
    "overridden": "overridden",
    "due_on_day": "due on the day",
}
ACTION_WORDS = {
    "booking.create": "Booked (or held)",
    "booking.confirm": "Hold confirmed",
    "booking.reschedule": "Moved",
    "booking.cancel": "Cancelled",
    "booking.hold_expire": "Hold expired",
    "booking.anticoagulant_override": "Anticoagulant hold overridden",
    "booking.readiness_override": "Readiness overridden",
    "booking.check_in": "Checked in",
    "booking.ready": "Ready",
    "booking.start_procedure": "Procedure started",
    "booking.end_procedure": "Procedure ended",
    "booking.start_recovery": "Recovery started",
    "booking.ready_for_discharge": "Ready for discharge",
    "booking.discharge": "Discharged",
    "booking.no_show": "No-show",
}


@register.filter
def item_words(status: str) -> str:
    return ITEM_WORDS.get(status, status.replace("_", " "))


@register.filter
def action_words(action: str) -> str:
    return ACTION_WORDS.get(action, action.replace("_", " ").replace(".", ": "))


# The checklist's codes as a list reads them ("Missing: consent, INR, allergy review").
CHECK_WORDS = {
    "consent": "consent",
    "escort": "escort",
    "holds": "blood-thinner hold",
    "inr": "INR",
    "platelets": "platelets",
    "imaging": "imaging",
    "fasting": "fasting",
    "pregnancy": "pregnancy screen",
    "allergies": "allergy review",
}


@register.filter
def check_words(codes: Any) -> str:
    return ", ".join(CHECK_WORDS.get(str(code), str(code)) for code in codes or ())


@register.filter
def iso_hm(value: str | None) -> str:
    """An ISO 8601 instant (given in the site's zone) as the clock reads it there."""
    if not value:
        return "–"
    return datetime.fromisoformat(value).strftime("%H:%M")


@register.filter
def minutes_hm(value: int | None) -> str:
    """A number of minutes as hours and minutes (a day's length)."""
    if value is None:
        return "–"
    return f"{value // 60} h {value % 60:02d} min"


@register.filter
def percent(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f} %"


@register.filter
def role_label(code: str) -> str:
    """A leg role as people say it (C-arm, radiology tech...)."""
    info = LEG_ROLES.get(code) if code in LegRole.values else None
    return str(info.label) if info is not None else code
