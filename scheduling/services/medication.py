"""Writes on a patient's medication holds. A hold changes when the patient's cases may take
place and when they must be told to stop the drug, so each write re-times the reminders of
the patient's scheduled cases in the same transaction. Audited with ids and codes only."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import transaction

from core.audit import audit_record
from core.errors import BookingInvalid, Problem
from patients.models import Drug, MedicationHold, Patient
from scheduling.services.reminders import reminders_retime_for_patient

HOLD_FIELDS = frozenset({"drug", "hold_days", "last_dose_on"})


def _check_drug(drug: Drug) -> None:
    if not drug.is_active:
        raise BookingInvalid([Problem("drug_inactive", f"{drug.name} is no longer on the drug list.", field="drug")])


@transaction.atomic
def medication_hold_create(
    *, actor: Any, patient: Patient, drug: Drug, last_dose_on: date | None = None, hold_days: int | None = None
) -> MedicationHold:
    """Record that the patient takes ``drug`` (from the drug list) and must stop it before
    cases of the bleeding risks the list names. Raises django ValidationError (one hold per
    drug and patient, bounded values) or BookingInvalid (a drug no longer listed)."""
    _check_drug(drug)
    hold = MedicationHold(patient=patient, drug=drug, last_dose_on=last_dose_on, hold_days=hold_days)
    hold.full_clean()
    hold.save()
    audit_record(
        actor=actor, action="medication_hold.create", obj=hold, details={"patient": patient.pk, "drug": drug.code}
    )
    reminders_retime_for_patient(patient_id=patient.pk)
    return hold


@transaction.atomic
def medication_hold_update(*, actor: Any, hold: MedicationHold, **fields: Any) -> MedicationHold:
    """Change a hold's drug, the patient's own days or the last dose (e.g. the patient stopped)."""
    unknown = sorted(set(fields) - HOLD_FIELDS)
    if unknown:
        raise BookingInvalid([Problem("unknown_field", f"{name} is not a hold field.", field=name) for name in unknown])
    if "drug" in fields and fields["drug"] != hold.drug:
        _check_drug(fields["drug"])
    for name, value in fields.items():
        setattr(hold, name, value)
    hold.full_clean()
    hold.save()
    audit_record(
        actor=actor,
        action="medication_hold.update",
        obj=hold,
        details={"patient": hold.patient_id, "drug": hold.drug.code, "fields": sorted(fields)},
    )
    reminders_retime_for_patient(patient_id=hold.patient_id)
    return hold


@transaction.atomic
def medication_hold_delete(*, actor: Any, hold: MedicationHold) -> None:
    patient_id = hold.patient_id
    audit_record(
        actor=actor, action="medication_hold.delete", obj=hold, details={"patient": patient_id, "drug": hold.drug.code}
    )
    hold.delete()
    reminders_retime_for_patient(patient_id=patient_id)
