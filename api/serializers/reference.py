"""Reference data: sites, hours, rooms, equipment, bays, downtime, staff, credentials, shifts,
time off and the procedure catalogue."""

from __future__ import annotations

from rest_framework import serializers

from api.fields import AwareDateTimeField, ClinicDateField, WallClockTimeField
from api.serializers.common import ClinicModelSerializer
from core.validators import FIRST_BIRTH_YEAR
from rooms.models import Downtime, Equipment, OpeningHours, ProcedureRoom, RecoveryBay, Site
from scheduling.models import ProcedureType, Sedation
from staff.models import Credential, Shift, StaffMember, TimeOff


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
