"""Patients and their medication holds, cut to what the caller's role may see; reads audited."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from api.filters import SafeFilterSet
from api.pagination import SyncPagination
from api.serializers.patients import DrugSerializer, MedicationHoldSerializer, PatientSerializer
from api.sync import UpdatedSinceFilter
from api.views.common import READ, audit_patients_read, role_map
from api.views.reference import ReferenceViewSet
from core.roles import PATIENTS_READ, primary_role
from patients.models import Drug, MedicationHold, Patient
from patients.services import patient_register
from scheduling import policy
from scheduling.selectors import patients_visible_to
from scheduling.services.medication import medication_hold_create, medication_hold_delete, medication_hold_update


class PatientFilter(SafeFilterSet):
    updated_since = UpdatedSinceFilter()

    class Meta:
        model = Patient
        fields = ["mrn"]


class PatientViewSet(ReferenceViewSet):
    serializer_class = PatientSerializer
    filterset_class = PatientFilter
    pagination_class = SyncPagination
    roles = role_map(policy.EVERYONE, policy.PATIENT_REGISTRARS)
    scopes = {"list": PATIENTS_READ, "retrieve": PATIENTS_READ}
    extra_error_statuses = {"destroy": (409,), "create": (409,), "partial_update": (409,)}

    def get_queryset(self) -> QuerySet[Patient]:
        return patients_visible_to(self.request.user).order_by("last_name", "first_name", "id")

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        data = dict(serializer.validated_data)
        duplicate_ok = bool(data.pop("duplicate_ok", False))
        serializer.instance = patient_register(actor=self.request.user, data=data, duplicate_ok=duplicate_ok)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        serializer.validated_data.pop("duplicate_ok", None)
        super().perform_update(serializer)

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("context", self.get_serializer_context())
        # The schema documents every field a role may see (drf-spectacular marks its own pass).
        if not getattr(self, "swagger_fake_view", False) and (self.action in READ or self.request.method == "GET"):
            kwargs.update(role=primary_role(self.request.user), narrow=True)
        return PatientSerializer(*args, **kwargs)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        audit_patients_read(request, "patient.list", [row["id"] for row in response.data.get("results", [])])
        return response

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().retrieve(request, *args, **kwargs)
        audit_patients_read(request, "patient.read", [response.data["id"]])
        return response


class MedicationHoldViewSet(ReferenceViewSet):
    """A physician reads and writes the holds of their own patients only: a hold of anyone
    else's patient is a 404, and naming another patient in a write is refused as an unknown id."""

    serializer_class = MedicationHoldSerializer
    filterset_fields = ["patient"]
    roles = role_map(policy.MEDICATION_RECORDERS, policy.MEDICATION_RECORDERS)
    scopes = {"list": PATIENTS_READ, "retrieve": PATIENTS_READ}

    def get_queryset(self) -> QuerySet[MedicationHold]:
        return (
            MedicationHold.objects.filter(patient__in=patients_visible_to(self.request.user))
            .select_related("drug")
            .order_by("id")
        )

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("context", self.get_serializer_context())
        return MedicationHoldSerializer(*args, patients=patients_visible_to(self.request.user), **kwargs)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.instance = medication_hold_create(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        assert serializer.instance is not None
        fields = {k: v for k, v in serializer.validated_data.items() if k != "patient"}
        serializer.instance = medication_hold_update(actor=self.request.user, hold=serializer.instance, **fields)

    def perform_destroy(self, instance: Any) -> None:
        medication_hold_delete(actor=self.request.user, hold=instance)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        patients = sorted({row["patient"] for row in response.data.get("results", [])})
        audit_patients_read(request, "medication_hold.list", patients)
        return response

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().retrieve(request, *args, **kwargs)
        audit_patients_read(
            request, "medication_hold.read", [response.data["patient"]], medication_hold=response.data["id"]
        )
        return response


class DrugViewSet(ReferenceViewSet):
    """The anticoagulants and antiplatelets a hold may name, with their days per bleeding risk."""

    queryset = Drug.objects.all()
    serializer_class = DrugSerializer
    filterset_fields = ["drug_class", "is_active"]
    roles = role_map(policy.EVERYONE, policy.CONFIGURERS)
