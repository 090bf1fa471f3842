"""Patients and their medication holds; what each role may see of a patient is the policy's."""

from __future__ import annotations

from typing import Any

from api.fields import ClinicDateField, IdField
from api.serializers.common import ClinicModelSerializer, PatientScoped
from core.validators import FIRST_BIRTH_YEAR
from patients.models import MedicationHold, Patient
from scheduling.policy import FRONT_DESK_PATIENT_FIELDS, patient_fields_of_role


class PatientSerializer(ClinicModelSerializer):
    """Full record; views narrow it to the fields the caller's role may see."""

    date_of_birth = ClinicDateField(first_year=FIRST_BIRTH_YEAR)

    class Meta:
        model = Patient
        fields = list(FRONT_DESK_PATIENT_FIELDS)
        read_only_fields = ["id"]

    def __init__(self, *args: Any, role: str | None = None, narrow: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if narrow:
            allowed = set(patient_fields_of_role(role))
            for name in list(self.fields):
                if name not in allowed:
                    self.fields.pop(name)


class MedicationHoldSerializer(PatientScoped, ClinicModelSerializer):
    patient = IdField(queryset=Patient.objects.none())

    class Meta:
        model = MedicationHold
        fields = ["id", "patient", "medication", "hold_days", "last_dose_on"]


def patient_data(patient: Patient, role: str | None) -> dict[str, Any]:
    """The patient as ``role`` may see them."""
    allowed = patient_fields_of_role(role)
    return {name: _value(patient, name) for name in allowed}


def _value(patient: Patient, name: str) -> Any:
    value = getattr(patient, name)
    if name == "date_of_birth" and value is not None:
        return value.isoformat()
    return value
