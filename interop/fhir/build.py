"""Our records as FHIR R4 resources (JSON dicts, validated by ``interop.fhir.r4`` on the way
out). One Appointment per case, with a participant per leg carrying the leg's own window
(``participant.period``): the room with its turnover, the C-arm, the team, and the recovery
bay for the hours after."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from patients.models import Patient
from rooms.models import Equipment, ProcedureRoom, RecoveryBay, Site
from scheduling.availability.calendar import Period
from scheduling.availability.search import Slot as FoundSlot
from scheduling.legroles import LEG_ROLES, LegRole
from scheduling.models import Allocation, Booking, BookingStatus, CancelReason
from staff.models import StaffMember

# Terminology systems of the standard, and our own for codes the standard has none for.
V3_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
CANCEL_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason"
LOCATION_PHYSICAL = "http://terminology.hl7.org/CodeSystem/location-physical-type"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
# A CPT code in the catalogue's free text ("22511; +22512 each extra level").
CPT_CODE = re.compile(r"\b\d{4}[0-9FTU]\b")


def own_system(name: str) -> str:
    return f"{settings.PUBLIC_URL}/fhir/r4/CodeSystem/{name}"


def mrn_system() -> str:
    return str(settings.FHIR_MRN_SYSTEM)


def instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(updated: datetime | None) -> dict[str, Any]:
    return {"lastUpdated": instant(updated)} if updated is not None else {}


# --- statuses -----------------------------------------------------------------------------

APPOINTMENT_STATUS = {
    BookingStatus.HOLD: "pending",
    BookingStatus.SCHEDULED: "booked",
    BookingStatus.CHECKED_IN: "checked-in",
    BookingStatus.READY: "checked-in",
    BookingStatus.IN_PROCEDURE: "arrived",
    BookingStatus.IN_RECOVERY: "arrived",
    BookingStatus.READY_FOR_DISCHARGE: "arrived",
    BookingStatus.DISCHARGED: "fulfilled",
    BookingStatus.CANCELLED: "cancelled",
    BookingStatus.NO_SHOW: "noshow",
}
# Each FHIR status searched for, as our statuses.
STATUSES_OF_FHIR: dict[str, list[str]] = {}
for _ours, _theirs in APPOINTMENT_STATUS.items():
    STATUSES_OF_FHIR.setdefault(_theirs, []).append(str(_ours))
# Our cancel reasons on the standard's codes where it has one (the rest: "other", with ours).
CANCEL_REASON_CODES = {
    CancelReason.PATIENT_REQUEST: "pat",
    CancelReason.NO_DRIVER: "pat-cpp",
    CancelReason.NOT_FASTING: "pat-cpp",
    CancelReason.ANTICOAGULANT_NOT_HELD: "pat-cpp",
    CancelReason.INFECTION: "pat-crs",
    CancelReason.PREGNANCY: "pat-crs",
    CancelReason.EQUIPMENT_DOWN: "maint",
    CancelReason.PHYSICIAN_UNAVAILABLE: "prov",
    CancelReason.SCHEDULING_ERROR: "oth-err",
    CancelReason.HOLD_EXPIRED: "oth-err",
    CancelReason.OTHER: "other",
}
PARTICIPATION = {
    LegRole.PHYSICIAN: ("PPRF", "primary performer"),
    LegRole.RAD_TECH: ("SPRF", "secondary performer"),
    LegRole.SEDATION_NURSE: ("SPRF", "secondary performer"),
    LegRole.ANESTHESIA: ("SPRF", "secondary performer"),
    LegRole.DEVICE_REP: ("PART", "Participation"),
}


# --- references ---------------------------------------------------------------------------


def location_id(kind: str, pk: int) -> str:
    return f"{kind}-{pk}"


def reference_of(column: str, pk: int) -> str:
    """The FHIR reference of a resource a leg holds, by its allocation column."""
    if column == "patient":
        return f"Patient/{pk}"
    if column == "staff":
        return f"Practitioner/{pk}"
    if column == "equipment":
        return f"Device/{pk}"
    return f"Location/{location_id(column, pk)}"


def schedule_id(column: str, pk: int) -> str:
    return f"{column}-{pk}"


# --- resources ----------------------------------------------------------------------------


def patient(record: Patient, fields: Iterable[str]) -> dict[str, Any]:
    """A Patient with the fields the caller's role may see (minimum necessary)."""
    allowed = set(fields)
    data: dict[str, Any] = {"resourceType": "Patient", "id": str(record.pk)}
    if "mrn" in allowed:
        data["identifier"] = [{"use": "usual", "system": mrn_system(), "value": record.mrn}]
    if {"first_name", "last_name"} <= allowed:
        data["name"] = [{"use": "official", "family": record.last_name, "given": [record.first_name]}]
    if "sex" in allowed:
        data["gender"] = record.sex
    if "date_of_birth" in allowed:
        data["birthDate"] = record.date_of_birth.isoformat()
    if "phone" in allowed and record.phone:
        data["telecom"] = [{"system": "phone", "value": record.phone, "use": "mobile"}]
    return data


def practitioner(member: StaffMember) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": str(member.pk),
        "active": member.is_active,
        "name": [{"family": member.last_name, "given": [member.first_name], "text": str(member)}],
        "qualification": [
            {
                "code": {
                    "coding": [{"system": own_system("staff-role"), "code": member.role}],
                    "text": member.get_role_display(),
                }
            }
        ],
    }


def site_location(site: Site) -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": location_id("site", site.pk),
        "status": "active" if site.is_active else "inactive",
        "name": site.name,
        "mode": "instance",
        "physicalType": {"coding": [{"system": LOCATION_PHYSICAL, "code": "si", "display": "Site"}]},
        **({"address": {"text": site.address}} if site.address else {}),
    }


def room_location(room: ProcedureRoom) -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": location_id("room", room.pk),
        "status": "active" if room.is_active else "inactive",
        "name": room.name,
        "description": "Procedure room" + (f" ({', '.join(room.capabilities)})" if room.capabilities else ""),
        "mode": "instance",
        "physicalType": {"coding": [{"system": LOCATION_PHYSICAL, "code": "ro", "display": "Room"}]},
        "partOf": {"reference": f"Location/{location_id('site', room.site_id)}"},
    }


def bay_location(bay: RecoveryBay) -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": location_id("bay", bay.pk),
        "status": "active" if bay.is_active else "inactive",
        "name": bay.name,
        "description": "Recovery bay",
        "mode": "instance",
        "physicalType": {"coding": [{"system": LOCATION_PHYSICAL, "code": "bd", "display": "Bed"}]},
        "partOf": {"reference": f"Location/{location_id('site', bay.site_id)}"},
    }


def device(item: Equipment) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resourceType": "Device",
        "id": str(item.pk),
        "status": "active" if item.is_active else "inactive",
        "deviceName": [{"name": item.name, "type": "user-friendly-name"}],
        "type": {
            "coding": [{"system": own_system("equipment-kind"), "code": item.kind}],
            "text": item.get_kind_display(),
        },
    }
    where = location_id("room", item.room_id) if item.room_id else location_id("site", item.site_id)
    data["location"] = {"reference": f"Location/{where}"}
    if item.serial_number:
        data["serialNumber"] = item.serial_number
    return data


def schedule(column: str, pk: int, name: str, active: bool) -> dict[str, Any]:
    return {
        "resourceType": "Schedule",
        "id": schedule_id(column, pk),
        "active": active,
        "actor": [{"reference": reference_of(column, pk), "display": name}],
        "comment": "Free, busy, held and unavailable time of this resource, as Slots.",
    }


def slot_id(schedule_key: str, period: Period) -> str:
    return f"{schedule_key}.{period.start:%Y%m%d%H%M}.{period.end:%Y%m%d%H%M}"


def slot(schedule_key: str, period: Period) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resourceType": "Slot",
        "id": slot_id(schedule_key, period),
        "schedule": {"reference": f"Schedule/{schedule_key}"},
        "status": period.status,
        "start": instant(period.start),
        "end": instant(period.end),
    }
    if period.reason:
        data["comment"] = {"downtime": "Room or equipment down", "time_off": "Time off"}.get(
            period.reason, period.reason
        )
    return data


def _participant(
    leg_role: str, column: str, pk: int, name: str, start: datetime, end: datetime, status: str
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "actor": {"reference": reference_of(column, pk), "display": name},
        "required": "required",
        "status": status,
        "period": {"start": instant(start), "end": instant(end)},
    }
    if column == "patient":
        data["actor"].pop("display")
        data["type"] = [{"text": "Patient"}]
    code = PARTICIPATION.get(LegRole(leg_role)) if leg_role in LegRole.values else None
    if code is not None:
        data["type"] = [
            {
                "coding": [{"system": V3_PARTICIPATION, "code": code[0], "display": code[1]}],
                "text": LEG_ROLES[leg_role].label,
            }
        ]
    elif column != "patient":
        data["type"] = [{"text": LEG_ROLES[leg_role].label}]
    return data


def _service_type(booking_or_procedure: Any) -> list[dict[str, Any]]:
    procedure = booking_or_procedure
    coding = [{"system": own_system("procedure-type"), "code": procedure.code, "display": procedure.name}]
    coding += [{"system": CPT, "code": code} for code in dict.fromkeys(CPT_CODE.findall(procedure.cpt_codes))]
    return [{"coding": coding, "text": procedure.name}]


def appointment(booking: Booking) -> dict[str, Any]:
    """A case as an Appointment. Expects its legs prefetched with their resources."""
    status = APPOINTMENT_STATUS[BookingStatus(booking.status)]
    participant_status = "tentative" if booking.status == BookingStatus.HOLD else "accepted"
    legs: list[Allocation] = [leg for leg in booking.legs.all() if leg.is_active or not booking.is_active]
    participants = []
    for leg in sorted(legs, key=lambda leg: (leg.starts_at, leg.role)):
        info = LEG_ROLES[leg.role]
        resource = getattr(leg, info.column)
        participants.append(
            _participant(
                leg.role, info.column, leg.resource_id, str(resource), leg.starts_at, leg.ends_at, participant_status
            )
        )
    if not any(p["actor"]["reference"].startswith("Patient/") for p in participants):
        participants.insert(
            0,
            _participant(
                LegRole.PATIENT,
                "patient",
                booking.patient_id,
                "",
                booking.arrival_at,
                booking.ends_at,
                participant_status,
            ),
        )
    data: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": str(booking.pk),
        "meta": meta(booking.updated_at),
        "identifier": [{"system": own_system("case"), "value": str(booking.pk)}],
        "status": status,
        "serviceType": _service_type(booking.procedure_type),
        "appointmentType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0276", "code": "ROUTINE"}]},
        "description": f"{booking.procedure_type.name}, {booking.levels} level{'s' if booking.levels != 1 else ''}",
        "start": instant(booking.starts_at),
        "end": instant(booking.ends_at),
        "minutesDuration": int((booking.ends_at - booking.starts_at).total_seconds() // 60),
        "created": instant(booking.created_at),
        "basedOn": [{"reference": f"ServiceRequest/{booking.pk}"}],
        "participant": participants,
    }
    if booking.status == BookingStatus.HOLD and booking.hold_expires_at is not None:
        data["comment"] = f"Held until {instant(booking.hold_expires_at)}"
    if booking.status in (BookingStatus.CANCELLED, BookingStatus.NO_SHOW):
        reason = CancelReason(booking.cancel_reason) if booking.cancel_reason in CancelReason.values else None
        if booking.status == BookingStatus.NO_SHOW:
            data["cancelationReason"] = {
                "coding": [{"system": CANCEL_REASON_SYSTEM, "code": "pat-noshow"}],
                "text": "No-show",
            }
        elif reason is not None:
            data["cancelationReason"] = {
                "coding": [
                    {"system": CANCEL_REASON_SYSTEM, "code": CANCEL_REASON_CODES[reason]},
                    {"system": own_system("cancel-reason"), "code": reason.value, "display": reason.label},
                ],
                "text": reason.label,
            }
    return data


def proposed_appointment(
    found: FoundSlot, procedure: Any, levels: int, patient_id: int | None, key: str
) -> dict[str, Any]:
    """A start the engine found, as a proposed Appointment with every leg; ``key`` lets
    ``$hold`` and ``$book`` take it back exactly."""
    participants = [
        _participant(
            leg.role, LEG_ROLES[leg.role].column, leg.resource_id, leg.name, leg.start, leg.end, "needs-action"
        )
        for leg in found.legs
    ]
    if patient_id is not None:
        first = min(leg.start for leg in found.legs)
        participants.insert(
            0, _participant(LegRole.PATIENT, "patient", patient_id, "", first, found.end, "needs-action")
        )
    return {
        "resourceType": "Appointment",
        "id": key,
        "status": "proposed",
        "serviceType": _service_type(procedure),
        "description": f"{procedure.name}, {levels} level{'s' if levels != 1 else ''}",
        "start": instant(found.start),
        "end": instant(found.end),
        "minutesDuration": int((found.end - found.start).total_seconds() // 60),
        "participant": participants,
    }


SERVICE_REQUEST_STATUS = {
    BookingStatus.CANCELLED: "revoked",
    BookingStatus.NO_SHOW: "revoked",
    BookingStatus.DISCHARGED: "completed",
}


def service_request(booking: Booking) -> dict[str, Any]:
    """The case's order: the procedure, levels, side, indication and referrer."""
    data: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": str(booking.pk),
        "meta": meta(booking.updated_at),
        "status": SERVICE_REQUEST_STATUS.get(BookingStatus(booking.status), "active"),
        "intent": "order",
        "code": _service_type(booking.procedure_type)[0],
        "quantityQuantity": {"value": booking.levels, "unit": "level"},
        "subject": {"reference": f"Patient/{booking.patient_id}"},
        "authoredOn": instant(booking.created_at),
        "occurrencePeriod": {"start": instant(booking.starts_at), "end": instant(booking.ends_at)},
    }
    if booking.external_order_id:
        data["identifier"] = [{"system": own_system("referral-order"), "value": booking.external_order_id}]
    if booking.indication_code:
        data["reasonCode"] = [
            {
                "coding": [{"system": ICD10, "code": booking.indication_code}],
                "text": booking.indication_text or booking.indication_code,
            }
        ]
    if booking.level_names or booking.side:
        text = ", ".join(booking.level_names) + (f" ({booking.get_side_display()})" if booking.side else "")
        data["bodySite"] = [{"text": text.strip(", ")}]
    if booking.referring_provider:
        data["requester"] = {"display": booking.referring_provider}
    return data
