"""The day of the procedure: status transitions, the readiness checklist, lab results, imaging
studies and alerts. Each checks its input's shape, calls one service, and renders the case for
the caller's role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpResponseBase
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api.idempotency import run_idempotent
from api.serializers import bookings as s
from api.serializers.workflow import (
    AlertSerializer,
    ChecklistInput,
    ChecklistSerializer,
    DischargeInput,
    EndProcedureInput,
    ImagingStudyInput,
    ImagingStudySerializer,
    LabResultInput,
    LabResultSerializer,
    ReadyInput,
    StepTimeInput,
    checklist_data,
)
from api.views.common import ProblemRendering, audit_patients_read
from core.roles import PATIENTS_READ, primary_role
from outbox.models import Alert
from outbox.services import alert_resolve
from patients.models import ImagingStudy, LabResult
from patients.services import imaging_study_record, lab_result_record
from procedure_day.readiness import evaluate_with, load_readiness
from procedure_day.services.checklist import checklist_update
from procedure_day.services.corrections import step_time_correct
from procedure_day.services.late import booking_end_procedure
from procedure_day.services.transitions import (
    booking_check_in,
    booking_discharge,
    booking_mark_ready,
    booking_mark_ready_for_discharge,
    booking_no_show,
    booking_start_procedure,
    booking_start_recovery,
)
from scheduling import policy
from scheduling.models import Booking
from scheduling.selectors import booking_rows_visible_to, bookings_visible_to, bookings_with_legs, patients_visible_to

# --- the case's day -------------------------------------------------------------------------

TRANSITIONS = (
    "check_in",
    "ready",
    "start_procedure",
    "end_procedure",
    "start_recovery",
    "ready_for_discharge",
    "discharge",
    "no_show",
)


class BookingWorkflowViewSet(ProblemRendering, viewsets.GenericViewSet):
    """Actions on a case the caller can see (others are 404). Transitions answer with the case;
    an illegal one is a 409 naming the status and the statuses it may start from."""

    # Steps that take an Idempotency-Key (documented in the schema).
    idempotent_actions = frozenset(
        {
            "check_in",
            "ready",
            "start_procedure",
            "end_procedure",
            "start_recovery",
            "ready_for_discharge",
            "discharge",
            "no_show",
            "correct_time",
        }
    )
    serializer_class = s.BookingSerializer
    filter_backends: list[Any] = []
    pagination_class = None
    roles = {
        **{name: set(roles) for name, roles in policy.STEP_ROLES.items()},
        "checklist_update": set(policy.STEP_ROLES["checklist"]),
        "correct_time": set(policy.STEP_TIME_CORRECTORS),
    }
    extra_error_statuses = {
        **{name: (409, 422) for name in TRANSITIONS},
        "checklist_update": (409, 422),
        "correct_time": (409, 422),
    }

    def get_queryset(self) -> QuerySet[Booking]:
        return bookings_visible_to(self.request.user).order_by("starts_at", "id")

    def _render(self, booking: Booking) -> Response:
        fresh = bookings_with_legs().get(pk=booking.pk)
        return Response(s.booking_data(fresh, primary_role(self.request.user)))

    def _once(self, request: Request, pk: str | None, name: str, handler: Callable[[], Response]) -> HttpResponseBase:
        return run_idempotent(
            request,
            f"bookings.{pk}.{name}",
            handler,
            self.render_error,
            visible=lambda: booking_rows_visible_to(request.user),
            booking_id=pk,
        )

    @extend_schema(request=None, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"], url_path="check-in")
    def check_in(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """Check the patient in at the front desk (from scheduled)."""
        return self._once(
            request,
            pk,
            "check-in",
            lambda: self._render(booking_check_in(actor=request.user, booking=self.get_object())),
        )

    @extend_schema(request=ReadyInput, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"])
    def ready(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """Mark the patient ready for the room once the readiness checklist passes (409
        `readiness_not_met` listing what is outstanding); a physician may override with a reason."""
        return self._once(request, pk, "ready", lambda: self._ready(request))

    def _ready(self, request: Request) -> Response:
        booking = self.get_object()
        data = ReadyInput(data=request.data)
        data.is_valid(raise_exception=True)
        ready = booking_mark_ready(
            actor=request.user,
            booking=booking,
            override_reason=data.validated_data.get("override_reason"),
        )
        return self._render(ready)

    @extend_schema(request=None, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"], url_path="start-procedure")
    def start_procedure(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """The procedure starts (from ready): the room, C-arm and team are in use."""
        return self._once(
            request,
            pk,
            "start-procedure",
            lambda: self._render(booking_start_procedure(actor=request.user, booking=self.get_object())),
        )

    @extend_schema(request=EndProcedureInput, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"], url_path="end-procedure")
    def end_procedure(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """The procedure ends (now, or at `ended_at`); an early or late end moves the case's later
        legs."""
        return self._once(request, pk, "end-procedure", lambda: self._end_procedure(request))

    def _end_procedure(self, request: Request) -> Response:
        booking = self.get_object()
        data = EndProcedureInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = booking_end_procedure(
            actor=request.user, booking=booking, ended_at=data.validated_data.get("ended_at")
        )
        return self._render(result.booking)

    @extend_schema(request=None, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"], url_path="start-recovery")
    def start_recovery(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """The patient arrives in the recovery bay; the minimum flat time starts."""
        return self._once(
            request,
            pk,
            "start-recovery",
            lambda: self._render(booking_start_recovery(actor=request.user, booking=self.get_object())),
        )

    @extend_schema(request=None, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"], url_path="ready-for-discharge")
    def ready_for_discharge(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """Recovery is done and the patient may go once their escort is present."""
        return self._once(
            request,
            pk,
            "ready-for-discharge",
            lambda: self._render(booking_mark_ready_for_discharge(actor=request.user, booking=self.get_object())),
        )

    @extend_schema(request=DischargeInput, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"])
    def discharge(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """The patient leaves with their escort; the recovery bay is free."""
        return self._once(request, pk, "discharge", lambda: self._discharge(request))

    def _discharge(self, request: Request) -> Response:
        booking = self.get_object()
        data = DischargeInput(data=request.data)
        data.is_valid(raise_exception=True)
        discharged = booking_discharge(
            actor=request.user, booking=booking, escort_present=data.validated_data["escort_present"]
        )
        return self._render(discharged)

    @extend_schema(request=None, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"], url_path="no-show")
    def no_show(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """The patient did not come: every leg the case holds is let go."""
        return self._once(
            request,
            pk,
            "no-show",
            lambda: self._render(booking_no_show(actor=request.user, booking=self.get_object())),
        )

    @extend_schema(request=StepTimeInput, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"], url_path="correct-time")
    def correct_time(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        """Correct the recorded time of a step afterwards, with a reason (audited)."""
        return self._once(request, pk, "correct-time", lambda: self._correct_time(request))

    def _correct_time(self, request: Request) -> Response:
        booking = self.get_object()
        data = StepTimeInput(data=request.data)
        data.is_valid(raise_exception=True)
        corrected = step_time_correct(actor=request.user, booking=booking, **data.validated_data)
        return self._render(corrected)

    # The checklist --------------------------------------------------------------------------

    def _checklist(self, booking: Booking) -> Response:
        inputs = load_readiness(booking)
        items = evaluate_with(booking, inputs, now=timezone.now())
        return Response(checklist_data(booking, inputs.checklist, items))

    @extend_schema(responses={200: ChecklistSerializer})
    @action(detail=True, methods=["get"])
    def checklist(self, request: Request, pk: str | None = None) -> Response:
        """Read the case's readiness checklist: consent, escort, fasting, anticoagulant hold,
        pregnancy screen, labs, imaging; each with its status."""
        booking = self.get_object()
        audit_patients_read(request, "checklist.read", [booking.patient_id], booking=booking.pk)
        return self._checklist(booking)

    @extend_schema(request=ChecklistInput, responses={200: ChecklistSerializer})
    @checklist.mapping.patch
    def checklist_update(self, request: Request, pk: str | None = None) -> Response:
        """Record items of the readiness checklist (consent signed, escort confirmed, last solids
        and clears, allergies reviewed, pregnancy screen); the others keep their values."""
        booking = self.get_object()
        data = ChecklistInput(data=request.data)
        data.is_valid(raise_exception=True)
        checklist_update(actor=request.user, booking=booking, **data.validated_data)
        return self._checklist(booking)


# --- records the checklist reads ------------------------------------------------------------


class PatientRecordViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """List and read (for patients the caller can see; the read is audited), and create via a
    service."""

    filterset_fields = ["patient"]
    roles = {
        "list": set(policy.CLINICAL_RECORDERS),
        "retrieve": set(policy.CLINICAL_RECORDERS),
        "create": set(policy.CLINICAL_RECORDERS),
    }
    scopes = {"list": PATIENTS_READ, "retrieve": PATIENTS_READ}
    extra_error_statuses = {"create": (422,)}
    read_action = ""

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        patients = sorted({row["patient"] for row in response.data.get("results", [])})
        audit_patients_read(request, self.read_action, patients)
        return response

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().retrieve(request, *args, **kwargs)
        audit_patients_read(request, self.read_action.replace(".list", ".read"), [response.data["patient"]])
        return response


class LabResultViewSet(PatientRecordViewSet):
    serializer_class = LabResultSerializer
    filterset_fields = ["patient", "test"]
    read_action = "lab_result.list"

    def get_queryset(self) -> QuerySet[LabResult]:
        return LabResult.objects.filter(patient__in=patients_visible_to(self.request.user)).order_by("-taken_at", "-id")

    @extend_schema(request=LabResultInput, responses={201: LabResultSerializer})
    def create(self, request: Request) -> Response:
        data = LabResultInput(data=request.data, patients=patients_visible_to(request.user))
        data.is_valid(raise_exception=True)
        lab = lab_result_record(actor=request.user, **data.validated_data)
        return Response(LabResultSerializer(lab).data, status=status.HTTP_201_CREATED)


class ImagingStudyViewSet(PatientRecordViewSet):
    serializer_class = ImagingStudySerializer
    filterset_fields = ["patient", "modality"]
    read_action = "imaging_study.list"

    def get_queryset(self) -> QuerySet[ImagingStudy]:
        return ImagingStudy.objects.filter(patient__in=patients_visible_to(self.request.user)).order_by(
            "-performed_on", "-id"
        )

    @extend_schema(request=ImagingStudyInput, responses={201: ImagingStudySerializer})
    def create(self, request: Request) -> Response:
        data = ImagingStudyInput(data=request.data, patients=patients_visible_to(request.user))
        data.is_valid(raise_exception=True)
        study = imaging_study_record(actor=request.user, **data.validated_data)
        return Response(ImagingStudySerializer(study).data, status=status.HTTP_201_CREATED)


# --- alerts ---------------------------------------------------------------------------------


class AlertViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Unresolved alerts, newest first; the charge nurse or a scheduler resolves them."""

    serializer_class = AlertSerializer
    filterset_fields = ["site", "kind", "booking"]
    roles = {"list": set(policy.CLINICAL_RECORDERS), "resolve": set(policy.FRONT_DESK)}
    extra_error_statuses = {"resolve": (409,)}

    def get_queryset(self) -> QuerySet[Alert]:
        alerts = Alert.objects.all()
        if self.action == "list":
            alerts = alerts.filter(resolved_at__isnull=True)
        user = self.request.user
        if not policy.may(user, policy.FRONT_DESK):
            # A physician sees the site-wide alerts and those about their own cases.
            alerts = alerts.filter(Q(booking__isnull=True) | Q(booking__in=booking_rows_visible_to(user).values("pk")))
        return alerts.order_by("-created_at", "-id")

    @extend_schema(request=None, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        resolved = alert_resolve(actor=request.user, alert=self.get_object())
        return Response(AlertSerializer(resolved).data)
