"""A case as a row of the physician's day and the day's cases: what the viewer's role may see
of the patient (the policy's fields), the order, the team and the anticoagulant status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from patients.models import LabTest
from procedure_day.selectors import DailyCase
from scheduling import policy

READINESS_WORDS = {
    "passed": "Ready",
    "overridden": "Ready (overridden)",
    "not_ready": "Not ready",
    "due_on_day": "Nothing missing; due on the day",
    "not_applicable": "—",
}


@dataclass(frozen=True)
class Anticoagulation:
    drug: str
    last_dose: str
    hold: str


def anticoagulation(case: DailyCase) -> list[Anticoagulation]:
    booking = case.booking
    risk = booking.procedure_type.bleeding_risk
    out = []
    for hold in case.inputs.holds:
        days = hold.days_for(risk)
        last = f"{hold.last_dose_on:%d %b}" if hold.last_dose_on else "still taking"
        out.append(Anticoagulation(hold.drug.name, last, f"hold {days} d" if days else "no hold"))
    return out


def last_inr(case: DailyCase) -> str:
    zone = case.booking.site.zone
    for lab in case.inputs.labs:
        if lab.test == LabTest.INR:
            return f"{lab.value:.1f} ({lab.taken_at.astimezone(zone):%d %b})"
    return "none on file"


def day_rows(cases: list[DailyCase], user: Any) -> list[dict[str, Any]]:
    fields = set(policy.patient_fields(user))
    clinical = policy.sees_clinical_records(user)
    rows = []
    for case in cases:
        booking = case.booking
        patient = booking.patient
        zone = booking.site.zone

        def leg(role: str, case: DailyCase = case) -> str:
            view = case.legs.get(role)
            return view.name if view is not None else ""

        rows.append(
            {
                "booking": booking,
                "zone": zone,
                "name": f"{patient.last_name}, {patient.first_name}" if "last_name" in fields else "",
                "mrn": patient.mrn if "mrn" in fields else "",
                "age": patient.age_on(booking.starts_at.astimezone(zone).date()) if "date_of_birth" in fields else None,
                "sex": patient.get_sex_display() if "sex" in fields else "",
                "allergies": patient.allergies if "allergies" in fields else "",
                "shows_allergies": "allergies" in fields,
                "escort": (patient.escort_name, patient.escort_phone) if "escort_name" in fields else None,
                "procedure": booking.procedure_type.name,
                "levels": booking.levels_label,
                "sedation": booking.get_sedation_display(),
                "readiness": READINESS_WORDS.get(case.readiness.status, case.readiness.status),
                "readiness_status": case.readiness.status,
                "outstanding": [code.replace("_", " ") for code in case.readiness.outstanding],
                "clinical": clinical,
                "anticoagulation": anticoagulation(case) if clinical else [],
                "inr": last_inr(case) if clinical else "",
                "room": leg("room"),
                "c_arm": leg("c_arm"),
                "tech": leg("rad_tech"),
                "sedation_staff": leg("sedation_nurse") or leg("anesthesia"),
                "physician": leg("physician"),
                "device_rep": leg("device_rep"),
                "bay": leg("recovery_bay"),
                "notes": booking.order_notes,
                "status": booking.get_status_display(),
            }
        )
    return rows
