"""Every resource we send is validated as FHIR R4 before it leaves.

``fhir.resources`` R4B models check structure and cardinality (R4B's scheduling resources have
R4's fields), but not code bindings, invariants or reference target types: those are checked
here, for the elements we emit. A resource that fails is a bug of ours, raised, never sent.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.parameters import Parameters
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.schedule import Schedule
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.slot import Slot

FHIR_VERSION = "4.0.1"
MODELS: dict[str, type[FHIRResourceModel]] = {
    model.__name__: model
    for model in (
        Appointment,
        Bundle,
        CapabilityStatement,
        Device,
        Location,
        OperationOutcome,
        Parameters,
        Patient,
        Practitioner,
        Schedule,
        ServiceRequest,
        Slot,
    )
}
PARTICIPANT_STATUS = ("accepted", "declined", "tentative", "needs-action")
PARTICIPANT_REQUIRED = ("required", "optional", "information-only")
PARTICIPANT_ACTORS = (
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "RelatedPerson",
    "Device",
    "HealthcareService",
    "Location",
)
SCHEDULE_ACTORS = PARTICIPANT_ACTORS
TIMED_OPTIONAL = ("proposed", "cancelled", "waitlist")
CANCEL_REASON_ALLOWED = ("cancelled", "noshow")


class InvalidResource(ValueError):
    """A resource of ours breaks an R4 rule."""


def _enum(model: type[FHIRResourceModel], name: str) -> list[str]:
    extra = model.model_fields[name].json_schema_extra
    assert isinstance(extra, dict)
    values = extra["enum_values"]
    assert isinstance(values, list)
    return [str(v) for v in values]


def _reference_type(reference: dict[str, Any] | None, allowed: tuple[str, ...], where: str) -> None:
    if not reference or "reference" not in reference:
        return
    kind = str(reference["reference"]).split("/", 1)[0]
    if kind not in allowed:
        raise InvalidResource(f"{where}: a reference to {kind} is not allowed (only {', '.join(allowed)}).")


def check_appointment(data: dict[str, Any]) -> None:
    """R4 Appointment: status binding, participant bindings and targets, app-1 to app-4."""
    status = data.get("status")
    if status not in _enum(Appointment, "status"):
        raise InvalidResource(f"Appointment.status {status!r} is not an R4 code.")
    has_start, has_end = "start" in data, "end" in data
    if has_start != has_end:
        raise InvalidResource("app-2: either start and end are both given or neither is.")
    if not has_start and status not in TIMED_OPTIONAL:
        raise InvalidResource("app-3: only proposed, cancelled or waitlist appointments may omit start and end.")
    if "cancelationReason" in data and status not in CANCEL_REASON_ALLOWED:
        raise InvalidResource("app-4: cancelationReason is only for cancelled or no-show appointments.")
    for participant in data.get("participant", ()):
        if "type" not in participant and "actor" not in participant:
            raise InvalidResource("app-1: a participant has a type, an actor or both.")
        if participant.get("status") not in PARTICIPANT_STATUS:
            raise InvalidResource(f"Appointment.participant.status {participant.get('status')!r} is not an R4 code.")
        if participant.get("required", "required") not in PARTICIPANT_REQUIRED:
            raise InvalidResource("Appointment.participant.required is not an R4 code.")
        _reference_type(participant.get("actor"), PARTICIPANT_ACTORS, "Appointment.participant.actor")
    _reference_type(data.get("basedOn", [None])[0] if data.get("basedOn") else None, ("ServiceRequest",), "basedOn")


def check_slot(data: dict[str, Any]) -> None:
    if data.get("status") not in _enum(Slot, "status"):
        raise InvalidResource(f"Slot.status {data.get('status')!r} is not an R4 code.")
    _reference_type(data.get("schedule"), ("Schedule",), "Slot.schedule")
    if data["start"] >= data["end"]:
        raise InvalidResource("Slot: start is before end.")


def check_schedule(data: dict[str, Any]) -> None:
    if not data.get("actor"):
        raise InvalidResource("Schedule.actor is required.")
    for actor in data["actor"]:
        _reference_type(actor, SCHEDULE_ACTORS, "Schedule.actor")


CHECKS = {"Appointment": check_appointment, "Slot": check_slot, "Schedule": check_schedule}


def validated(data: dict[str, Any]) -> dict[str, Any]:
    """The resource as checked JSON: parsed by its R4B model, then our R4 rules. A Bundle's
    entries are each checked the same way. Raises InvalidResource (or pydantic's error)."""
    kind = data.get("resourceType")
    model = MODELS.get(str(kind))
    if model is None:
        raise InvalidResource(f"Not a resource type this server sends: {kind!r}.")
    model.model_validate(data)
    check = CHECKS.get(str(kind))
    if check is not None:
        check(data)
    if kind == "Bundle":
        for entry in data.get("entry", ()):
            if "resource" in entry:
                validated(entry["resource"])
    return data
