"""Patients and their medication holds; what each role may see of a patient is the policy's."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from api.fields import ClinicDateField, CodeField, IdField
from api.serializers.common import ClinicModelSerializer, PatientScoped
from core.validators import FIRST_BIRTH_YEAR
from patients.models import BleedingRisk, Drug, MedicationHold, Patient
from scheduling.policy import FRONT_DESK_PATIENT_FIELDS, patient_fields_of_role


class PatientSerializer(ClinicModelSerializer):
    """Full record; views narrow it to the fields the caller's role may see."""

    date_of_birth = ClinicDateField(first_year=FIRST_BIRTH_YEAR)
    duplicate_ok = serializers.BooleanField(
        write_only=True,
        required=False,
        default=False,
        help_text="Register although a patient with the same name and birth date is on file (never the same MRN).",
    )

    class Meta:
        model = Patient
        fields = [*FRONT_DESK_PATIENT_FIELDS, "duplicate_ok", "updated_at"]
        read_only_fields = ["id", "updated_at"]

    def __init__(self, *args: Any, role: str | None = None, narrow: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if narrow:
            # When the record changed says nothing about the patient; every reader may sync by it.
            allowed = {*patient_fields_of_role(role), "updated_at"}
            for name in list(self.fields):
                if name not in allowed:
                    self.fields.pop(name)


class DrugSerializer(ClinicModelSerializer):
    class Meta:
        model = Drug
        fields = [
            "id",
            "code",
            "name",
            "drug_class",
            "hold_days_high",
            "hold_days_intermediate",
            "hold_days_low",
            "guidance",
            "is_active",
        ]
        # The table's own bound (patients_drug_hold_days_bounded), said where a client reads it.
        extra_kwargs = {
            name: {"max_value": 60} for name in ("hold_days_high", "hold_days_intermediate", "hold_days_low")
        }


class MedicationHoldSerializer(PatientScoped, ClinicModelSerializer):
    """A drug from the list (by code) the patient takes. ``hold_days`` is the patient's own
    number where the list asks for a hold (empty: the list's days); ``days`` shows the days
    that apply at each bleeding risk."""

    patient = IdField(queryset=Patient.objects.none())
    drug = CodeField(slug_field="code", queryset=Drug.objects.filter(is_active=True))
    medication = serializers.CharField(source="drug.name", read_only=True)
    hold_days = serializers.IntegerField(min_value=0, max_value=60, required=False, allow_null=True)
    days = serializers.SerializerMethodField()

    class Meta:
        model = MedicationHold
        fields = ["id", "patient", "drug", "medication", "hold_days", "last_dose_on", "days"]

    def get_days(self, hold: MedicationHold) -> dict[str, int]:
        return {risk.value: hold.days_for(risk) for risk in BleedingRisk}


def patient_data(patient: Patient, role: str | None) -> dict[str, Any]:
    """The patient as ``role`` may see them."""
    allowed = patient_fields_of_role(role)
    return {name: _value(patient, name) for name in allowed}


def _value(patient: Patient, name: str) -> Any:
    value = getattr(patient, name)
    if name == "date_of_birth" and value is not None:
        return value.isoformat()
    return value
