"""Confirming a hold: POST bookings/{id}/confirm/. Holds are made by POST bookings/ with
``"hold": true``; an unconfirmed hold expires by itself."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpResponseBase
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api import serializers as s
from api.errors import exception_handler
from api.idempotency import run_idempotent
from api.views import bookings_with_legs, visible_booking_rows, visible_bookings
from core.roles import ADMIN, SCHEDULER, primary_role
from scheduling.models import Booking
from scheduling.services.holds import hold_confirm


class HoldViewSet(viewsets.GenericViewSet):
    serializer_class = s.BookingSerializer
    roles = {"confirm": {ADMIN, SCHEDULER}}
    # 422: an Idempotency-Key reused for another request.
    extra_error_statuses = {"confirm": (409, 422)}

    def get_queryset(self) -> QuerySet[Booking]:
        return visible_bookings(self.request.user).order_by("starts_at", "id")

    @extend_schema(request=None, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """Turn a hold into a scheduled case; 409 if it has expired or is not a hold."""
        return run_idempotent(
            request,
            f"bookings.{pk}.confirm",
            lambda: self._confirm(request),
            self._error,
            visible=lambda: visible_booking_rows(request.user),
            booking_id=pk,
        )

    def _confirm(self, request: Request) -> Response:
        confirmed = hold_confirm(actor=request.user, booking=self.get_object())
        booking = bookings_with_legs().get(pk=confirmed.pk)
        return Response(s.booking_data(booking, primary_role(request.user)))

    def _error(self, exc: Exception) -> Response | None:
        return exception_handler(exc, {"view": self, "request": self.request})
