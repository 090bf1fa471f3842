"""IHE ITI Scheduling on our booking services: ``Appointment/$find`` (ITI-115), ``$hold``
(ITI-116), ``$book`` (ITI-117), and cancelling an Appointment with a JSON Patch of its status.

A proposed Appointment's id names the case and the resources the engine found
(``proposal_key``), so ``$hold`` and ``$book`` book exactly those legs, through the same
services, locks and rules as the REST API: a proposal raced by many clients books once, and
the rest get a conflict.
"""

from __future__ import annotations

import re
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from django.db import transaction
from django.http import Http404, HttpResponseBase
from rest_framework.request import Request
from rest_framework.response import Response

from core.audit import audit_patients, audit_record
from core.errors import BookingInvalid, Problem
from core.roles import BOOK, SCHEDULE_READ
from interop.fhir import build, r4
from interop.fhir.idempotency import run_idempotent
from interop.fhir.search import BadSearch, reference_id, split_prefixed
from interop.fhir.views import FHIR_JSON, FhirError, FhirView, InstanceView, base_url
from scheduling import policy
from scheduling.availability.search import SearchQuery, availability_search
from scheduling.legroles import LEG_ROLES, PIN_FIELDS
from scheduling.models import Booking, BookingStatus, CancelReason, ProcedureType, Sedation
from scheduling.request import CaseRequest
from scheduling.selectors import bookings_visible_to, bookings_with_legs, patients_bookable_by
from scheduling.services.bookings import booking_cancel, booking_create, booking_reschedule, hold_confirm

# One letter per pin in a proposal's id, and one per sedation level.
PIN_LETTERS = dict(zip(PIN_FIELDS, "rcghtsdb", strict=True))
LETTER_PINS = {letter: pin for pin, letter in PIN_LETTERS.items()}
SEDATION_LETTERS = {Sedation.LOCAL: "l", Sedation.MODERATE: "m", Sedation.MAC: "c", Sedation.GENERAL: "g"}
LETTER_SEDATION = {letter: str(level) for level, letter in SEDATION_LETTERS.items()}
MAX_FIND_DAYS = 31
_PIN = r"[rcghtsdb][0-9a-z]{1,13}"
_KEY = re.compile(rf"^([A-Za-z0-9-]{{1,20}})\.(\d{{1,2}})\.([lmcg])\.(\d{{12}})\.({_PIN}(?:-{_PIN})*)$")


@dataclass(frozen=True)
class Proposal:
    procedure: ProcedureType
    levels: int
    sedation: str
    start: datetime
    pins: dict[str, int]

    def request(self, patient: Any) -> CaseRequest:
        """The case to book for ``patient``, on exactly the proposed resources."""
        return CaseRequest(
            procedure_type=self.procedure, levels=self.levels, sedation=self.sedation, patient=patient, pins=self.pins
        )


def proposal_key(procedure: ProcedureType, levels: int, sedation: str, start: datetime, pins: dict[str, int]) -> str:
    encoded = "-".join(f"{PIN_LETTERS[name]}{_base36(pins[name])}" for name in PIN_FIELDS if name in pins)
    return (
        f"{procedure.code}.{levels}.{SEDATION_LETTERS[Sedation(sedation)]}.{start.astimezone(UTC):%Y%m%d%H%M}.{encoded}"
    )


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def parse_proposal(key: str) -> Proposal | None:
    match = _KEY.match(key)
    if match is None:
        return None
    code, levels, sedation, stamp, encoded = match.groups()
    procedure = ProcedureType.objects.filter(code=code).first()
    if procedure is None:
        return None
    pins = {LETTER_PINS[part[0]]: int(part[1:], 36) for part in encoded.split("-")}
    start = datetime.strptime(stamp, "%Y%m%d%H%M").replace(tzinfo=UTC)
    return Proposal(procedure, int(levels), LETTER_SEDATION[sedation], start, pins)


# --- Parameters ---------------------------------------------------------------------------


def parameters_of(request: Request) -> dict[str, list[Any]]:
    """The operation's inputs, from a Parameters body (POST) or the query string (GET)."""
    found: dict[str, list[Any]] = {}
    if request.method == "GET":
        for name in request.query_params:
            found[name] = list(request.query_params.getlist(name))
        return found
    body = request.data
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirError(400, "structure", "Send a Parameters resource.")
    try:
        r4.MODELS["Parameters"].model_validate(body)
    except ValueError as exc:
        raise FhirError(400, "structure", f"The Parameters resource is not valid FHIR: {str(exc)[:300]}") from exc
    for parameter in body.get("parameter", []):
        name = parameter.get("name")
        value = parameter.get("resource")
        if value is None:
            value = next((v for k, v in parameter.items() if k.startswith("value")), None)
        if isinstance(value, dict) and "reference" in value and "resourceType" not in value:
            value = value["reference"]
        found.setdefault(str(name), []).append(value)
    return found


def _text(params: dict[str, list[Any]], name: str) -> str | None:
    values = params.get(name) or []
    value = values[-1] if values else None
    if value is None:
        return None
    if not isinstance(value, str | int):
        raise FhirError(400, "invalid", f"{name}: give a text value.")
    return str(value)


def _day(params: dict[str, list[Any]], name: str) -> date:
    raw = _text(params, name)
    if raw is None:
        raise FhirError(400, "required", f"{name} is required (a date, YYYY-MM-DD).")
    try:
        return date.fromisoformat(raw[:10])
    except ValueError as exc:
        raise FhirError(400, "invalid", f"{name}: {raw!r} is not a date (YYYY-MM-DD).") from exc


def _procedure(params: dict[str, list[Any]]) -> ProcedureType:
    raw = _text(params, "service-type") or _text(params, "visit-type")
    if raw is None:
        raise FhirError(400, "required", "service-type is required: the procedure's code (e.g. VP, KP).")
    code = raw.rpartition("|")[2]
    procedure = ProcedureType.objects.filter(code=code, is_active=True).first()
    if procedure is None:
        raise FhirError(400, "invalid", f"service-type: {code!r} is not a procedure offered here.")
    return procedure


def _patient_id(params: dict[str, list[Any]], name: str) -> int | None:
    raw = _text(params, name)
    if raw is None:
        return None
    _, ident = reference_id(name, raw, ("Patient",))
    if not ident.isdigit():
        raise FhirError(400, "invalid", f"{name}: {raw!r} is not a Patient of this server.")
    return int(ident)


def _pins(params: dict[str, list[Any]]) -> tuple[dict[str, int], int | None]:
    """Pins from practitioner and location references, and the site a site Location names."""
    pins: dict[str, int] = {}
    site_id = None
    for raw in params.get("practitioner", []) or []:
        _, ident = reference_id("practitioner", str(raw), ("Practitioner",))
        if not ident.isdigit():
            raise BadSearch(f"practitioner: {raw!r} is not a Practitioner of this server.")
        pins["physician"] = int(ident)
    for name in ("location", "location-reference"):
        for raw in params.get(name, []) or []:
            _, ident = reference_id(name, str(raw), ("Location",))
            parsed = split_prefixed(ident)
            if parsed is None or parsed[0] not in ("room", "site"):
                raise BadSearch(f"{name}: {raw!r} is not a room or site Location of this server.")
            if parsed[0] == "room":
                pins["room"] = parsed[1]
            else:
                site_id = parsed[1]
    return pins, site_id


def _bundle(request: Request, resources: list[dict[str, Any]]) -> dict[str, Any]:
    base = base_url(request)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(resources)}
    if resources:
        bundle["entry"] = [
            {"fullUrl": f"{base}/Appointment/{r['id']}", "resource": r, "search": {"mode": "match"}} for r in resources
        ]
    return r4.validated(bundle)


def _fresh(booking: Booking) -> Booking:
    return bookings_with_legs().get(pk=booking.pk)


class FindView(FhirView):
    """ITI-115: proposed Appointments, each with every leg and its window."""

    def access(self, request: Request) -> tuple[frozenset[str], str]:
        return policy.SEARCHERS, SCHEDULE_READ

    def get(self, request: Request) -> Response:
        return self._find(request)

    def post(self, request: Request) -> Response:
        return self._find(request)

    def _find(self, request: Request) -> Response:
        params = parameters_of(request)
        first, last = _day(params, "start"), _day(params, "end")
        if last < first:
            raise FhirError(400, "invalid", "end is before start.")
        if (last - first).days > MAX_FIND_DAYS:
            raise FhirError(400, "too-costly", f"Search at most {MAX_FIND_DAYS} days at a time.")
        procedure = _procedure(params)
        levels_raw = _text(params, "levels") or "1"
        if not levels_raw.isdigit():
            raise FhirError(400, "invalid", "levels: a whole number.")
        patient = None
        patient_id = _patient_id(params, "patient") or _patient_id(params, "patient-reference")
        if patient_id is not None:
            patient = patients_bookable_by(request.user).filter(pk=patient_id).first()
            if patient is None:
                raise FhirError(400, "invalid", "patient: no such Patient, or not one you may book.")
        pins, site_id = _pins(params)
        count_raw = _text(params, "_count") or "10"
        if not count_raw.isdigit() or not 1 <= int(count_raw) <= 50:
            raise FhirError(400, "invalid", "_count: 1 to 50.")
        sedation = _text(params, "sedation")
        case = CaseRequest(
            procedure_type=procedure,
            levels=int(levels_raw),
            sedation=sedation,
            patient=patient,
            site_id=site_id,
            pins=pins,
        )
        found = availability_search(
            SearchQuery(request=case, date_from=first, date_to=last, count=int(count_raw), grid_minutes=15)
        )
        proposals = []
        for one in found:
            slot_pins = {pin: leg.resource_id for leg in one.legs if (pin := LEG_ROLES[leg.role].pin) is not None}
            key = proposal_key(procedure, case.levels, case.sedation_level, one.start, slot_pins)
            proposals.append(build.proposed_appointment(one, procedure, case.levels, patient_id, key))
        if patient is not None:
            audit_patients(request.user, "fhir.appointment.find", [patient.pk])
        return Response(_bundle(request, proposals), content_type=FHIR_JSON)


def _source(params: dict[str, list[Any]]) -> str:
    appt_id = _text(params, "appt-id")
    resource = (params.get("appt-resource") or [None])[-1]
    if appt_id is None and isinstance(resource, dict):
        appt_id = str(resource.get("id") or "")
    if not appt_id:
        raise FhirError(400, "required", "Name the Appointment: appt-id, or appt-resource with its id.")
    return appt_id.rsplit("/", 1)[-1]


def _proposal_patient(request: Request, params: dict[str, list[Any]]) -> Any:
    patient_id = _patient_id(params, "patient-id") or _patient_id(params, "patient")
    resource = (params.get("appt-resource") or [None])[-1]
    if patient_id is None and isinstance(resource, dict):
        for participant in resource.get("participant", []):
            reference = participant.get("actor", {}).get("reference", "")
            if reference.startswith("Patient/") and reference[8:].isdigit():
                patient_id = int(reference[8:])
    if patient_id is None:
        raise FhirError(400, "required", "Name the patient: patient-id, or a Patient participant in appt-resource.")
    patient = patients_bookable_by(request.user).filter(pk=patient_id).first()
    if patient is None:
        raise FhirError(422, "business-rule", "No such Patient, or not one you may book.")
    return patient


def _proposal(key: str) -> Proposal:
    proposal = parse_proposal(key)
    if proposal is None:
        raise FhirError(404, "not-found", f"No proposed Appointment {key!r}: take one from $find.")
    return proposal


class HoldView(FhirView):
    """ITI-116: hold every leg of a proposed Appointment at once, until the hold expires."""

    def access(self, request: Request) -> tuple[frozenset[str], str]:
        return policy.CASE_BOOKERS, BOOK

    def post(self, request: Request) -> HttpResponseBase:
        return run_idempotent(request, "appointment.hold", lambda: self._hold(request))

    def _hold(self, request: Request) -> Response:
        params = parameters_of(request)
        proposal = _proposal(_source(params))
        patient = _proposal_patient(request, params)
        booking = booking_create(
            actor=request.user, request=proposal.request(patient), starts_at=proposal.start, status=BookingStatus.HOLD
        )
        audit_record(actor=request.user, action="fhir.appointment.hold", obj=booking)
        return Response(_bundle(request, [build.appointment(_fresh(booking))]), content_type=FHIR_JSON)


class BookView(FhirView):
    """ITI-117: book a held Appointment (its id) or a proposed one; with ``cancelled-appt-id``
    the named case moves there instead (a reschedule: the case keeps its id)."""

    def access(self, request: Request) -> tuple[frozenset[str], str]:
        return policy.CASE_BOOKERS, BOOK

    def _visible(self, request: Request, ident: str) -> Booking:
        if not ident.isdigit() or len(ident) > 18:
            raise FhirError(404, "not-found", f"No Appointment {ident!r}.")
        booking = bookings_visible_to(request.user).filter(pk=int(ident)).first()
        if booking is None:
            raise FhirError(404, "not-found", f"No Appointment {ident!r}, or not one you may book.")
        return booking

    def post(self, request: Request) -> HttpResponseBase:
        return run_idempotent(request, "appointment.book", lambda: self._book(request))

    def _book(self, request: Request) -> Response:
        params = parameters_of(request)
        source = _source(params)
        cancelled_raw = _text(params, "cancelled-appt-id")
        moved_from = self._visible(request, cancelled_raw.rsplit("/", 1)[-1]) if cancelled_raw else None
        # Booking the new place and letting the old case go succeed or fail together; a plain
        # booking is one service call, in its own transaction as the REST API makes it.
        with transaction.atomic() if moved_from is not None else nullcontext():
            booked = self._place(request, params, source, moved_from)
        audit_record(
            actor=request.user,
            action="fhir.appointment.book",
            obj=booked,
            details={
                "from": source if not source.isdigit() else f"hold {source}",
                "cancelled": moved_from.pk if moved_from else None,
            },
        )
        return Response(_bundle(request, [build.appointment(_fresh(booked))]), content_type=FHIR_JSON)

    def _place(
        self, request: Request, params: dict[str, list[Any]], source: str, moved_from: Booking | None
    ) -> Booking:
        if source.isdigit():
            booked = hold_confirm(actor=request.user, booking=self._visible(request, source))
            if moved_from is not None and moved_from.pk != booked.pk:
                # The held case replaces the one named: it is cancelled once the hold is booked.
                booking_cancel(
                    actor=request.user, booking=moved_from, reason=CancelReason.PATIENT_REQUEST, note="Rebooked"
                )
        else:
            proposal = _proposal(source)
            if moved_from is not None:
                booked = booking_reschedule(
                    actor=request.user, booking=moved_from, starts_at=proposal.start, pins=proposal.pins
                )
                if booked.status == BookingStatus.HOLD:
                    booked = hold_confirm(actor=request.user, booking=booked)
            else:
                patient = _proposal_patient(request, params)
                booked = booking_create(actor=request.user, request=proposal.request(patient), starts_at=proposal.start)
        return booked


REASON_OF_CODE = {
    code: reason for reason, code in build.CANCEL_REASON_CODES.items() if code not in ("pat-cpp", "pat-crs", "oth-err")
}


def cancel_reason_of(value: Any) -> str:
    if value is None:
        return CancelReason.OTHER
    if not isinstance(value, dict):
        raise BookingInvalid(
            [Problem("invalid_reason", "cancelationReason is a CodeableConcept.", field="cancelationReason")]
        )
    for coding in value.get("coding", []):
        code = coding.get("code")
        if code in CancelReason.values:
            return str(code)
        if code in REASON_OF_CODE:
            return str(REASON_OF_CODE[code])
    return CancelReason.OTHER


class AppointmentInstanceView(InstanceView):
    """Cancel an Appointment: ``PATCH Appointment/{id}`` with a JSON Patch that replaces
    ``/status`` by ``cancelled`` (and may add ``/cancelationReason``). Nothing else of an
    Appointment is changed this way: moves go through ``$book`` with ``cancelled-appt-id``."""

    def access(self, request: Request) -> tuple[frozenset[str], str]:
        if request.method == "PATCH":
            return policy.CANCELLERS, BOOK
        return super().access(request)

    def patch(self, request: Request, ident: str, kind: str = "Appointment") -> HttpResponseBase:
        return run_idempotent(request, "appointment.cancel", lambda: self._cancel(request, ident))

    def _cancel(self, request: Request, ident: str) -> Response:
        operations = request.data
        if not isinstance(operations, list) or not operations:
            raise FhirError(400, "structure", "Send a JSON Patch (a list of operations).")
        status = None
        reason = None
        for op in operations:
            if not isinstance(op, dict):
                raise FhirError(400, "structure", "Each JSON Patch operation is an object.")
            if op.get("op") in ("replace", "add") and op.get("path") == "/status":
                status = op.get("value")
            elif op.get("op") in ("replace", "add") and op.get("path") == "/cancelationReason":
                reason = op.get("value")
            elif op.get("op") != "test":
                raise FhirError(
                    422,
                    "not-supported",
                    f"Only /status (to cancelled) and /cancelationReason may be patched, not {op.get('path')!r}.",
                )
        if status != "cancelled":
            raise FhirError(
                422,
                "not-supported",
                "Patch /status to 'cancelled' to cancel; other changes of status are made on the procedure day.",
            )
        if not ident.isdigit() or len(ident) > 18:
            raise Http404
        booking = bookings_visible_to(request.user).filter(pk=int(ident)).first()
        if booking is None:
            raise Http404
        cancelled = booking_cancel(actor=request.user, booking=booking, reason=cancel_reason_of(reason))
        return Response(r4.validated(build.appointment(_fresh(cancelled))), content_type=FHIR_JSON)
