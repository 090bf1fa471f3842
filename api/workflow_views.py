"""REST views for the day of the procedure: status transitions, the readiness checklist, lab
results, imaging studies and alerts. Each checks its input's shape, calls one service, and
renders the case for the caller's role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet
from django.http import HttpResponseBase
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api import serializers as s
from api.errors import exception_handler
from api.fields import AwareDateTimeField, ClinicDateField, IdField, local_iso
from api.idempotency import run_idempotent
from api.views import bookings_with_legs, visible_booking_rows, visible_bookings, visible_patients
from core.audit import audit_read
from core.roles import ADMIN, NURSE, PHYSICIAN, SCHEDULER, primary_role, roles_of
from outbox.models import Alert
from outbox.services import alert_resolve
from patients.models import ImagingModality, ImagingStudy, LabResult, LabTest, Patient
from patients.services import imaging_study_record, lab_result_record
from procedure_day.models import CaseChecklist, PregnancyStatus
from procedure_day.readiness import ChecklistItem, evaluate_with, load_readiness, readiness_passes
from procedure_day.services.checklist import checklist_update
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
from scheduling.models import Booking

FRONT_DESK = {ADMIN, SCHEDULER, NURSE}
PROCEDURE_TEAM = {ADMIN, PHYSICIAN, NURSE}
CLINICAL_RECORDS = {ADMIN, SCHEDULER, PHYSICIAN, NURSE}
# The readiness gate is a clinical judgement: only these roles may override it.
OVERRIDERS = {ADMIN, PHYSICIAN}

# --- serializers ----------------------------------------------------------------------------


class ReadyInput(serializers.Serializer):
    override_reason = serializers.CharField(
        max_length=255,
        required=False,
        help_text="Needed, from a physician or an administrator, when the checklist does not pass.",
    )


class EndProcedureInput(serializers.Serializer):
    ended_at = AwareDateTimeField(required=False, help_text="When the procedure ended; now if left out.")


class DischargeInput(serializers.Serializer):
    escort_present = serializers.BooleanField(
        required=False, default=False, help_text="The escort is here to take the patient home."
    )


class ChecklistInput(serializers.Serializer):
    consent_signed_at = AwareDateTimeField(required=False, allow_null=True)
    escort_confirmed = serializers.BooleanField(required=False)
    last_solids_at = AwareDateTimeField(required=False, allow_null=True)
    last_clears_at = AwareDateTimeField(required=False, allow_null=True)
    pregnancy_status = serializers.ChoiceField(PregnancyStatus.choices, required=False)
    allergies_reviewed = serializers.BooleanField(required=False)


class ChecklistItemSerializer(serializers.Serializer):
    code = serializers.CharField()
    status = serializers.ChoiceField(["ok", "missing", "failed", "not_required"])
    detail = serializers.CharField(allow_blank=True)


# "label" would shadow Field.label as an attribute, so the field is added by name.
ChecklistItemSerializer._declared_fields["label"] = serializers.CharField()


class ChecklistSerializer(serializers.Serializer):
    """The recorded answers (times in the site's zone), the evaluated items, and the verdict."""

    booking = serializers.IntegerField()
    consent_signed_at = serializers.CharField(allow_null=True)
    escort_confirmed = serializers.BooleanField()
    escort_present_at = serializers.CharField(allow_null=True)
    last_solids_at = serializers.CharField(allow_null=True)
    last_clears_at = serializers.CharField(allow_null=True)
    pregnancy_status = serializers.CharField()
    allergies_reviewed = serializers.BooleanField()
    override_reason = serializers.CharField(allow_blank=True)
    override_by = serializers.CharField(allow_null=True)
    override_at = serializers.CharField(allow_null=True)
    passes = serializers.BooleanField()
    items = ChecklistItemSerializer(many=True)


class VisiblePatientInput(s.PatientScoped):
    """A patient id the caller may see; another is refused as if it did not exist."""

    patient = IdField(queryset=Patient.objects.none())


class LabResultInput(VisiblePatientInput):
    test = serializers.ChoiceField(LabTest.choices)
    value = serializers.DecimalField(max_digits=7, decimal_places=2, min_value=0)
    taken_at = AwareDateTimeField()


class LabResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = LabResult
        fields = ["id", "patient", "test", "value", "taken_at"]


class ImagingStudyInput(VisiblePatientInput):
    modality = serializers.ChoiceField(ImagingModality.choices)
    performed_on = ClinicDateField()


class ImagingStudySerializer(serializers.ModelSerializer):
    class Meta:
        model = ImagingStudy
        fields = ["id", "patient", "modality", "performed_on"]


class AlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = Alert
        fields = ["id", "site", "booking", "kind", "message", "created_at", "resolved_at"]


def checklist_data(booking: Booking, checklist: CaseChecklist | None, items: list[ChecklistItem]) -> dict[str, Any]:
    zone = ZoneInfo(booking.site.timezone)
    recorded = checklist if checklist is not None else CaseChecklist()
    overrider = recorded.override_by if recorded.override_by_id else None

    def when(name: str) -> str | None:
        value = getattr(recorded, name)
        return local_iso(value, zone) if value is not None else None

    return {
        "booking": booking.pk,
        "consent_signed_at": when("consent_signed_at"),
        "escort_confirmed": recorded.escort_confirmed,
        "escort_present_at": when("escort_present_at"),
        "last_solids_at": when("last_solids_at"),
        "last_clears_at": when("last_clears_at"),
        "pregnancy_status": recorded.pregnancy_status,
        "allergies_reviewed": recorded.allergies_reviewed,
        "override_reason": recorded.override_reason,
        "override_by": overrider.get_username() if overrider is not None else None,
        "override_at": when("override_at"),
        "passes": readiness_passes(items),
        "items": [item.as_dict() for item in items],
    }


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


class BookingWorkflowViewSet(viewsets.GenericViewSet):
    """Actions on a case the caller can see (others are 404). Transitions answer with the case;
    an illegal one is a 409 naming the status and the statuses it may start from."""

    serializer_class = s.BookingSerializer
    filter_backends: list[Any] = []
    pagination_class = None
    roles = {
        "check_in": FRONT_DESK,
        "no_show": FRONT_DESK,
        "ready": PROCEDURE_TEAM,
        "start_procedure": PROCEDURE_TEAM,
        "end_procedure": PROCEDURE_TEAM,
        "start_recovery": PROCEDURE_TEAM,
        "ready_for_discharge": PROCEDURE_TEAM,
        "discharge": PROCEDURE_TEAM,
        "checklist": CLINICAL_RECORDS,
        "checklist_update": CLINICAL_RECORDS,
    }
    extra_error_statuses = {**{name: (409, 422) for name in TRANSITIONS}, "checklist_update": (409, 422)}

    def get_queryset(self) -> QuerySet[Booking]:
        return visible_bookings(self.request.user).order_by("starts_at", "id")

    def _render(self, booking: Booking) -> Response:
        fresh = bookings_with_legs().get(pk=booking.pk)
        return Response(s.booking_data(fresh, primary_role(self.request.user)))

    def _error(self, exc: Exception) -> Response | None:
        return exception_handler(exc, {"view": self, "request": self.request})

    def _once(self, request: Request, pk: str | None, name: str, handler: Callable[[], Response]) -> HttpResponseBase:
        return run_idempotent(
            request,
            f"bookings.{pk}.{name}",
            handler,
            self._error,
            visible=lambda: visible_booking_rows(request.user),
            booking_id=pk,
        )

    @extend_schema(request=None, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"], url_path="check-in")
    def check_in(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        return self._once(
            request,
            pk,
            "check-in",
            lambda: self._render(booking_check_in(actor=request.user, booking=self.get_object())),
        )

    @extend_schema(request=ReadyInput, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"])
    def ready(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        return self._once(request, pk, "ready", lambda: self._ready(request))

    def _ready(self, request: Request) -> Response:
        booking = self.get_object()
        data = ReadyInput(data=request.data)
        data.is_valid(raise_exception=True)
        ready = booking_mark_ready(
            actor=request.user,
            booking=booking,
            override_reason=data.validated_data.get("override_reason"),
            may_override=bool(roles_of(request.user) & OVERRIDERS),
        )
        return self._render(ready)

    @extend_schema(request=None, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"], url_path="start-procedure")
    def start_procedure(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        return self._once(
            request,
            pk,
            "start-procedure",
            lambda: self._render(booking_start_procedure(actor=request.user, booking=self.get_object())),
        )

    @extend_schema(request=EndProcedureInput, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"], url_path="end-procedure")
    def end_procedure(self, request: Request, pk: str | None = None) -> HttpResponseBase:
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
        return self._once(
            request,
            pk,
            "start-recovery",
            lambda: self._render(booking_start_recovery(actor=request.user, booking=self.get_object())),
        )

    @extend_schema(request=None, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"], url_path="ready-for-discharge")
    def ready_for_discharge(self, request: Request, pk: str | None = None) -> HttpResponseBase:
        return self._once(
            request,
            pk,
            "ready-for-discharge",
            lambda: self._render(booking_mark_ready_for_discharge(actor=request.user, booking=self.get_object())),
        )

    @extend_schema(request=DischargeInput, responses={200: s.BookingSerializer})
    @action(detail=True, methods=["post"])
    def discharge(self, request: Request, pk: str | None = None) -> HttpResponseBase:
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
        return self._once(
            request,
            pk,
            "no-show",
            lambda: self._render(booking_no_show(actor=request.user, booking=self.get_object())),
        )

    # The checklist --------------------------------------------------------------------------

    def _checklist(self, booking: Booking) -> Response:
        inputs = load_readiness(booking)
        items = evaluate_with(booking, inputs, now=timezone.now())
        return Response(checklist_data(booking, inputs.checklist, items))

    @extend_schema(responses={200: ChecklistSerializer})
    @action(detail=True, methods=["get"])
    def checklist(self, request: Request, pk: str | None = None) -> Response:
        booking = self.get_object()
        audit_read(
            actor=request.user,
            action="checklist.read",
            object_type="patients.patient",
            object_ids=[booking.patient_id],
            details={"booking": booking.pk},
        )
        return self._checklist(booking)

    @extend_schema(request=ChecklistInput, responses={200: ChecklistSerializer})
    @checklist.mapping.patch
    def checklist_update(self, request: Request, pk: str | None = None) -> Response:
        booking = self.get_object()
        data = ChecklistInput(data=request.data)
        data.is_valid(raise_exception=True)
        checklist_update(actor=request.user, booking=booking, **data.validated_data)
        return self._checklist(booking)


# --- records the checklist reads ------------------------------------------------------------


class PatientRecordViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """List (for patients the caller can see; the read is audited) and create via a service."""

    filterset_fields = ["patient"]
    roles = {"list": CLINICAL_RECORDS, "create": CLINICAL_RECORDS}
    extra_error_statuses = {"create": (422,)}
    read_action = ""

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        patients = sorted({row["patient"] for row in response.data.get("results", [])})
        audit_read(actor=request.user, action=self.read_action, object_type="patients.patient", object_ids=patients)
        return response


class LabResultViewSet(PatientRecordViewSet):
    serializer_class = LabResultSerializer
    filterset_fields = ["patient", "test"]
    read_action = "lab_result.list"

    def get_queryset(self) -> QuerySet[LabResult]:
        return LabResult.objects.filter(patient__in=visible_patients(self.request.user)).order_by("-taken_at", "-id")

    @extend_schema(request=LabResultInput, responses={201: LabResultSerializer})
    def create(self, request: Request) -> Response:
        data = LabResultInput(data=request.data, patients=visible_patients(request.user))
        data.is_valid(raise_exception=True)
        lab = lab_result_record(actor=request.user, **data.validated_data)
        return Response(LabResultSerializer(lab).data, status=status.HTTP_201_CREATED)


class ImagingStudyViewSet(PatientRecordViewSet):
    serializer_class = ImagingStudySerializer
    filterset_fields = ["patient", "modality"]
    read_action = "imaging_study.list"

    def get_queryset(self) -> QuerySet[ImagingStudy]:
        return ImagingStudy.objects.filter(patient__in=visible_patients(self.request.user)).order_by(
            "-performed_on", "-id"
        )

    @extend_schema(request=ImagingStudyInput, responses={201: ImagingStudySerializer})
    def create(self, request: Request) -> Response:
        data = ImagingStudyInput(data=request.data, patients=visible_patients(request.user))
        data.is_valid(raise_exception=True)
        study = imaging_study_record(actor=request.user, **data.validated_data)
        return Response(ImagingStudySerializer(study).data, status=status.HTTP_201_CREATED)


# --- alerts ---------------------------------------------------------------------------------


class AlertViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Unresolved alerts, newest first; the charge nurse or a scheduler resolves them."""

    serializer_class = AlertSerializer
    filterset_fields = ["site", "kind", "booking"]
    roles = {"list": CLINICAL_RECORDS, "resolve": FRONT_DESK}
    extra_error_statuses = {"resolve": (409,)}

    def get_queryset(self) -> QuerySet[Alert]:
        alerts = Alert.objects.all()
        if self.action == "list":
            alerts = alerts.filter(resolved_at__isnull=True)
        user = self.request.user
        if not roles_of(user) & FRONT_DESK:
            # A physician sees the site-wide alerts and those about their own cases.
            alerts = alerts.filter(Q(booking__isnull=True) | Q(booking__in=visible_booking_rows(user).values("pk")))
        return alerts.order_by("-created_at", "-id")

    @extend_schema(request=None, responses={200: AlertSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        resolved = alert_resolve(actor=request.user, alert=self.get_object())
        return Response(AlertSerializer(resolved).data)
