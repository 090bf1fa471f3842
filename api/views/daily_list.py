"""A physician's cases of one day, in order, with what the team needs at hand."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.fields import ClinicDateField, IdField, local_iso
from api.filters import refuse_unknown_parameters
from api.serializers.bookings import override_data
from api.serializers.days import DailyListSerializer
from api.serializers.patients import patient_data
from api.views.common import audit_patients_read
from core.roles import primary_role
from procedure_day.selectors import DailyCase, daily_list_for_physician
from scheduling import policy
from staff.models import StaffMember


class DailyListQuery(serializers.Serializer):
    physician = IdField(queryset=StaffMember.objects.filter(role="physician"))
    date = ClinicDateField()


def case_row(case: DailyCase, role: str | None) -> dict[str, Any]:
    booking = case.booking
    zone = booking.site.zone
    patient = patient_data(booking.patient, role)

    def name(role_name: str) -> str | None:
        view = case.legs.get(role_name)
        return view.name if view is not None else None

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
        "readiness": case.readiness.as_dict(),
        "anticoagulant_override": override_data(booking),
        "patient": patient,
        "escort": {"name": patient.get("escort_name"), "phone": patient.get("escort_phone")}
        if "escort_name" in patient
        else None,
        "allergies": patient.get("allergies", ""),
    }


class DailyListView(APIView):
    roles = {"get": set(policy.EVERYONE)}

    @extend_schema(
        parameters=[DailyListQuery],
        responses={200: OpenApiResponse(DailyListSerializer, description="The physician's cases in order")},
    )
    def get(self, request: Request) -> Response:
        """A physician's cases of one day, in order of start, with what the team needs at hand: the
        procedure, sedation, room, C-arm, tech, recovery bay, readiness, escort and allergies. A
        physician reads their own list; the patient's fields are those your role may see. The read
        is audited."""
        refuse_unknown_parameters(request, set(DailyListQuery().fields))
        query = DailyListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        physician: StaffMember = query.validated_data["physician"]
        daily = daily_list_for_physician(request.user, physician, query.validated_data["date"])
        role = primary_role(request.user)
        audit_patients_read(
            request, "daily_list.read", daily.patient_ids, physician=physician.pk, date=daily.day.isoformat()
        )
        return Response(
            {
                "physician": {"id": physician.pk, "name": str(physician)},
                "date": daily.day.isoformat(),
                "cases": [case_row(case, role) for case in daily.cases],
            }
        )
