"""Bookings: list, read, book (or hold), confirm a hold, reschedule, cancel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpResponseBase
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api.filters import ClinicDateFilter, IdFilter, SafeFilterSet
from api.idempotency import run_idempotent
from api.pagination import SyncPagination
from api.serializers import bookings as s
from api.sync import UpdatedSinceFilter
from api.views.availability import case_request
from api.views.common import ProblemRendering, audit_patients_read, site_zones
from core.dates import add_days
from core.errors import SlotUnavailable
from core.roles import primary_role
from scheduling import policy
from scheduling.legroles import LegRole
from scheduling.models import Allocation, Booking, BookingStatus
from scheduling.request import CaseRequest
from scheduling.selectors import (
    alternatives_after,
    booking_rows_visible_to,
    bookings_visible_to,
    bookings_with_legs,
    patients_bookable_by,
)
from scheduling.services.bookings import booking_cancel, booking_create, booking_reschedule, hold_confirm


class BookingFilter(SafeFilterSet):
    date_from = ClinicDateFilter(method="filter_from", label="Starts on or after this date (the site's own calendar)")
    date_to = ClinicDateFilter(method="filter_to", label="Starts on or before this date (the site's own calendar)")
    physician = IdFilter(method="filter_physician")
    room = IdFilter(method="filter_room")
    status = filters.ChoiceFilter(field_name="status", choices=BookingStatus.choices)
    site = IdFilter(field_name="site_id")
    patient = IdFilter(field_name="patient_id")
    updated_since = UpdatedSinceFilter()

    ranges = (("date_from", "date_to"),)

    class Meta:
        model = Booking
        fields: list[str] = []

    def filter_from(self, queryset: QuerySet[Booking], name: str, value: date) -> QuerySet[Booking]:
        return queryset.filter(site_midnights(value, "starts_at__gte"))

    def filter_to(self, queryset: QuerySet[Booking], name: str, value: date) -> QuerySet[Booking]:
        return queryset.filter(site_midnights(add_days(value, 1), "starts_at__lt"))

    def filter_physician(self, queryset: QuerySet[Booking], name: str, value: int) -> QuerySet[Booking]:
        legs = Allocation.objects.filter(role=LegRole.PHYSICIAN, staff_id=value)
        return queryset.filter(pk__in=legs.values("booking_id"))

    def filter_room(self, queryset: QuerySet[Booking], name: str, value: int) -> QuerySet[Booking]:
        return queryset.filter(pk__in=Allocation.objects.filter(role=LegRole.ROOM, room_id=value).values("booking_id"))


def site_midnights(day: date, lookup: str) -> Q:
    """``lookup`` against the start of ``day`` on each site's own calendar: a case at 19:00 in
    Chicago on the 11th is on the 11th, though it is the 12th in UTC."""
    condition = Q(pk__in=[])
    for site, zone in site_zones().items():
        condition |= Q(site_id=site, **{lookup: datetime.combine(day, time.min, tzinfo=zone)})
    return condition


def alternatives(request: CaseRequest, start: datetime) -> list[dict[str, Any]]:
    zones = site_zones()
    return [s.slot_data(slot, zones) for slot in alternatives_after(request, start)]


class BookingViewSet(ProblemRendering, viewsets.GenericViewSet):
    serializer_class = s.BookingSerializer
    filterset_class = BookingFilter
    pagination_class = SyncPagination
    # Writes that take an Idempotency-Key (documented in the schema).
    idempotent_actions = frozenset({"create", "confirm", "reschedule", "cancel"})
    roles = {
        "list": set(policy.EVERYONE),
        "retrieve": set(policy.EVERYONE),
        "create": set(policy.CASE_BOOKERS),
        "reschedule": set(policy.CASE_BOOKERS),
        "cancel": set(policy.CANCELLERS),
        "confirm": set(policy.CASE_BOOKERS),
    }
    extra_error_statuses = {
        "create": (403, 409, 422),
        "reschedule": (403, 409, 422),
        "cancel": (409, 422),
        "confirm": (409, 422),
    }

    def get_queryset(self) -> QuerySet[Booking]:
        return bookings_visible_to(self.request.user).order_by("starts_at", "id")

    def _render(self, booking: Booking) -> dict[str, Any]:
        return s.booking_data(booking, primary_role(self.request.user))

    def _fresh(self, booking: Booking) -> Booking:
        return bookings_with_legs().get(pk=booking.pk)

    def list(self, request: Request) -> Response:
        """List the cases you may see, in order of start, a page at a time. Filter by `site`,
        `date_from`/`date_to` (the site's calendar), `status`, `physician`, `room` or `patient`; or
        walk what changed with `updated_since` and the `next` cursor (see the sync section of the
        API guide)."""
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        rows = [self._render(b) for b in (page if page is not None else queryset)]
        audit_patients_read(request, "booking.list", [row["patient"]["id"] for row in rows])
        return self.get_paginated_response(rows) if page is not None else Response(rows)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        """Read one case: its status, times (with the site's offset), every leg it holds and the
        order; a physician sees only their own cases, and the patient's fields your role may see."""
        booking = self.get_object()
        audit_patients_read(request, "booking.read", [booking.patient_id], booking=booking.pk)
        return Response(self._render(booking))

    @extend_schema(
        request=s.BookingCreateInput,
        responses={201: s.BookingSerializer},
        examples=[
            OpenApiExample(
                "A two-level kyphoplasty from a referral",
                request_only=True,
                value={
                    "patient": 12,
                    "procedure_type": "KP",
                    "level_names": ["T12", "L1"],
                    "side": "bilateral",
                    "indication_code": "M80.08XA",
                    "referring_provider": "Dr. Ortiz",
                    "external_order_id": "ORD-48213",
                    "sedation": "mac",
                    "start": "2027-01-13T09:00:00-06:00",
                },
            ),
            OpenApiExample(
                "Hold a start for ten minutes while the patient agrees",
                request_only=True,
                value={"patient": 12, "procedure_type": "VP", "start": "2027-01-13T13:00:00-06:00", "hold": True},
            ),
        ],
    )
    def create(self, request: Request) -> HttpResponseBase:
        """Book a case (or `hold` it for 10 minutes) from a referral: the patient, the procedure and
        its levels, a start, and any resources you pin; the rulebook picks the rest. 201 with the
        case and its legs; 409 `slot_unavailable` with the clashes and nearby free starts; 422
        `booking_invalid` naming each rule broken. Send an `Idempotency-Key` to retry safely."""
        return self._once(request, "bookings.create", None, lambda: self._create(request))

    def _create(self, request: Request) -> Response:
        data_in = s.BookingCreateInput(data=request.data, patients=patients_bookable_by(request.user))
        data_in.is_valid(raise_exception=True)
        data = data_in.validated_data
        case = case_request(data)
        try:
            booking = booking_create(
                actor=request.user,
                request=case,
                starts_at=data["start"],
                status=BookingStatus.HOLD if data["hold"] else BookingStatus.SCHEDULED,
                anticoagulant_override_reason=data.get("anticoagulant_override_reason"),
                order=data["order"],
            )
        except SlotUnavailable as exc:
            exc.alternatives = alternatives(case, data["start"])  # type: ignore[attr-defined]
            raise
        # The service hands back the booking with everything it wrote loaded.
        return Response(self._render(booking), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """Turn a hold into a scheduled case; 409 if it has expired or is not a hold, 422 if a
        rule now refuses it."""
        return self._once(request, f"bookings.{pk}.confirm", pk, lambda: self._confirm(request))

    def _confirm(self, request: Request) -> Response:
        confirmed = hold_confirm(actor=request.user, booking=self.get_object())
        return Response(self._render(self._fresh(confirmed)))

    @extend_schema(
        request=s.RescheduleInput,
        responses={200: s.BookingSerializer},
        examples=[
            OpenApiExample(
                "Move to the afternoon, keeping the physician",
                request_only=True,
                value={"start": "2027-01-13T14:30:00-06:00", "physician": 3},
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def reschedule(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """Move a case to another start (and optionally other pins), keeping what it holds where the
        rules allow; all or nothing. 409 with the clashes and alternatives if the new time is taken."""
        return self._once(request, f"bookings.{pk}.reschedule", pk, lambda: self._reschedule(request))

    def _reschedule(self, request: Request) -> Response:
        booking = self.get_object()
        data_in = s.RescheduleInput(data=request.data)
        data_in.is_valid(raise_exception=True)
        data = data_in.validated_data
        pins = s.pins_from(data)
        try:
            moved = booking_reschedule(
                actor=request.user,
                booking=booking,
                starts_at=data["start"],
                pins=pins,
                anticoagulant_override_reason=data.get("anticoagulant_override_reason"),
            )
        except SlotUnavailable as exc:
            case = CaseRequest(
                procedure_type=booking.procedure_type,
                levels=booking.levels,
                sedation=booking.sedation,
                patient=booking.patient,
                site_id=data.get("site") or (None if "room" in pins else booking.site_id),
                pins=pins,
            )
            exc.alternatives = alternatives(case, data["start"])  # type: ignore[attr-defined]
            raise
        return Response(self._render(self._fresh(moved)))

    @extend_schema(
        request=s.CancelInput,
        responses={200: s.BookingSerializer},
        examples=[
            OpenApiExample(
                "No one to drive the patient home",
                request_only=True,
                value={"reason": "no_driver", "note": "Daughter away; will call to rebook."},
            )
        ],
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """Cancel a case with a reason: every leg it holds is let go at once and its reminders are
        withdrawn. 409 if it is already cancelled, under way or done."""
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

    def _once(self, request: Request, scope: str, pk: str | None, handler: Callable[[], Response]) -> HttpResponseBase:
        return run_idempotent(
            request,
            scope,
            handler,
            self.render_error,
            visible=lambda: booking_rows_visible_to(request.user),
            booking_id=pk,
        )
