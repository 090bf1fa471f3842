"""Writes on a patient's records: registration, lab results and imaging studies. Each is validated
(every problem at once), saved and audited with ids and codes only."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.audit import audit_record
from core.errors import BookingInvalid, PossibleDuplicate, Problem
from core.services import record_create
from patients.models import ImagingModality, ImagingStudy, LabResult, LabTest, Patient
from patients.registry import likely_duplicates

LAB_VALUE_LIMIT = Decimal("100000")


@transaction.atomic
def lab_result_record(
    *, actor: Any, patient: Patient, test: str, value: Decimal | int | str, taken_at: datetime
) -> LabResult:
    """Record an INR or platelet count (platelets in thousand per microlitre)."""
    problems = []
    if test not in LabTest.values:
        problems.append(Problem("invalid_choice", f"Unknown lab test {test!r}.", field="test"))
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal("NaN")
    if (
        not amount.is_finite()
        or not Decimal(0) <= amount < LAB_VALUE_LIMIT
        or amount != amount.quantize(Decimal("0.01"))
    ):
        problems.append(
            Problem("invalid_value", "The value must be 0 to 99999.99, two decimals at most.", field="value")
        )
    if timezone.is_naive(taken_at):
        problems.append(Problem("naive_datetime", "taken_at must include a UTC offset.", field="taken_at"))
    elif taken_at > timezone.now():
        problems.append(Problem("in_future", "A lab result cannot be taken in the future.", field="taken_at"))
    if problems:
        raise BookingInvalid(problems)
    lab = LabResult.objects.create(patient=patient, test=test, value=amount, taken_at=taken_at)
    audit_record(actor=actor, action="lab_result.create", obj=lab, details={"patient": patient.pk, "test": test})
    return lab


@transaction.atomic
def imaging_study_record(*, actor: Any, patient: Patient, modality: str, performed_on: date) -> ImagingStudy:
    """Record that a study (MRI with STIR, CT or bone scan) is on file for the patient."""
    problems = []
    if modality not in ImagingModality.values:
        problems.append(Problem("invalid_choice", f"Unknown imaging modality {modality!r}.", field="modality"))
    # The clinic's date may run up to 14 hours ahead of UTC; later than that is in the future.
    latest = (timezone.now() + timedelta(hours=14)).date()
    if performed_on > latest:
        problems.append(Problem("in_future", "A study cannot be performed in the future.", field="performed_on"))
    if problems:
        raise BookingInvalid(problems)
    study = ImagingStudy.objects.create(patient=patient, modality=modality, performed_on=performed_on)
    audit_record(
        actor=actor, action="imaging_study.create", obj=study, details={"patient": patient.pk, "modality": modality}
    )
    return study


def patient_register(*, actor: Any, data: dict[str, Any], duplicate_ok: bool = False) -> Patient:
    """Register a patient. One who looks like a patient on file is refused with the matches
    (PossibleDuplicate): always for the same MRN (it is the same record), and for the same name
    and date of birth unless ``duplicate_ok`` says staff checked they are different people.
    Raises django ValidationError with field messages for a bad record."""
    matches = likely_duplicates(
        first_name=str(data.get("first_name", "")),
        last_name=str(data.get("last_name", "")),
        date_of_birth=data.get("date_of_birth"),
        mrn=str(data.get("mrn", "")),
    )
    mrn = str(data.get("mrn", "")).strip().casefold()
    same_mrn = [p.pk for p in matches if p.mrn.casefold() == mrn]
    if same_mrn:
        raise PossibleDuplicate("A patient with this MRN is already registered.", same_mrn, same_mrn=True)
    if matches and not duplicate_ok:
        raise PossibleDuplicate(
            "A patient with the same name and date of birth is already registered; check it is not the same person.",
            [p.pk for p in matches],
            same_mrn=False,
        )
    return record_create(actor=actor, model=Patient, data=data)
