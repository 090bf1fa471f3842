"""Availability, reasons and bookings: inputs check shape only (the rulebook decides the rest),
outputs show times in the site's zone and the patient as the caller's role may see them."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.fields import (
    AwareDateTimeField,
    ClinicDateField,
    CodeField,
    IdField,
    InstantText,
    PinField,
    WallClockTimeField,
    local_iso,
)
from api.serializers.common import FlatFields, PatientScoped
from api.serializers.patients import patient_data
from patients.models import Patient
from procedure_day.recovery import recovery_clock
from procedure_day.services.corrections import STEP_FIELDS
from scheduling.availability.search import MAX_WINDOW_DAYS, Slot
from scheduling.legroles import PIN_FIELDS
from scheduling.models import Booking, BookingStatus, CancelReason, ProcedureType, Sedation
from scheduling.order import PriorAuthStatus, Side, case_order, level_count
from scheduling.selectors import LegView, leg_views


class ResourceRefSerializer(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.IntegerField()
    name = serializers.CharField()


class LegSerializer(serializers.Serializer):
    role = serializers.CharField()
    resource = ResourceRefSerializer()
    start = InstantText(help_text="ISO 8601 in the site's time zone")
    end = InstantText(help_text="ISO 8601 in the site's time zone")


class SlotSerializer(serializers.Serializer):
    start = InstantText()
    end = InstantText()
    site = serializers.IntegerField()
    legs = LegSerializer(many=True)


class AvailabilityResultSerializer(serializers.Serializer):
    results = SlotSerializer(many=True)


class PinsInput(FlatFields):
    """Resources the caller fixes, by id; the rulebook checks that each exists and may do the
    case. ``sedation_staff`` is the sedation nurse or the anaesthesia provider, as the
    sedation level needs."""

    physician = PinField(required=False)
    room = PinField(required=False)
    c_arm = PinField(required=False)
    rf_generator = PinField(required=False)
    rad_tech = PinField(required=False)
    sedation_staff = PinField(required=False)
    device_rep = PinField(required=False)
    recovery_bay = PinField(required=False)
    site = PinField(required=False)


def pins_from(data: dict[str, Any]) -> dict[str, int]:
    return {name: data[name] for name in PIN_FIELDS if data.get(name) is not None}


class AvailabilityQuery(PatientScoped, PinsInput):
    procedure_type = CodeField(slug_field="code", queryset=ProcedureType.objects.filter(is_active=True))
    levels = serializers.IntegerField(min_value=1, max_value=20, default=1)
    to = ClinicDateField()
    sedation = serializers.ChoiceField(Sedation.choices, required=False)
    patient = IdField(queryset=Patient.objects.none(), required=False)
    earliest = WallClockTimeField(required=False, help_text="Earliest start, site-local time of day")
    latest = WallClockTimeField(required=False, help_text="Latest start, site-local time of day")
    limit = serializers.IntegerField(min_value=1, max_value=200, default=10)
    grid = serializers.ChoiceField(
        choices=[1, 5, 10, 15, 30, 60], default=5, help_text="Minutes between starts: a number that divides an hour."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        first, last = attrs["from"], attrs["to"]
        if last < first:
            raise serializers.ValidationError({"to": ["The window ends before it starts."]})
        if (last - first).days + 1 > MAX_WINDOW_DAYS:
            raise serializers.ValidationError({"to": [f"Search at most {MAX_WINDOW_DAYS} days at a time."]})
        if attrs.get("earliest") and attrs.get("latest") and attrs["latest"] < attrs["earliest"]:
            raise serializers.ValidationError({"latest": ["The latest start is before the earliest."]})
        return attrs


# "from" is a Python keyword, so the field is added by name.
AvailabilityQuery._declared_fields["from"] = ClinicDateField()


class ReasonsQuery(PatientScoped, PinsInput):
    procedure_type = CodeField(slug_field="code", queryset=ProcedureType.objects.filter(is_active=True))
    levels = serializers.IntegerField(min_value=1, max_value=20, default=1)
    start = AwareDateTimeField()
    sedation = serializers.ChoiceField(Sedation.choices, required=False)
    patient = IdField(queryset=Patient.objects.none(), required=False)


class ReasonSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    role = serializers.CharField(required=False)
    field = serializers.CharField(required=False)
    resource = serializers.JSONField(required=False)
    extra = serializers.JSONField(required=False)


class ReasonsResultSerializer(serializers.Serializer):
    feasible = serializers.BooleanField()
    reasons = ReasonSerializer(many=True)


@extend_schema_field({"type": "array", "items": {"type": "string", "maxLength": 4, "example": "T12"}, "maxItems": 12})
class LevelNamesField(serializers.Field):
    """A list of level names (a flat field: it holds no child field to copy)."""

    def to_internal_value(self, data: Any) -> list[str]:
        if not isinstance(data, list) or not all(isinstance(item, str) and len(item) <= 4 for item in data):
            raise serializers.ValidationError('A list of level names, e.g. ["T12", "L1"].')
        return data

    def to_representation(self, value: Any) -> list[str]:
        return list(value)


class OrderInput(serializers.Serializer):
    """The referral's order; the pages take the same fields and scheduling.order checks both."""

    level_names = LevelNamesField(
        required=False, help_text='Spinal levels by name, e.g. ["T12", "L1"]; their count is the case\'s levels.'
    )
    side = serializers.ChoiceField(Side.choices, required=False, allow_blank=True, default="")
    indication_code = serializers.CharField(max_length=10, required=False, allow_blank=True, help_text="ICD-10-CM.")
    indication_text = serializers.CharField(max_length=200, required=False, allow_blank=True)
    referring_provider = serializers.CharField(max_length=120, required=False, allow_blank=True)
    external_order_id = serializers.CharField(max_length=60, required=False, allow_blank=True)
    prior_auth_number = serializers.CharField(max_length=60, required=False, allow_blank=True)
    prior_auth_status = serializers.ChoiceField(PriorAuthStatus.choices, required=False)
    notes = serializers.CharField(max_length=1000, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        # The order's rules (levels named twice, too many) are rules, not the schema: a
        # BookingInvalid here answers 422 naming each, as any rule does.
        order = case_order(attrs)
        attrs["levels"] = level_count(order.level_names, attrs.get("levels"))
        attrs["order"] = order
        return attrs


class BookingCreateInput(OrderInput, PatientScoped, PinsInput):
    patient = IdField(queryset=Patient.objects.none())
    procedure_type = CodeField(slug_field="code", queryset=ProcedureType.objects.filter(is_active=True))
    levels = serializers.IntegerField(
        min_value=1, max_value=20, required=False, help_text="Needed only when the levels are not named; default 1."
    )
    start = AwareDateTimeField()
    sedation = serializers.ChoiceField(Sedation.choices, required=False)
    hold = serializers.BooleanField(
        default=False, help_text="Hold the resources for a few minutes instead of booking; confirm to book."
    )
    anticoagulant_override_reason = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        help_text="A physician's or administrator's reason to book inside the patient's anticoagulant hold.",
    )


class RescheduleInput(PinsInput):
    start = AwareDateTimeField()
    anticoagulant_override_reason = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        help_text="Needed to move a case to an earlier day inside the patient's anticoagulant hold.",
    )


class CancelInput(serializers.Serializer):
    reason = serializers.ChoiceField(CancelReason.choices)
    note = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class OrderSerializer(serializers.Serializer):
    level_names = serializers.ListField(child=serializers.CharField())
    side = serializers.CharField(allow_blank=True)
    indication_code = serializers.CharField(allow_blank=True)
    indication_text = serializers.CharField(allow_blank=True)
    referring_provider = serializers.CharField(allow_blank=True)
    external_order_id = serializers.CharField(allow_blank=True)
    prior_auth_number = serializers.CharField(allow_blank=True)
    prior_auth_status = serializers.CharField()
    notes = serializers.CharField(allow_blank=True)
    cpt_codes = serializers.ListField(child=serializers.CharField(), help_text="From the procedure and the levels.")


def order_data(booking: Booking) -> dict[str, Any]:
    return {
        "level_names": list(booking.level_names),
        "side": booking.side,
        "indication_code": booking.indication_code,
        "indication_text": booking.indication_text,
        "referring_provider": booking.referring_provider,
        "external_order_id": booking.external_order_id,
        "prior_auth_number": booking.prior_auth_number,
        "prior_auth_status": booking.prior_auth_status,
        "notes": booking.order_notes,
        "cpt_codes": booking.cpt_codes,
    }


STEP_KEYS = tuple(name.removesuffix("_at") for name in STEP_FIELDS)


class BookingSerializer(serializers.Serializer):
    """A booking as people read it: times in the site's zone."""

    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=BookingStatus.choices)
    procedure_type = serializers.CharField()
    levels = serializers.IntegerField()
    sedation = serializers.ChoiceField(choices=Sedation.choices)
    site = serializers.IntegerField()
    start = InstantText()
    end = InstantText()
    arrival = InstantText()
    cancel_reason = serializers.CharField(allow_blank=True)
    order = OrderSerializer()
    anticoagulant_override = serializers.JSONField(
        allow_null=True, help_text="Who booked the case inside the patient's anticoagulant hold, when and why."
    )
    patient = serializers.JSONField()
    legs = LegSerializer(many=True)
    steps = serializers.JSONField(
        help_text="When each step of the procedure day was recorded (site's zone), null until it is: "
        + ", ".join(STEP_KEYS)
        + "."
    )
    recovery = serializers.JSONField(
        allow_null=True,
        help_text="Once recovery has started: flat_until (minimum flat time) and discharge_from (minimum recovery).",
    )
    updated_at = AwareDateTimeField(
        help_text="When the booking itself last changed (status, times, legs, order); its position in a sync walk."
    )


def override_data(booking: Booking) -> dict[str, Any] | None:
    if booking.anticoagulant_override_at is None:
        return None
    by = booking.anticoagulant_override_by
    return {
        "reason": booking.anticoagulant_override_reason,
        "by": by.get_username() if by is not None else None,
        "at": local_iso(booking.anticoagulant_override_at, booking.site.zone),
    }


def leg_data(view: LegView, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "role": view.role,
        "resource": {"kind": view.kind, "id": view.resource_id, "name": view.name},
        "start": local_iso(view.starts_at, zone),
        "end": local_iso(view.ends_at, zone),
    }


def booking_data(booking: Booking, role: str | None) -> dict[str, Any]:
    """Expects ``legs`` prefetched with their resources, and ``site`` and ``patient`` loaded."""
    zone = booking.site.zone
    return {
        "id": booking.pk,
        "status": booking.status,
        "procedure_type": booking.procedure_type.code,
        "levels": booking.levels,
        "sedation": booking.sedation,
        "site": booking.site_id,
        "start": local_iso(booking.starts_at, zone),
        "end": local_iso(booking.ends_at, zone),
        "arrival": local_iso(booking.arrival_at, zone),
        "cancel_reason": booking.cancel_reason,
        "order": order_data(booking),
        "anticoagulant_override": override_data(booking),
        "patient": patient_data(booking.patient, role),
        "legs": [leg_data(view, zone) for view in leg_views(booking)],
        "steps": steps_data(booking),
        "recovery": recovery_data(booking),
        "updated_at": local_iso(booking.updated_at, zone),
    }


def steps_data(booking: Booking) -> dict[str, str | None]:
    zone = booking.site.zone
    return {
        name.removesuffix("_at"): (local_iso(value, zone) if (value := getattr(booking, name)) else None)
        for name in STEP_FIELDS
    }


def recovery_data(booking: Booking) -> dict[str, str] | None:
    clock = recovery_clock(booking)
    if clock is None:
        return None
    zone = booking.site.zone
    return {"flat_until": local_iso(clock.flat_until, zone), "discharge_from": local_iso(clock.due, zone)}


def slot_data(slot: Slot, zones: dict[int, ZoneInfo]) -> dict[str, Any]:
    zone = zones[slot.site_id]
    return {
        "start": local_iso(slot.start, zone),
        "end": local_iso(slot.end, zone),
        "site": slot.site_id,
        "legs": [
            {
                "role": leg.role,
                "resource": {"kind": leg.kind, "id": leg.resource_id, "name": leg.name},
                "start": local_iso(leg.start, zone),
                "end": local_iso(leg.end, zone),
            }
            for leg in slot.legs
        ],
    }
