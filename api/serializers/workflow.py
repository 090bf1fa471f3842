"""The procedure day: transitions, the readiness checklist, lab results, imaging and alerts."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.fields import AwareDateTimeField, ClinicDateField, IdField, InstantText, local_iso
from api.serializers.common import ClinicModelSerializer, PatientScoped
from outbox.models import Alert
from patients.models import ImagingModality, ImagingStudy, LabResult, LabTest, Patient
from procedure_day.models import CaseChecklist, PregnancyStatus
from procedure_day.readiness import ChecklistItem, readiness_passes
from procedure_day.services.corrections import STEP_FIELDS
from scheduling.models import Booking


class ReadyInput(serializers.Serializer):
    override_reason = serializers.CharField(
        max_length=255,
        required=False,
        help_text="Needed, from a physician or an administrator, when the checklist does not pass.",
    )


class EndProcedureInput(serializers.Serializer):
    ended_at = AwareDateTimeField(required=False, help_text="When the procedure ended; now if left out.")


class StepTimeInput(serializers.Serializer):
    step = serializers.ChoiceField(STEP_FIELDS, help_text="The recorded step whose time is corrected.")
    at = AwareDateTimeField(help_text="The correct time, with its UTC offset.")
    reason = serializers.CharField(max_length=255, help_text="Why the recorded time was wrong.")


class DischargeInput(serializers.Serializer):
    escort_present = serializers.BooleanField(
        required=False, default=False, help_text="The escort is here to take the patient home."
    )


class ChecklistInput(serializers.Serializer):
    consent_signed_at = AwareDateTimeField(required=False, allow_null=True)
    escort_confirmed = serializers.BooleanField(required=False)
    last_solids_at = AwareDateTimeField(required=False, allow_null=True)
    last_clears_at = AwareDateTimeField(required=False, allow_null=True)
    pregnancy_status = serializers.ChoiceField(PregnancyStatus.choices, required=False)
    allergies_reviewed = serializers.BooleanField(required=False)


class ChecklistItemSerializer(serializers.Serializer):
    code = serializers.CharField()
    status = serializers.ChoiceField(["ok", "missing", "failed", "not_required", "overridden", "due_on_day"])
    detail = serializers.CharField(allow_blank=True)


# "label" would shadow Field.label as an attribute, so the field is added by name.
ChecklistItemSerializer._declared_fields["label"] = serializers.CharField()


class ChecklistSerializer(serializers.Serializer):
    """The recorded answers (times in the site's zone), the evaluated items, and the verdict."""

    booking = serializers.IntegerField()
    consent_signed_at = InstantText(allow_null=True)
    escort_confirmed = serializers.BooleanField()
    escort_present_at = InstantText(allow_null=True)
    last_solids_at = InstantText(allow_null=True)
    last_clears_at = InstantText(allow_null=True)
    pregnancy_status = serializers.CharField()
    allergies_reviewed = serializers.BooleanField()
    override_reason = serializers.CharField(allow_blank=True)
    override_by = serializers.CharField(allow_null=True)
    override_at = InstantText(allow_null=True)
    passes = serializers.BooleanField()
    items = ChecklistItemSerializer(many=True)


class VisiblePatientInput(PatientScoped):
    """A patient id the caller may see; another is refused as if it did not exist."""

    patient = IdField(queryset=Patient.objects.none())


@extend_schema_field({"type": "string", "format": "decimal", "pattern": r"^\d{1,5}(\.\d{1,2})?$", "example": "1.1"})
class LabValueField(serializers.DecimalField):
    """A result from 0 to 99999.99, written as text as it is answered (digits, a point and at
    most two decimals: no exponent, no sign)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and not re.fullmatch(r"\d{1,5}(\.\d{1,2})?", data.strip()):
            self.fail("invalid")
        return super().to_internal_value(data)


class LabResultInput(VisiblePatientInput):
    test = serializers.ChoiceField(LabTest.choices)
    value = LabValueField(max_digits=7, decimal_places=2, min_value=0)
    taken_at = AwareDateTimeField()


class LabResultSerializer(ClinicModelSerializer):
    class Meta:
        model = LabResult
        fields = ["id", "patient", "test", "value", "taken_at"]


class ImagingStudyInput(VisiblePatientInput):
    modality = serializers.ChoiceField(ImagingModality.choices)
    performed_on = ClinicDateField()


class ImagingStudySerializer(ClinicModelSerializer):
    class Meta:
        model = ImagingStudy
        fields = ["id", "patient", "modality", "performed_on"]


class AlertSerializer(ClinicModelSerializer):
    class Meta:
        model = Alert
        fields = ["id", "site", "booking", "kind", "message", "created_at", "resolved_at"]


def checklist_data(booking: Booking, checklist: CaseChecklist | None, items: list[ChecklistItem]) -> dict[str, Any]:
    zone = booking.site.zone
    recorded = checklist if checklist is not None else CaseChecklist()
    overrider = recorded.override_by if recorded.override_by_id else None

    def when(name: str) -> str | None:
        value = getattr(recorded, name)
        return local_iso(value, zone) if value is not None else None

    return {
        "booking": booking.pk,
        "consent_signed_at": when("consent_signed_at"),
        "escort_confirmed": recorded.escort_confirmed,
        "escort_present_at": when("escort_present_at"),
        "last_solids_at": when("last_solids_at"),
        "last_clears_at": when("last_clears_at"),
        "pregnancy_status": recorded.pregnancy_status,
        "allergies_reviewed": recorded.allergies_reviewed,
        "override_reason": recorded.override_reason,
        "override_by": overrider.get_username() if overrider is not None else None,
        "override_at": when("override_at"),
        "passes": readiness_passes(items),
        "items": [item.as_dict() for item in items],
    }
