"""REST views: check the input's shape, call one service or selector, render for the role."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Prefetch, QuerySet
from django.http import HttpResponseBase
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api.errors import exception_handler, problem
from api.fields import ClinicDateField, IdField, local_iso
from api.filters import IdFilter, SafeFilterSet
from api.idempotency import run_idempotent
from core.audit import audit_read
from core.errors import SlotUnavailable
from core.roles import ADMIN, ALL_ROLES, NURSE, PHYSICIAN, SCHEDULER, TECH, primary_role, roles_of
from core.services import record_create, record_delete, record_update
from patients.models import MedicationHold, Patient
from procedure_day.readiness import readiness_summaries
from rooms.models import Downtime, Equipment, OpeningHours, ProcedureRoom, RecoveryBay, Site
from scheduling.availability.search import Pins, SearchQuery, Slot, availability_search, explain_start
from scheduling.models import Allocation, Booking, BookingStatus, ProcedureType
from scheduling.resources import ResourceChoice
from scheduling.services.bookings import booking_cancel, booking_create, booking_reschedule
from scheduling.services.downtime import downtime_create
from staff.models import Credential, Shift, StaffMember, TimeOff

READ = {"list", "retrieve"}
WRITE = {"create", "update", "partial_update", "destroy"}


def role_map(readers: set[str] | tuple[str, ...], writers: set[str] | tuple[str, ...]) -> dict[str, set[str]]:
    return {**{a: set(readers) for a in READ}, **{a: set(writers) for a in WRITE}}


@extend_schema(
    responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The app and its database answer")}, auth=[]
)
@api_view(["GET"])
@permission_classes([AllowAny])
def health(request: Request) -> Response:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return Response({"status": "ok", "database": connection.vendor})


# --- reference data -----------------------------------------------------------------------


class ReferenceViewSet(viewsets.ModelViewSet):
    """CRUD whose writes go through the audited generic services."""

    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    extra_error_statuses = {"destroy": (409,), "create": (409,), "partial_update": (409,)}

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        model = self.get_queryset().model
        serializer.instance = record_create(actor=self.request.user, model=model, data=dict(serializer.validated_data))

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        assert serializer.instance is not None
        serializer.instance = record_update(
            actor=self.request.user, instance=serializer.instance, data=dict(serializer.validated_data)
        )

    def perform_destroy(self, instance: Any) -> None:
        record_delete(actor=self.request.user, instance=instance)


INVENTORY_ROLES = role_map(ALL_ROLES, {ADMIN})
SCHEDULING_ROLES = role_map(ALL_ROLES, {ADMIN, SCHEDULER})


class SiteViewSet(ReferenceViewSet):
    queryset = Site.objects.all()
    serializer_class = s.SiteSerializer
    roles = {**INVENTORY_ROLES, "schedule": set(ALL_ROLES)}

    @extend_schema(
        parameters=[OpenApiParameter("date", OpenApiTypes.DATE, required=True, description="Site-local date")],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="Every leg of every resource that day")},
    )
    @action(detail=True, methods=["get"])
    def schedule(self, request: Request, pk: str | None = None) -> Response:
        site = self.get_object()
        day = _query_date(request, "date")
        zone = ZoneInfo(site.timezone)
        start = datetime.combine(day, time(0), tzinfo=zone)
        legs = (
            Allocation.objects.filter(
                booking__site=site, is_active=True, starts_at__lt=start + timedelta(days=1), ends_at__gt=start
            )
            .exclude(role="patient")
            .select_related("room", "equipment", "staff", "bay", "booking__procedure_type")
            .order_by("starts_at", "id")
        )
        rows = [
            {
                "booking": leg.booking_id,
                "procedure_type": leg.booking.procedure_type.code,
                "status": leg.booking.status,
                "role": leg.role,
                "resource": {
                    "kind": {"bay": "recovery_bay"}.get(leg.resource_column, leg.resource_column),
                    "id": leg.resource_id,
                    "name": str(getattr(leg, leg.resource_column)),
                },
                "start": local_iso(leg.starts_at, zone),
                "end": local_iso(leg.ends_at, zone),
            }
            for leg in legs
        ]
        return Response({"site": site.pk, "date": day.isoformat(), "legs": rows})


class OpeningHoursViewSet(ReferenceViewSet):
    queryset = OpeningHours.objects.all()
    serializer_class = s.OpeningHoursSerializer
    filterset_fields = ["site", "room"]
    roles = INVENTORY_ROLES


class RoomViewSet(ReferenceViewSet):
    queryset = ProcedureRoom.objects.all()
    serializer_class = s.RoomSerializer
    filterset_fields = ["site", "is_active"]
    roles = INVENTORY_ROLES


class EquipmentViewSet(ReferenceViewSet):
    queryset = Equipment.objects.all()
    serializer_class = s.EquipmentSerializer
    filterset_fields = ["site", "kind", "room", "is_active"]
    roles = INVENTORY_ROLES


class RecoveryBayViewSet(ReferenceViewSet):
    queryset = RecoveryBay.objects.all()
    serializer_class = s.RecoveryBaySerializer
    filterset_fields = ["site", "is_active"]
    roles = INVENTORY_ROLES


class DowntimeViewSet(ReferenceViewSet):
    queryset = Downtime.objects.all()
    serializer_class = s.DowntimeSerializer
    filterset_fields = ["room", "equipment", "reason"]
    roles = SCHEDULING_ROLES

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.instance = downtime_create(actor=self.request.user, data=dict(serializer.validated_data))


class StaffMemberViewSet(ReferenceViewSet):
    queryset = StaffMember.objects.all()
    serializer_class = s.StaffMemberSerializer
    filterset_fields = ["role", "is_active"]
    roles = INVENTORY_ROLES


class CredentialViewSet(ReferenceViewSet):
    queryset = Credential.objects.all()
    serializer_class = s.CredentialSerializer
    filterset_fields = ["staff", "kind"]
    roles = INVENTORY_ROLES


class ShiftViewSet(ReferenceViewSet):
    queryset = Shift.objects.all()
    serializer_class = s.ShiftSerializer
    filterset_fields = ["staff", "site", "weekday"]
    roles = INVENTORY_ROLES


class TimeOffViewSet(ReferenceViewSet):
    queryset = TimeOff.objects.all()
    serializer_class = s.TimeOffSerializer
    filterset_fields = ["staff"]
    roles = SCHEDULING_ROLES


class ProcedureTypeViewSet(ReferenceViewSet):
    queryset = ProcedureType.objects.all()
    serializer_class = s.ProcedureTypeSerializer
    roles = INVENTORY_ROLES


# --- patients -----------------------------------------------------------------------------


# Roles that read every case, and roles that read only their own.
SEE_EVERY_CASE = frozenset({ADMIN, SCHEDULER, NURSE})
OWN_CASES_ONLY = frozenset({PHYSICIAN, TECH})


def own_case_legs(user: Any) -> QuerySet[Allocation] | None:
    """The one definition of "own case": None when the user's role reads every case, otherwise
    the legs that make a case theirs (possibly none).

    A case is the user's own while their staff record holds an *active* leg of it. A leg that
    was deactivated (moved to another physician by a reschedule, released after a late end,
    freed by a cancellation or a no-show) no longer counts, so whoever is moved off a case loses
    it, and its patient, at once. Every read and write rule below derives from this.
    """
    mine = roles_of(user)
    if mine & SEE_EVERY_CASE:
        return None
    member = getattr(user, "staff_member", None)
    if member is None or not mine & OWN_CASES_ONLY:
        return Allocation.objects.none()
    return Allocation.objects.filter(staff=member, is_active=True)


def visible_booking_rows(user: Any) -> QuerySet[Booking]:
    """Bookings the user may read or act on, without related rows (for checks and subqueries)."""
    legs = own_case_legs(user)
    bookings = Booking.objects.all()
    return bookings if legs is None else bookings.filter(pk__in=legs.values("booking_id"))


def visible_patients(user: Any) -> QuerySet[Patient]:
    """Patients of the bookings the user may read; any other patient is treated as unknown."""
    legs = own_case_legs(user)
    patients = Patient.objects.all()
    return patients if legs is None else patients.filter(pk__in=legs.values("booking__patient_id"))


class PatientViewSet(ReferenceViewSet):
    serializer_class = s.PatientSerializer
    filterset_fields = ["mrn"]
    roles = role_map(ALL_ROLES, {ADMIN, SCHEDULER})
    extra_error_statuses = {"destroy": (409,), "create": (409,), "partial_update": (409,)}

    def get_queryset(self) -> QuerySet[Patient]:
        return visible_patients(self.request.user).order_by("last_name", "first_name", "id")

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("context", self.get_serializer_context())
        if self.action in READ or self.request.method == "GET":
            kwargs["role"] = primary_role(self.request.user)
        return s.PatientSerializer(*args, **kwargs)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        ids = [row["id"] for row in response.data.get("results", [])]
        audit_read(actor=request.user, action="patient.list", object_type="patients.patient", object_ids=ids)
        return response

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().retrieve(request, *args, **kwargs)
        audit_read(
            actor=request.user,
            action="patient.read",
            object_type="patients.patient",
            object_ids=[response.data["id"]],
        )
        return response


class MedicationHoldViewSet(ReferenceViewSet):
    """A physician reads and writes the holds of their own patients only: a hold of anyone
    else's patient is a 404, and naming another patient in a write is refused as an unknown id."""

    serializer_class = s.MedicationHoldSerializer
    filterset_fields = ["patient"]
    roles = role_map({ADMIN, SCHEDULER, PHYSICIAN, NURSE}, {ADMIN, SCHEDULER, PHYSICIAN, NURSE})

    def get_queryset(self) -> QuerySet[MedicationHold]:
        return MedicationHold.objects.filter(patient__in=visible_patients(self.request.user)).order_by("id")

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("context", self.get_serializer_context())
        return s.MedicationHoldSerializer(*args, patients=visible_patients(self.request.user), **kwargs)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        patients = sorted({row["patient"] for row in response.data.get("results", [])})
        audit_read(
            actor=request.user, action="medication_hold.list", object_type="patients.patient", object_ids=patients
        )
        return response

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().retrieve(request, *args, **kwargs)
        audit_read(
            actor=request.user,
            action="medication_hold.read",
            object_type="patients.patient",
            object_ids=[response.data["patient"]],
            details={"medication_hold": response.data["id"]},
        )
        return response


# --- availability -------------------------------------------------------------------------


def _pins(data: dict[str, Any]) -> Pins:
    by_role = {
        role: data[name].pk
        for name, role in (
            ("c_arm", "c_arm"),
            ("rf_generator", "rf_generator"),
            ("rad_tech", "rad_tech"),
            ("device_rep", "device_rep"),
            ("recovery_bay", "recovery_bay"),
        )
        if data.get(name) is not None
    }
    if data.get("sedation_staff") is not None:
        by_role["sedation_nurse"] = by_role["anesthesia"] = data["sedation_staff"].pk
    return Pins(
        site_id=data["site"].pk if data.get("site") else None,
        room_id=data["room"].pk if data.get("room") else None,
        physician_id=data["physician"].pk if data.get("physician") else None,
        by_role=by_role,
    )


def slot_data(slot: Slot, zones: dict[int, ZoneInfo]) -> dict[str, Any]:
    zone = zones[slot.site_id]
    return {
        "start": local_iso(slot.start, zone),
        "end": local_iso(slot.end, zone),
        "site": slot.site_id,
        "legs": [
            {
                "role": leg.role,
                "resource": {"kind": leg.kind, "id": leg.resource_id, "name": leg.name},
                "start": local_iso(leg.start, zone),
                "end": local_iso(leg.end, zone),
            }
            for leg in slot.legs
        ],
    }


def site_zones() -> dict[int, ZoneInfo]:
    return {pk: ZoneInfo(tz) for pk, tz in Site.objects.values_list("id", "timezone")}


def audit_patient_query(request: Request, action: str, patient: Patient | None) -> None:
    if patient is not None:
        audit_read(actor=request.user, action=action, object_type="patients.patient", object_ids=[patient.pk])


class AvailabilityView(APIView):
    roles = {"get": {ADMIN, SCHEDULER, PHYSICIAN}}

    @extend_schema(parameters=[s.AvailabilityQuery], responses={200: s.AvailabilityResultSerializer})
    def get(self, request: Request) -> Response:
        query = s.AvailabilityQuery(data=request.query_params, patients=visible_patients(request.user))
        query.is_valid(raise_exception=True)
        data = query.validated_data
        slots = availability_search(
            SearchQuery(
                procedure_type=data["procedure_type"],
                date_from=data["from"],
                date_to=data["to"],
                levels=data["levels"],
                sedation=data.get("sedation"),
                pins=_pins(data),
                earliest=data.get("earliest"),
                latest=data.get("latest"),
                count=data["limit"],
                grid_minutes=data["grid"],
                patient=data.get("patient"),
            )
        )
        zones = site_zones()
        # The patient's holds and other cases shaped these slots: that is a read of their record.
        audit_patient_query(request, "availability.read", data.get("patient"))
        return Response({"results": [slot_data(slot, zones) for slot in slots]})


class ReasonsView(APIView):
    roles = {"get": {ADMIN, SCHEDULER, PHYSICIAN}}

    @extend_schema(parameters=[s.ReasonsQuery], responses={200: s.ReasonsResultSerializer})
    def get(self, request: Request) -> Response:
        query = s.ReasonsQuery(data=request.query_params, patients=visible_patients(request.user))
        query.is_valid(raise_exception=True)
        data = query.validated_data
        problems = explain_start(
            procedure_type=data["procedure_type"],
            starts_at=data["start"],
            levels=data["levels"],
            sedation=data.get("sedation"),
            pins=_pins(data),
            patient=data.get("patient"),
        )
        audit_patient_query(request, "availability.reasons_read", data.get("patient"))
        return Response({"feasible": not problems, "reasons": [p.as_dict() for p in problems]})


# --- bookings -----------------------------------------------------------------------------


class BookingFilter(SafeFilterSet):
    date_from = filters.DateFilter(method="filter_from", label="Starts on or after this date (UTC)")
    date_to = filters.DateFilter(method="filter_to", label="Starts on or before this date (UTC)")
    physician = IdFilter(method="filter_physician")
    room = IdFilter(method="filter_room")
    status = filters.ChoiceFilter(field_name="status", choices=BookingStatus.choices)
    site = IdFilter(field_name="site_id")
    patient = IdFilter(field_name="patient_id")

    class Meta:
        model = Booking
        fields: list[str] = []

    def filter_from(self, queryset: QuerySet[Booking], name: str, value: date) -> QuerySet[Booking]:
        return queryset.filter(starts_at__date__gte=value)

    def filter_to(self, queryset: QuerySet[Booking], name: str, value: date) -> QuerySet[Booking]:
        return queryset.filter(starts_at__date__lte=value)

    def filter_physician(self, queryset: QuerySet[Booking], name: str, value: int) -> QuerySet[Booking]:
        return queryset.filter(pk__in=Allocation.objects.filter(role="physician", staff_id=value).values("booking_id"))

    def filter_room(self, queryset: QuerySet[Booking], name: str, value: int) -> QuerySet[Booking]:
        return queryset.filter(pk__in=Allocation.objects.filter(role="room", room_id=value).values("booking_id"))


def bookings_with_legs() -> QuerySet[Booking]:
    return Booking.objects.select_related("patient", "procedure_type", "site").prefetch_related(
        Prefetch("legs", queryset=Allocation.objects.select_related("room", "equipment", "staff", "bay", "patient"))
    )


def visible_bookings(user: Any) -> QuerySet[Booking]:
    legs = own_case_legs(user)
    bookings = bookings_with_legs()
    return bookings if legs is None else bookings.filter(pk__in=legs.values("booking_id"))


def resource_choice(data: dict[str, Any]) -> ResourceChoice:
    return ResourceChoice(
        room=data.get("room"),
        c_arm=data.get("c_arm"),
        rf_generator=data.get("rf_generator"),
        physician=data.get("physician"),
        rad_tech=data.get("rad_tech"),
        sedation_staff=data.get("sedation_staff"),
        device_rep=data.get("device_rep"),
        recovery_bay=data.get("recovery_bay"),
    )


def alternatives_after(data: dict[str, Any], start: datetime, *, count: int = 3) -> list[dict[str, Any]]:
    """The next feasible starts after a refused one, for the same case and pins."""
    slots = availability_search(
        SearchQuery(
            procedure_type=data["procedure_type"],
            date_from=start.date(),
            date_to=start.date() + timedelta(days=27),
            levels=data.get("levels", 1),
            sedation=data.get("sedation"),
            pins=_pins(data),
            count=count,
            patient=data.get("patient"),
            not_before=start,
        )
    )
    zones = site_zones()
    return [slot_data(slot, zones) for slot in slots]


class BookingViewSet(viewsets.GenericViewSet):
    serializer_class = s.BookingSerializer
    filterset_class = BookingFilter
    roles = {
        "list": set(ALL_ROLES),
        "retrieve": set(ALL_ROLES),
        "create": {ADMIN, SCHEDULER},
        "reschedule": {ADMIN, SCHEDULER},
        "cancel": {ADMIN, SCHEDULER},
    }
    extra_error_statuses = {"create": (409, 422), "reschedule": (409, 422), "cancel": (409, 422)}

    def get_queryset(self) -> QuerySet[Booking]:
        return visible_bookings(self.request.user).order_by("starts_at", "id")

    def _render(self, booking: Booking) -> dict[str, Any]:
        return s.booking_data(booking, primary_role(self.request.user))

    def _fresh(self, booking: Booking) -> Booking:
        return bookings_with_legs().get(pk=booking.pk)

    def list(self, request: Request) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        rows = [self._render(b) for b in (page if page is not None else queryset)]
        audit_read(
            actor=request.user,
            action="booking.list",
            object_type="patients.patient",
            object_ids=[row["patient"]["id"] for row in rows],
        )
        return self.get_paginated_response(rows) if page is not None else Response(rows)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        booking = self.get_object()
        audit_read(
            actor=request.user,
            action="booking.read",
            object_type="patients.patient",
            object_ids=[booking.patient_id],
            details={"booking": booking.pk},
        )
        return Response(self._render(booking))

    @extend_schema(request=s.BookingCreateInput, responses={201: s.BookingSerializer})
    def create(self, request: Request) -> HttpResponseBase:
        return self._once(request, "bookings.create", None, lambda: self._create(request))

    def _create(self, request: Request) -> Response:
        data_in = s.BookingCreateInput(data=request.data, patients=visible_patients(request.user))
        data_in.is_valid(raise_exception=True)
        data = data_in.validated_data
        try:
            booking = booking_create(
                actor=request.user,
                patient=data["patient"],
                procedure_type=data["procedure_type"],
                starts_at=data["start"],
                levels=data["levels"],
                sedation=data.get("sedation"),
                resources=resource_choice(data),
                site_id=data["site"].pk if data.get("site") else None,
                status=BookingStatus.HOLD if data["hold"] else BookingStatus.SCHEDULED,
            )
        except SlotUnavailable as exc:
            exc.alternatives = alternatives_after(data, data["start"])  # type: ignore[attr-defined]
            raise
        # The service hands back the booking with everything it wrote loaded.
        return Response(self._render(booking), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.RescheduleInput, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"])
    def reschedule(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        return self._once(request, f"bookings.{pk}.reschedule", pk, lambda: self._reschedule(request))

    def _reschedule(self, request: Request) -> Response:
        booking = self.get_object()
        data_in = s.RescheduleInput(data=request.data)
        data_in.is_valid(raise_exception=True)
        data = data_in.validated_data
        pinned = resource_choice(data)
        try:
            moved = booking_reschedule(actor=request.user, booking=booking, starts_at=data["start"], resources=pinned)
        except SlotUnavailable as exc:
            context = {
                "procedure_type": booking.procedure_type,
                "levels": booking.levels,
                "sedation": booking.sedation,
                "patient": booking.patient,
                **data,
            }
            exc.alternatives = alternatives_after(context, data["start"])  # type: ignore[attr-defined]
            raise
        return Response(self._render(self._fresh(moved)))

    @extend_schema(request=s.CancelInput, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        return self._once(request, f"bookings.{pk}.cancel", pk, lambda: self._cancel(request))

    def _cancel(self, request: Request) -> Response:
        booking = self.get_object()
        data_in = s.CancelInput(data=request.data)
        data_in.is_valid(raise_exception=True)
        cancelled = booking_cancel(
            actor=request.user,
            booking=booking,
            reason=data_in.validated_data["reason"],
            note=data_in.validated_data["note"],
        )
        return Response(self._render(self._fresh(cancelled)))

    def _error(self, exc: Exception) -> Response | None:
        return exception_handler(exc, {"view": self, "request": self.request})

    def _once(self, request: Request, scope: str, pk: str | None, handler: Callable[[], Response]) -> HttpResponseBase:
        return run_idempotent(
            request, scope, handler, self._error, visible=lambda: visible_booking_rows(request.user), booking_id=pk
        )


# --- daily list ---------------------------------------------------------------------------


def _query_date(request: Request, name: str) -> date:
    raw = request.query_params.get(name)
    field = ClinicDateField()
    try:
        return field.to_internal_value(raw) if raw else _missing(name)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({name: exc.detail}) from exc


def _missing(name: str) -> date:
    raise serializers.ValidationError({name: ["This query parameter is required (YYYY-MM-DD)."]})


class DailyListQuery(serializers.Serializer):
    physician = IdField(queryset=StaffMember.objects.filter(role="physician"))
    date = ClinicDateField()


class DailyListView(APIView):
    roles = {"get": {ADMIN, SCHEDULER, PHYSICIAN, NURSE, TECH}}

    @extend_schema(
        parameters=[DailyListQuery],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The physician's cases in order")},
    )
    def get(self, request: Request) -> Response:
        query = DailyListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        physician: StaffMember = query.validated_data["physician"]
        day: date = query.validated_data["date"]
        mine = roles_of(request.user)
        if not mine & {ADMIN, SCHEDULER, NURSE, TECH} and getattr(request.user, "staff_member", None) != physician:
            return problem(403, "permission_denied", "Physicians see their own daily list.")
        role = primary_role(request.user)
        cases = self._cases(request, physician, day)
        readiness = readiness_summaries(cases)
        rows = [self._row(b, role, readiness[b.pk].as_dict()) for b in cases]
        audit_read(
            actor=request.user,
            action="daily_list.read",
            object_type="patients.patient",
            object_ids=[b.patient_id for b in cases],
            details={"physician": physician.pk, "date": day.isoformat()},
        )
        return Response(
            {"physician": {"id": physician.pk, "name": str(physician)}, "date": day.isoformat(), "cases": rows}
        )

    def _cases(self, request: Request, physician: StaffMember, day: date) -> list[Booking]:
        """The physician's cases that day which the caller may see: a tech reading a physician's
        list gets the cases they work on, not every patient of that physician."""
        # The day is local to each case's site; a day-wide UTC window around it is narrowed below.
        start = datetime.combine(day, time(0), tzinfo=ZoneInfo("UTC")) - timedelta(days=1)
        bookings = (
            visible_bookings(request.user)
            .filter(
                pk__in=Allocation.objects.filter(role="physician", staff=physician, is_active=True).values(
                    "booking_id"
                ),
                starts_at__gte=start,
                starts_at__lt=start + timedelta(days=3),
            )
            .order_by("starts_at", "id")
        )
        return [b for b in bookings if b.starts_at.astimezone(ZoneInfo(b.site.timezone)).date() == day]

    def _row(self, booking: Booking, role: str | None, readiness: dict[str, Any]) -> dict[str, Any]:
        zone = ZoneInfo(booking.site.timezone)
        legs = {leg.role: leg for leg in booking.legs.all() if leg.is_active}
        patient = s.patient_data(booking.patient, role)

        def name(role_name: str) -> str | None:
            leg = legs.get(role_name)
            return str(getattr(leg, leg.resource_column)) if leg else None

        return {
            "booking": booking.pk,
            "start": local_iso(booking.starts_at, zone),
            "arrival": local_iso(booking.arrival_at, zone),
            "end": local_iso(booking.ends_at, zone),
            "status": booking.status,
            "procedure_type": booking.procedure_type.code,
            "procedure": booking.procedure_type.name,
            "levels": booking.levels,
            "sedation": booking.sedation,
            "room": name("room"),
            "c_arm": name("c_arm"),
            "rad_tech": name("rad_tech"),
            "sedation_staff": name("sedation_nurse") or name("anesthesia"),
            "recovery_bay": name("recovery_bay"),
            "readiness": readiness,
            "patient": patient,
            "escort": {"name": patient.get("escort_name"), "phone": patient.get("escort_phone")}
            if "escort_name" in patient
            else None,
            "allergies": patient.get("allergies", ""),
        }
