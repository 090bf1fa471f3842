"""Input serializers check shape only; output serializers decide what each role may see."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.db import models
from django.db.models import QuerySet
from rest_framework import serializers

from api.fields import AwareDateTimeField, ClinicDateField, CodeField, IdField, WallClockTimeField, local_iso
from core.roles import ADMIN, NURSE, PHYSICIAN, SCHEDULER, TECH
from core.validators import FIRST_BIRTH_YEAR
from patients.models import MedicationHold, Patient
from rooms.models import Downtime, Equipment, OpeningHours, ProcedureRoom, RecoveryBay, Site
from scheduling.availability.search import MAX_WINDOW_DAYS
from scheduling.models import Booking, CancelReason, ProcedureType, Sedation
from staff.models import Credential, Shift, StaffMember, TimeOff

# --- shared ------------------------------------------------------------------------------


class ClinicModelSerializer(serializers.ModelSerializer):
    """A model serializer whose dates and times are bounded to the clinic's years, and whose
    times must carry an offset, whatever the model field says."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateField: ClinicDateField,
        models.DateTimeField: AwareDateTimeField,
    }


class PatientScoped(serializers.Serializer):
    """For a serializer with a ``patient`` id field: only the patients given (those the caller may
    see) are accepted, and any other id is refused with the very words an unknown id gets, so
    the answer does not tell "not yours" from "does not exist". Without ``patients`` none is
    accepted, so a view that forgets to pass them fails closed."""

    def __init__(self, *args: Any, patients: QuerySet[Patient] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["patient"]
        assert isinstance(field, IdField)
        field.queryset = patients if patients is not None else Patient.objects.none()


# --- reference data -----------------------------------------------------------------------


class OpeningHoursSerializer(ClinicModelSerializer):
    opens_at = WallClockTimeField()
    closes_at = WallClockTimeField()

    class Meta:
        model = OpeningHours
        fields = ["id", "site", "room", "weekday", "opens_at", "closes_at"]


class SiteSerializer(ClinicModelSerializer):
    class Meta:
        model = Site
        fields = ["id", "name", "code", "timezone", "jurisdiction", "address", "is_active"]


class RoomSerializer(ClinicModelSerializer):
    capabilities = serializers.ListField(child=serializers.CharField(max_length=40), required=False)

    class Meta:
        model = ProcedureRoom
        fields = ["id", "site", "name", "capabilities", "is_active"]


class EquipmentSerializer(ClinicModelSerializer):
    class Meta:
        model = Equipment
        fields = ["id", "site", "kind", "name", "serial_number", "room", "is_active"]


class RecoveryBaySerializer(ClinicModelSerializer):
    class Meta:
        model = RecoveryBay
        fields = ["id", "site", "name", "is_active"]


class DowntimeSerializer(ClinicModelSerializer):
    starts_at = AwareDateTimeField()
    ends_at = AwareDateTimeField()

    class Meta:
        model = Downtime
        fields = ["id", "room", "equipment", "starts_at", "ends_at", "reason", "note"]


class StaffMemberSerializer(ClinicModelSerializer):
    class Meta:
        model = StaffMember
        fields = ["id", "first_name", "last_name", "role", "sedation_capable", "email", "is_active"]


class CredentialSerializer(ClinicModelSerializer):
    # A license may date from long before the clinic's scheduling years; its expiry may not.
    valid_from = ClinicDateField(first_year=FIRST_BIRTH_YEAR)

    class Meta:
        model = Credential
        fields = ["id", "staff", "kind", "procedure_code", "jurisdiction", "identifier", "valid_from", "expires_on"]


class ShiftSerializer(ClinicModelSerializer):
    starts_at = WallClockTimeField()
    ends_at = WallClockTimeField()

    class Meta:
        model = Shift
        fields = ["id", "staff", "site", "weekday", "starts_at", "ends_at", "valid_from", "valid_until"]


class TimeOffSerializer(ClinicModelSerializer):
    starts_at = AwareDateTimeField()
    ends_at = AwareDateTimeField()

    class Meta:
        model = TimeOff
        fields = ["id", "staff", "starts_at", "ends_at", "reason"]


class ProcedureTypeSerializer(ClinicModelSerializer):
    sedation_allowed = serializers.ListField(child=serializers.ChoiceField(Sedation.choices))
    staff_roles = serializers.ListField(child=serializers.CharField(max_length=20))
    required_capabilities = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
    required_equipment = serializers.ListField(child=serializers.CharField(max_length=40), required=False)

    class Meta:
        model = ProcedureType
        fields = [
            "id",
            "code",
            "name",
            "cpt_codes",
            "room_minutes",
            "minutes_per_extra_level",
            "max_levels",
            "physician_joins_after_minutes",
            "turnover_minutes",
            "arrival_lead_minutes",
            "recovery_minutes",
            "recovery_flat_minutes",
            "sedation_default",
            "sedation_allowed",
            "staff_roles",
            "required_capabilities",
            "required_equipment",
            "supplies",
            "bleeding_risk",
            "requires_escort",
            "requires_imaging",
            "is_active",
        ]


# --- patients: the minimum each role needs ------------------------------------------------

# The front desk and nurses call the patient and the escort; everyone else needs less.
FRONT_DESK_PATIENT_FIELDS = (
    "id",
    "mrn",
    "first_name",
    "last_name",
    "date_of_birth",
    "sex",
    "pregnancy_possible",
    "phone",
    "escort_name",
    "escort_phone",
    "allergies",
)
PATIENT_FIELDS_BY_ROLE: dict[str, tuple[str, ...]] = {
    ADMIN: FRONT_DESK_PATIENT_FIELDS,
    SCHEDULER: FRONT_DESK_PATIENT_FIELDS,
    NURSE: FRONT_DESK_PATIENT_FIELDS,
    PHYSICIAN: (
        "id",
        "mrn",
        "first_name",
        "last_name",
        "date_of_birth",
        "sex",
        "pregnancy_possible",
        "escort_name",
        "escort_phone",
        "allergies",
    ),
    # Two identifiers to confirm the patient on the table, and allergies (contrast, cement).
    TECH: ("id", "mrn", "first_name", "last_name", "date_of_birth", "allergies"),
}


class PatientSerializer(ClinicModelSerializer):
    """Full record; views narrow it with ``fields_for_role``."""

    date_of_birth = ClinicDateField(first_year=FIRST_BIRTH_YEAR)

    class Meta:
        model = Patient
        fields = list(PATIENT_FIELDS_BY_ROLE[ADMIN])
        read_only_fields = ["id"]

    def __init__(self, *args: Any, role: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if role is not None:
            allowed = set(PATIENT_FIELDS_BY_ROLE.get(role, ()))
            for name in list(self.fields):
                if name not in allowed:
                    self.fields.pop(name)


class MedicationHoldSerializer(PatientScoped, ClinicModelSerializer):
    patient = IdField(queryset=Patient.objects.none())

    class Meta:
        model = MedicationHold
        fields = ["id", "patient", "medication", "hold_days", "last_dose_on"]


def patient_data(patient: Patient, role: str | None) -> dict[str, Any]:
    return dict(PatientSerializer(patient, role=role).data)


# --- availability and bookings ------------------------------------------------------------


class ResourceRefSerializer(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.IntegerField()
    name = serializers.CharField()


class LegSerializer(serializers.Serializer):
    role = serializers.CharField()
    resource = ResourceRefSerializer()
    start = serializers.CharField(help_text="ISO 8601 in the site's time zone")
    end = serializers.CharField(help_text="ISO 8601 in the site's time zone")


class SlotSerializer(serializers.Serializer):
    start = serializers.CharField()
    end = serializers.CharField()
    site = serializers.IntegerField()
    legs = LegSerializer(many=True)


class AvailabilityResultSerializer(serializers.Serializer):
    results = SlotSerializer(many=True)


class PinsInput(serializers.Serializer):
    physician = IdField(queryset=StaffMember.objects.filter(role="physician"), required=False)
    room = IdField(queryset=ProcedureRoom.objects.all(), required=False)
    c_arm = IdField(queryset=Equipment.objects.filter(kind="c_arm"), required=False)
    rf_generator = IdField(queryset=Equipment.objects.filter(kind="rf_generator"), required=False)
    rad_tech = IdField(queryset=StaffMember.objects.filter(role="rad_tech"), required=False)
    sedation_staff = IdField(queryset=StaffMember.objects.filter(role__in=["nurse", "anesthesia"]), required=False)
    device_rep = IdField(queryset=StaffMember.objects.filter(role="device_rep"), required=False)
    recovery_bay = IdField(queryset=RecoveryBay.objects.all(), required=False)
    site = IdField(queryset=Site.objects.all(), required=False)


class AvailabilityQuery(PatientScoped, serializers.Serializer):
    procedure_type = CodeField(slug_field="code", queryset=ProcedureType.objects.filter(is_active=True))
    levels = serializers.IntegerField(min_value=1, max_value=20, default=1)
    to = ClinicDateField()
    sedation = serializers.ChoiceField(Sedation.choices, required=False)
    physician = IdField(queryset=StaffMember.objects.filter(role="physician"), required=False)
    site = IdField(queryset=Site.objects.all(), required=False)
    room = IdField(queryset=ProcedureRoom.objects.all(), required=False)
    patient = IdField(queryset=Patient.objects.none(), required=False)
    earliest = WallClockTimeField(required=False, help_text="Earliest start, site-local time of day")
    latest = WallClockTimeField(required=False, help_text="Latest start, site-local time of day")
    limit = serializers.IntegerField(min_value=1, max_value=200, default=10)
    grid = serializers.IntegerField(min_value=1, max_value=60, default=5, help_text="Minutes between starts")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        first, last = attrs["from"], attrs["to"]
        if last < first:
            raise serializers.ValidationError({"to": ["The window ends before it starts."]})
        if (last - first).days + 1 > MAX_WINDOW_DAYS:
            raise serializers.ValidationError({"to": [f"Search at most {MAX_WINDOW_DAYS} days at a time."]})
        if attrs.get("earliest") and attrs.get("latest") and attrs["latest"] < attrs["earliest"]:
            raise serializers.ValidationError({"latest": ["The latest start is before the earliest."]})
        if 60 % attrs["grid"]:
            raise serializers.ValidationError({"grid": ["The grid must divide an hour: 1, 5, 10, 15, 30 or 60."]})
        return attrs


# "from" is a Python keyword, so the field is added by name.
AvailabilityQuery._declared_fields["from"] = ClinicDateField()


class ReasonsQuery(PatientScoped, serializers.Serializer):
    procedure_type = CodeField(slug_field="code", queryset=ProcedureType.objects.filter(is_active=True))
    levels = serializers.IntegerField(min_value=1, max_value=20, default=1)
    start = AwareDateTimeField()
    sedation = serializers.ChoiceField(Sedation.choices, required=False)
    physician = IdField(queryset=StaffMember.objects.filter(role="physician"), required=False)
    site = IdField(queryset=Site.objects.all(), required=False)
    room = IdField(queryset=ProcedureRoom.objects.all(), required=False)
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


class BookingCreateInput(PatientScoped, PinsInput):
    patient = IdField(queryset=Patient.objects.none())
    procedure_type = CodeField(slug_field="code", queryset=ProcedureType.objects.filter(is_active=True))
    levels = serializers.IntegerField(min_value=1, max_value=20, default=1)
    start = AwareDateTimeField()
    sedation = serializers.ChoiceField(Sedation.choices, required=False)
    hold = serializers.BooleanField(
        default=False, help_text="Hold the resources for a few minutes instead of booking; confirm to book."
    )


class RescheduleInput(PinsInput):
    start = AwareDateTimeField()


class CancelInput(serializers.Serializer):
    reason = serializers.ChoiceField(CancelReason.choices)
    note = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class BookingSerializer(serializers.Serializer):
    """A booking as people read it: times in the site's zone."""

    id = serializers.IntegerField()
    status = serializers.CharField()
    procedure_type = serializers.CharField()
    levels = serializers.IntegerField()
    sedation = serializers.CharField()
    site = serializers.IntegerField()
    start = serializers.CharField()
    end = serializers.CharField()
    arrival = serializers.CharField()
    cancel_reason = serializers.CharField(allow_blank=True)
    patient = serializers.JSONField()
    legs = LegSerializer(many=True)


def booking_data(booking: Booking, role: str | None) -> dict[str, Any]:
    """Expects ``legs`` prefetched with their resources, and ``site`` and ``patient`` loaded."""
    zone = ZoneInfo(booking.site.timezone)
    legs = []
    for leg in booking.legs.all():
        if not leg.is_active and booking.is_active:
            continue
        resource = getattr(leg, leg.resource_column)
        kind = {"bay": "recovery_bay"}.get(leg.resource_column, leg.resource_column)
        name = "the patient" if kind == "patient" else str(resource)
        legs.append(
            {
                "role": leg.role,
                "resource": {"kind": kind, "id": resource.pk, "name": name},
                "start": local_iso(leg.starts_at, zone),
                "end": local_iso(leg.ends_at, zone),
            }
        )
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
        "patient": patient_data(booking.patient, role),
        "legs": legs,
    }


class TokenInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, trim_whitespace=False)


class TokenOutput(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()
