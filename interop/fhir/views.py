"""FHIR R4 over HTTP: ``/fhir/r4/``, ``application/fhir+json``.

Reads and searches of Patient, Practitioner, Location, Device, Schedule, Slot, Appointment and
ServiceRequest, the CapabilityStatement, and the IHE scheduling operations
(``interop.fhir.operations``). Who sees what is the policy's (``scheduling.policy``,
``scheduling.selectors``): the same roles and key scopes as the REST API. Every error is an
OperationOutcome; every answer is validated as R4 before it is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.audit import audit_patients
from core.errors import (
    BookingInvalid,
    InvalidTransition,
    NotPermitted,
    OverrideNotPermitted,
    ReadinessNotMet,
    SchedulingError,
    SlotUnavailable,
    UnknownReference,
)
from core.roles import PATIENTS_READ, SCHEDULE_READ, has_any_role, scope_allows
from interop.fhir import build, r4
from interop.fhir.search import (
    BadSearch,
    date_condition,
    numeric_id,
    parse_count,
    parse_date,
    parse_offset,
    reference_id,
    split_prefixed,
)
from rooms.models import Equipment, ProcedureRoom, RecoveryBay, Site
from scheduling import policy
from scheduling.availability.calendar import resource_calendar
from scheduling.models import Allocation, Booking
from scheduling.selectors import bookings_visible_to, bookings_with_legs, patients_visible_to
from staff.models import StaffMember

FHIR_JSON = "application/fhir+json"
MAX_SLOT_DAYS = 31


class FhirRenderer(JSONRenderer):
    media_type = FHIR_JSON
    format = "fhir"


class PlainJsonRenderer(JSONRenderer):
    """For a client that asks for application/json: the same resources."""


class FhirParser(JSONParser):
    media_type = FHIR_JSON


class JsonPatchParser(JSONParser):
    media_type = "application/json-patch+json"


class FhirError(Exception):
    def __init__(self, status: int, code: str, diagnostics: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(diagnostics)
        self.status, self.code, self.diagnostics, self.details = status, code, diagnostics, details or {}


def outcome(status: int, code: str, diagnostics: str, *, extra: Iterable[str] = ()) -> Response:
    issues = [{"severity": "error", "code": code, "diagnostics": diagnostics}]
    issues += [{"severity": "error", "code": code, "diagnostics": text} for text in extra]
    body = r4.validated({"resourceType": "OperationOutcome", "issue": issues})
    return Response(body, status=status, content_type=FHIR_JSON)


def error_response(exc: Exception) -> Response | None:
    """The OperationOutcome for an error, or None if it is not one we know (a bug: raised)."""
    if isinstance(exc, FhirError):
        return outcome(exc.status, exc.code, exc.diagnostics)
    if isinstance(exc, BadSearch):
        return outcome(400, "invalid", str(exc))
    if isinstance(exc, Http404 | exceptions.NotFound):
        return outcome(404, "not-found", "No such resource, or it is not one you may read.")
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response = outcome(401, "login", str(exc.detail))
        response["WWW-Authenticate"] = "Bearer"
        return response
    if isinstance(exc, exceptions.PermissionDenied):
        return outcome(403, "forbidden", str(exc.detail))
    if isinstance(exc, exceptions.MethodNotAllowed):
        return outcome(405, "not-supported", str(exc.detail))
    if isinstance(exc, exceptions.UnsupportedMediaType | exceptions.NotAcceptable):
        return outcome(exc.status_code, "not-supported", str(exc.detail))
    if isinstance(exc, exceptions.ParseError):
        return outcome(400, "structure", f"The body is not JSON: {exc.detail}")
    if isinstance(exc, exceptions.Throttled):
        return outcome(429, "throttled", str(exc.detail))
    if isinstance(exc, NotPermitted | OverrideNotPermitted):
        return outcome(403, "forbidden", exc.message)
    if isinstance(exc, SlotUnavailable):
        return outcome(409, "conflict", exc.message, extra=[c["message"] for c in exc.conflicts[1:]])
    if isinstance(exc, InvalidTransition):
        return outcome(409, "conflict", exc.message)
    if isinstance(exc, BookingInvalid):
        return outcome(422, "business-rule", exc.problems[0].message, extra=[p.message for p in exc.problems[1:]])
    if isinstance(exc, ReadinessNotMet | UnknownReference):
        return outcome(422, "business-rule", exc.message)
    if isinstance(exc, SchedulingError):
        return outcome(422, "processing", exc.message)
    if isinstance(exc, exceptions.APIException):
        return outcome(exc.status_code, "invalid", str(exc.detail))
    return None


class FhirPermission(BasePermission):
    """The view's roles and the key scope of the resource type (Patient needs the patients
    scope; everything else reading the schedule; the operations say their own)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        roles, scope = view.access(request)
        if not has_any_role(request.user, roles):
            self.message = "Your role does not allow this."
            return False
        if not scope_allows(request.user, scope):
            self.message = f"The API key does not have the scope {scope!r}."
            return False
        return True


class FhirView(APIView):
    # FHIR has its own contract (the CapabilityStatement); it is not part of the OpenAPI schema.
    schema = None
    renderer_classes = [FhirRenderer, PlainJsonRenderer]
    parser_classes = [FhirParser, JsonPatchParser, JSONParser]
    permission_classes = [FhirPermission]

    def access(self, request: Request) -> tuple[frozenset[str], str]:
        return policy.EVERYONE, SCHEDULE_READ

    def handle_exception(self, exc: Exception) -> Response:
        response = error_response(exc)
        if response is None:
            raise exc
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if getattr(response, "accepted_media_type", None) == FHIR_JSON or response.get("Content-Type", "").startswith(
            FHIR_JSON
        ):
            response["Content-Type"] = f"{FHIR_JSON}; charset=utf-8"
        return response


def base_url(request: Request) -> str:
    return request.build_absolute_uri("/fhir/r4").rstrip("/")


def clinic_zone() -> ZoneInfo:
    zones = set(Site.objects.filter(is_active=True).values_list("timezone", flat=True))
    return ZoneInfo(zones.pop()) if len(zones) == 1 else ZoneInfo("UTC")


def strict(request: Request) -> bool:
    return "handling=strict" in request.headers.get("Prefer", "").replace(" ", "")


# --- resource types -----------------------------------------------------------------------


@dataclass
class Page:
    resources: list[dict[str, Any]]
    total: int
    patient_ids: list[int]


Search = Callable[[Request, dict[str, list[str]], int, int], Page]
Read = Callable[[Request, str], tuple[dict[str, Any], list[int]]]


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _page(queryset: QuerySet[Any], offset: int, count: int) -> tuple[list[Any], int]:
    total = queryset.count()
    rows = list(queryset[offset : offset + count]) if count else []
    return rows, total


def _last_updated(params: dict[str, list[str]], field: str, zone: ZoneInfo) -> Q:
    condition = Q()
    for raw in params.get("_lastUpdated", []):
        condition &= date_condition(field, parse_date("_lastUpdated", raw, zone))
    return condition


def _ids(params: dict[str, list[str]], name: str = "_id") -> list[str]:
    return [value for raw in params.get(name, []) for value in raw.split(",") if value]


# Appointment ---------------------------------------------------------------------------------

ACTOR_KINDS = ("Patient", "Practitioner", "Location", "Device")


def _actor_condition(name: str, raw: str) -> Q:
    kind, ident = reference_id(
        name,
        raw,
        ACTOR_KINDS
        if name == "actor"
        else {"patient": ("Patient",), "practitioner": ("Practitioner",), "location": ("Location",)}[name],
    )
    if kind == "Patient":
        return Q(patient_id=numeric_id(name, ident))
    if kind == "Practitioner":
        return Q(pk__in=Allocation.objects.filter(staff_id=numeric_id(name, ident)).values("booking_id"))
    if kind == "Device":
        return Q(pk__in=Allocation.objects.filter(equipment_id=numeric_id(name, ident)).values("booking_id"))
    parsed = split_prefixed(ident)
    if parsed is None or parsed[0] not in ("room", "bay", "site"):
        raise BadSearch(f"{name}: {raw!r} is not a Location of this server.")
    column, pk = parsed
    if column == "site":
        return Q(site_id=pk)
    return Q(pk__in=Allocation.objects.filter(**{f"{column}_id": pk}).values("booking_id"))


def _booking_filter(request: Request, params: dict[str, list[str]], date_field: str = "starts_at") -> QuerySet[Booking]:
    zone = clinic_zone()
    condition = Q()
    for raw in params.get("date", []):
        condition &= date_condition(date_field, parse_date("date", raw, zone))
    for name in ("actor", "patient", "practitioner", "location"):
        for raw in params.get(name, []):
            condition &= _actor_condition(name, raw)
    statuses = [s for raw in params.get("status", []) for s in raw.split(",") if s]
    if statuses:
        ours: list[str] = []
        for status in statuses:
            if status not in build.STATUSES_OF_FHIR and status not in r4._enum(r4.Appointment, "status"):
                raise BadSearch(f"status: {status!r} is not an Appointment status.")
            ours += build.STATUSES_OF_FHIR.get(status, [])
        condition &= Q(status__in=ours)
    ids = _ids(params)
    if ids:
        condition &= Q(pk__in=[numeric_id("_id", i) for i in ids])
    condition &= _last_updated(params, "updated_at", zone)
    visible = bookings_visible_to(request.user)
    return bookings_with_legs().filter(pk__in=visible.filter(condition).values("pk")).order_by("starts_at", "id")


def appointment_search(request: Request, params: dict[str, list[str]], offset: int, count: int) -> Page:
    rows, total = _page(_booking_filter(request, params), offset, count)
    return Page([build.appointment(b) for b in rows], total, [b.patient_id for b in rows])


def _visible_booking(request: Request, ident: str) -> Booking:
    if not ident.isdigit() or len(ident) > 18:
        raise Http404
    booking = (
        bookings_with_legs().filter(pk__in=bookings_visible_to(request.user).filter(pk=int(ident)).values("pk")).first()
    )
    if booking is None:
        raise Http404
    return booking


def appointment_read(request: Request, ident: str) -> tuple[dict[str, Any], list[int]]:
    booking = _visible_booking(request, ident)
    return build.appointment(booking), [booking.patient_id]


def service_request_search(request: Request, params: dict[str, list[str]], offset: int, count: int) -> Page:
    params = {k: v for k, v in params.items() if k != "status"}
    if "subject" in params:
        params["patient"] = params.pop("subject")
    rows, total = _page(_booking_filter(request, params, "starts_at"), offset, count)
    return Page([build.service_request(b) for b in rows], total, [b.patient_id for b in rows])


def service_request_read(request: Request, ident: str) -> tuple[dict[str, Any], list[int]]:
    booking = _visible_booking(request, ident)
    return build.service_request(booking), [booking.patient_id]


# Patient ---------------------------------------------------------------------------------------


def patient_search(request: Request, params: dict[str, list[str]], offset: int, count: int) -> Page:
    fields = policy.patient_fields(request.user)
    queryset = patients_visible_to(request.user)
    ids = _ids(params)
    if ids:
        queryset = queryset.filter(pk__in=[numeric_id("_id", i) for i in ids])
    for raw in params.get("identifier", []):
        system, bar, value = raw.rpartition("|")
        if bar and system and system != build.mrn_system():
            queryset = queryset.none()
        queryset = queryset.filter(mrn=value if bar else raw)
    rows, total = _page(queryset.order_by("id"), offset, count)
    return Page([build.patient(p, fields) for p in rows], total, [p.pk for p in rows])


def patient_read(request: Request, ident: str) -> tuple[dict[str, Any], list[int]]:
    if not ident.isdigit() or len(ident) > 18:
        raise Http404
    record = patients_visible_to(request.user).filter(pk=int(ident)).first()
    if record is None:
        raise Http404
    return build.patient(record, policy.patient_fields(request.user)), [record.pk]


# Practitioner, Location, Device, Schedule ------------------------------------------------------


def _simple_search(
    queryset: QuerySet[Any],
    render: Callable[[Any], dict[str, Any]],
    params: dict[str, list[str]],
    offset: int,
    count: int,
    key: Callable[[str], Any] = lambda i: numeric_id("_id", i),
) -> Page:
    ids = _ids(params)
    if ids:
        queryset = queryset.filter(pk__in=[key(i) for i in ids])
    rows, total = _page(queryset.order_by("id"), offset, count)
    return Page([render(row) for row in rows], total, [])


def practitioner_search(request: Request, params: dict[str, list[str]], offset: int, count: int) -> Page:
    queryset = StaffMember.objects.all()
    active = _one(params, "active")
    if active in ("true", "false"):
        queryset = queryset.filter(is_active=active == "true")
    return _simple_search(queryset, build.practitioner, params, offset, count)


def practitioner_read(request: Request, ident: str) -> tuple[dict[str, Any], list[int]]:
    member = StaffMember.objects.filter(pk=int(ident)).first() if ident.isdigit() and len(ident) <= 18 else None
    if member is None:
        raise Http404
    return build.practitioner(member), []


def _locations() -> list[dict[str, Any]]:
    return (
        [build.site_location(s) for s in Site.objects.order_by("id")]
        + [build.room_location(r) for r in ProcedureRoom.objects.order_by("id")]
        + [build.bay_location(b) for b in RecoveryBay.objects.order_by("id")]
    )


def location_search(request: Request, params: dict[str, list[str]], offset: int, count: int) -> Page:
    found = _locations()
    ids = set(_ids(params))
    if ids:
        found = [loc for loc in found if loc["id"] in ids]
    partof = _one(params, "partof")
    if partof:
        _, ident = reference_id("partof", partof, ("Location",))
        found = [loc for loc in found if loc.get("partOf", {}).get("reference") == f"Location/{ident}"]
    return Page(found[offset : offset + count], len(found), [])


def location_read(request: Request, ident: str) -> tuple[dict[str, Any], list[int]]:
    parsed = split_prefixed(ident)
    models: dict[str, tuple[Any, Callable[[Any], dict[str, Any]]]] = {
        "site": (Site, build.site_location),
        "room": (ProcedureRoom, build.room_location),
        "bay": (RecoveryBay, build.bay_location),
    }
    if parsed is None or parsed[0] not in models:
        raise Http404
    model, render = models[parsed[0]]
    row = model.objects.filter(pk=parsed[1]).first()
    if row is None:
        raise Http404
    return render(row), []


def device_search(request: Request, params: dict[str, list[str]], offset: int, count: int) -> Page:
    queryset = Equipment.objects.all()
    kind = _one(params, "type")
    if kind:
        queryset = queryset.filter(kind=kind.rpartition("|")[2])
    return _simple_search(queryset, build.device, params, offset, count)


def device_read(request: Request, ident: str) -> tuple[dict[str, Any], list[int]]:
    item = Equipment.objects.filter(pk=int(ident)).first() if ident.isdigit() and len(ident) <= 18 else None
    if item is None:
        raise Http404
    return build.device(item), []


SCHEDULE_SOURCES: dict[str, Any] = {
    "room": ProcedureRoom,
    "equipment": Equipment,
    "staff": StaffMember,
    "bay": RecoveryBay,
}


def _schedules() -> list[dict[str, Any]]:
    found = []
    for column, model in SCHEDULE_SOURCES.items():
        for row in model.objects.order_by("id"):
            found.append(build.schedule(column, row.pk, str(row), row.is_active))
    return found


def schedule_search(request: Request, params: dict[str, list[str]], offset: int, count: int) -> Page:
    found = _schedules()
    ids = set(_ids(params))
    if ids:
        found = [one for one in found if one["id"] in ids]
    for raw in params.get("actor", []):
        kind, ident = reference_id("actor", raw, ("Practitioner", "Location", "Device"))
        found = [one for one in found if one["actor"][0]["reference"] == f"{kind}/{ident}"]
    active = _one(params, "active")
    if active in ("true", "false"):
        found = [one for one in found if one["active"] is (active == "true")]
    return Page(found[offset : offset + count], len(found), [])


def _schedule_row(ident: str) -> tuple[str, Any]:
    parsed = split_prefixed(ident)
    if parsed is None or parsed[0] not in SCHEDULE_SOURCES:
        raise Http404
    row = SCHEDULE_SOURCES[parsed[0]].objects.filter(pk=parsed[1]).first()
    if row is None:
        raise Http404
    return parsed[0], row


def schedule_read(request: Request, ident: str) -> tuple[dict[str, Any], list[int]]:
    column, row = _schedule_row(ident)
    return build.schedule(column, row.pk, str(row), row.is_active), []


# Slot -----------------------------------------------------------------------------------------


def _slot_window(params: dict[str, list[str]], zone: ZoneInfo) -> tuple[datetime, datetime]:
    lo: datetime | None = None
    hi: datetime | None = None
    for raw in params.get("start", []):
        bound = parse_date("start", raw, zone)
        if bound.prefix in ("ge", "gt", "sa"):
            lo = bound.lo if bound.prefix == "ge" else bound.hi
        elif bound.prefix in ("lt", "le", "eb"):
            hi = bound.lo if bound.prefix in ("lt", "eb") else bound.hi
        elif bound.prefix in ("eq", "ap"):
            lo, hi = bound.lo, bound.hi
        else:
            raise BadSearch("start: ne is not supported for Slots; give a range (ge…, lt…).")
    now = timezone.now()
    lo = lo or now.replace(second=0, microsecond=0)
    hi = hi or lo + timedelta(days=7)
    if hi <= lo:
        raise BadSearch("start: the range ends before it begins.")
    if hi - lo > timedelta(days=MAX_SLOT_DAYS):
        raise BadSearch(f"start: ask for at most {MAX_SLOT_DAYS} days of Slots at a time.")
    return lo, hi


def _slots_of(schedule_key: str, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    column, row = _schedule_row(schedule_key)
    calendar = resource_calendar(column, row.pk, lo, hi)
    if calendar is None:
        raise Http404
    return [build.slot(schedule_key, period) for period in calendar.periods]


def slot_search(request: Request, params: dict[str, list[str]], offset: int, count: int) -> Page:
    schedules = [s for raw in params.get("schedule", []) for s in raw.split(",") if s]
    if not schedules:
        raise BadSearch("schedule: name the Schedule (e.g. schedule=Schedule/room-1); see the Schedule search.")
    lo, hi = _slot_window(params, clinic_zone())
    statuses = {s for raw in params.get("status", []) for s in raw.split(",") if s}
    unknown = statuses - set(r4._enum(r4.Slot, "status"))
    if unknown:
        raise BadSearch(f"status: {', '.join(sorted(unknown))} is not a Slot status.")
    found: list[dict[str, Any]] = []
    for raw in schedules:
        _, ident = reference_id("schedule", raw, ("Schedule",))
        try:
            found += _slots_of(ident, lo, hi)
        except Http404 as exc:
            raise BadSearch(f"schedule: no Schedule {ident}.") from exc
    if statuses:
        found = [one for one in found if one["status"] in statuses]
    return Page(found[offset : offset + count], len(found), [])


def slot_read(request: Request, ident: str) -> tuple[dict[str, Any], list[int]]:
    schedule_key, _, span = ident.partition(".")
    start_text, _, end_text = span.partition(".")
    try:
        lo = datetime.strptime(start_text, "%Y%m%d%H%M").replace(tzinfo=ZoneInfo("UTC"))
        hi = datetime.strptime(end_text, "%Y%m%d%H%M").replace(tzinfo=ZoneInfo("UTC"))
    except ValueError as exc:
        raise Http404 from exc
    if not lo < hi <= lo + timedelta(days=MAX_SLOT_DAYS):
        raise Http404
    for one in _slots_of(schedule_key, lo, hi):
        if one["id"] == ident:
            return one, []
    raise Http404


@dataclass(frozen=True)
class ResourceType:
    name: str
    search: Search
    read: Read
    params: tuple[str, ...]
    scope: str = SCHEDULE_READ


COMMON = ("_id", "_count", "_offset", "_lastUpdated")
TYPES: dict[str, ResourceType] = {
    t.name: t
    for t in (
        ResourceType(
            "Appointment",
            appointment_search,
            appointment_read,
            ("date", "actor", "patient", "practitioner", "location", "status"),
        ),
        ResourceType("ServiceRequest", service_request_search, service_request_read, ("patient", "subject")),
        ResourceType("Patient", patient_search, patient_read, ("identifier",), scope=PATIENTS_READ),
        ResourceType("Practitioner", practitioner_search, practitioner_read, ("active",)),
        ResourceType("Location", location_search, location_read, ("partof",)),
        ResourceType("Device", device_search, device_read, ("type",)),
        ResourceType("Schedule", schedule_search, schedule_read, ("actor", "active")),
        ResourceType("Slot", slot_search, slot_read, ("schedule", "start", "status")),
    )
}
PATIENT_BEARING = {"Appointment", "ServiceRequest", "Patient"}


def _audit(request: Request, kind: str, verb: str, patient_ids: list[int]) -> None:
    if kind in PATIENT_BEARING:
        audit_patients(request.user, f"fhir.{kind.lower()}.{verb}", patient_ids)


def etag_of(resource: dict[str, Any]) -> str | None:
    updated = resource.get("meta", {}).get("lastUpdated")
    return f'W/"{updated}"' if updated else None


class TypeView(FhirView):
    def access(self, request: Request) -> tuple[frozenset[str], str]:
        kind = TYPES.get(self.kwargs.get("kind", ""))
        return policy.EVERYONE, kind.scope if kind else SCHEDULE_READ

    def _type(self) -> ResourceType:
        kind = TYPES.get(self.kwargs["kind"])
        if kind is None:
            raise FhirError(404, "not-supported", f"This server has no {self.kwargs['kind']} resources.")
        return kind

    def get(self, request: Request, kind: str) -> Response:
        resource_type = self._type()
        params = {name: request.query_params.getlist(name) for name in request.query_params}
        unknown = sorted(set(params) - set(COMMON) - set(resource_type.params) - {"_format"})
        if unknown and strict(request):
            raise BadSearch(f"Unknown search parameter {', '.join(unknown)} for {kind}.")
        count = parse_count(_one(params, "_count"))
        offset = parse_offset(_one(params, "_offset"))
        page = resource_type.search(request, params, offset, count)
        _audit(request, kind, "search", page.patient_ids)
        base = base_url(request)
        used = [(k, v) for k, values in params.items() if k not in unknown and k != "_offset" for v in values]
        links = [
            {"relation": "self", "url": f"{base}/{kind}?{urlencode([*used, ('_offset', offset)] if offset else used)}"}
        ]
        if count and offset + count < page.total:
            links.append(
                {"relation": "next", "url": f"{base}/{kind}?{urlencode([*used, ('_offset', offset + count)])}"}
            )
        if offset:
            links.append(
                {
                    "relation": "previous",
                    "url": f"{base}/{kind}?{urlencode([*used, ('_offset', max(0, offset - count))])}",
                }
            )
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": page.total,
            "link": links,
            "entry": [
                {"fullUrl": f"{base}/{kind}/{resource['id']}", "resource": resource, "search": {"mode": "match"}}
                for resource in page.resources
            ],
        }
        if not bundle["entry"]:
            bundle.pop("entry")
        return Response(r4.validated(bundle), content_type=FHIR_JSON)


class InstanceView(FhirView):
    def access(self, request: Request) -> tuple[frozenset[str], str]:
        kind = TYPES.get(self.kwargs.get("kind", ""))
        return policy.EVERYONE, kind.scope if kind else SCHEDULE_READ

    def get(self, request: Request, kind: str, ident: str) -> Response:
        resource_type = TYPES.get(kind)
        if resource_type is None:
            raise FhirError(404, "not-supported", f"This server has no {kind} resources.")
        resource, patient_ids = resource_type.read(request, ident)
        _audit(request, kind, "read", patient_ids)
        etag = etag_of(resource)
        if etag is not None and request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        response = Response(r4.validated(resource), content_type=FHIR_JSON)
        if etag is not None:
            response["ETag"] = etag
            response["Last-Modified"] = resource["meta"]["lastUpdated"]
        return response


CANCEL_DOC = "Cancel: a JSON Patch replacing /status with cancelled (and optionally /cancelationReason)."
RETRY_DOC = (
    " Send an Idempotency-Key header to make a retry safe: the same key with the same request replays the "
    "first answer (Idempotent-Replayed: true); with another request it is refused (422)."
)


def capability_statement(base: str) -> dict[str, Any]:
    def resource(kind: ResourceType) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": kind.name,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": name, "type": SEARCH_TYPES.get(name, "token")}
                for name in (*kind.params, "_id", "_count", "_lastUpdated")
            ],
        }
        if kind.name == "Appointment":
            entry["interaction"].append({"code": "patch", "documentation": CANCEL_DOC + RETRY_DOC})
            entry["operation"] = [
                {
                    "name": op,
                    "definition": f"https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-{op}",
                    **({"documentation": RETRY_DOC.strip()} if op != "find" else {}),
                }
                for op in ("find", "hold", "book")
            ]
        return entry

    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-02",
        "publisher": "Pain clinic scheduling",
        "kind": "instance",
        "software": {"name": "Procedure scheduling and room booking"},
        "implementation": {"description": "Procedure scheduling FHIR R4 endpoint", "url": base},
        "fhirVersion": r4.FHIR_VERSION,
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "OAuth",
                                }
                            ],
                            "text": "Bearer: a staff token or a service account's API key",
                        }
                    ],
                    "description": (
                        "Authorization: Bearer <token or sk_ key>. A key's scopes "
                        "(schedule:read, book, patients:read) narrow what it may do."
                    ),
                },
                "resource": [resource(kind) for kind in TYPES.values()],
            }
        ],
    }


SEARCH_TYPES = {
    "date": "date",
    "start": "date",
    "_lastUpdated": "date",
    "actor": "reference",
    "patient": "reference",
    "subject": "reference",
    "practitioner": "reference",
    "location": "reference",
    "schedule": "reference",
    "partof": "reference",
    "_count": "number",
}


class MetadataView(FhirView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    def get(self, request: Request) -> Response:
        return Response(r4.validated(capability_statement(base_url(request))), content_type=FHIR_JSON)
