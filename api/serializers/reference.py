"""Reference data: sites, hours, rooms, equipment, bays, downtime, staff, credentials, shifts,
time off and the procedure catalogue."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import available_timezones

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.fields import AwareDateTimeField, ClinicDateField, WallClockTimeField
from api.serializers.common import ClinicModelSerializer
from core.validators import FIRST_BIRTH_YEAR
from rooms.models import Capability, Downtime, Equipment, EquipmentKind, OpeningHours, ProcedureRoom, RecoveryBay, Site
from scheduling.models import ProcedureType, Sedation
from staff.models import Credential, Shift, StaffMember, StaffRole, TimeOff


class OpeningHoursSerializer(ClinicModelSerializer):
    opens_at = WallClockTimeField()
    closes_at = WallClockTimeField()

    class Meta:
        model = OpeningHours
        fields = ["id", "site", "room", "weekday", "opens_at", "closes_at"]


@extend_schema_field({"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_+\-/]*$", "maxLength": 64})
class TimeZoneField(serializers.CharField):
    """An IANA zone name. A name of that form that is no zone (the list changes with the
    tz database) is a 422, not the schema's 400."""

    def to_internal_value(self, data: Any) -> str:
        value = str(super().to_internal_value(data))
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+\-/]*", value):
            raise serializers.ValidationError("An IANA time zone name, e.g. America/Chicago.", code="invalid")
        if value not in available_timezones():
            raise serializers.ValidationError(f"{value!r} is not an IANA time zone name.", code="rule")
        return value


class SiteSerializer(ClinicModelSerializer):
    timezone = TimeZoneField(max_length=64, help_text="An IANA time zone name, e.g. America/Chicago.")

    class Meta:
        model = Site
        fields = ["id", "name", "code", "timezone", "jurisdiction", "address", "is_active"]


class RoomSerializer(ClinicModelSerializer):
    capabilities = serializers.ListField(child=serializers.ChoiceField(Capability.choices), required=False)

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
    sedation_allowed = serializers.ListField(child=serializers.ChoiceField(Sedation.choices), min_length=1)
    staff_roles = serializers.ListField(child=serializers.ChoiceField(StaffRole.choices), min_length=1)
    required_capabilities = serializers.ListField(child=serializers.ChoiceField(Capability.choices), required=False)
    required_equipment = serializers.ListField(child=serializers.ChoiceField(EquipmentKind.choices), required=False)

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
