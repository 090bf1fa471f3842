"""The availability search and the reasons a start is not feasible."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.filters import refuse_unknown_parameters
from api.serializers import bookings as s
from api.views.common import audit_patients_read, site_zones
from scheduling import policy
from scheduling.availability.search import SearchQuery, availability_search, explain_start
from scheduling.request import CaseRequest
from scheduling.selectors import patients_visible_to


def case_request(data: dict[str, Any], **overrides: Any) -> CaseRequest:
    """The case a validated input describes."""
    values: dict[str, Any] = {
        "procedure_type": data["procedure_type"],
        "levels": data.get("levels", 1),
        "sedation": data.get("sedation"),
        "patient": data.get("patient"),
        "site_id": data.get("site"),
        "pins": s.pins_from(data),
    }
    values.update(overrides)
    return CaseRequest(**values)


def audit_patient_query(request: Request, action: str, data: dict[str, Any]) -> None:
    # The patient's holds and other cases shaped the answer: that is a read of their record.
    patient = data.get("patient")
    if patient is not None:
        audit_patients_read(request, action, [patient.pk])


class AvailabilityView(APIView):
    roles = {"get": set(policy.SEARCHERS)}

    @extend_schema(parameters=[s.AvailabilityQuery], responses={200: s.AvailabilityResultSerializer})
    def get(self, request: Request) -> Response:
        """Search free starts for a case: every start in the window (`from`..`to`, at most 92 days;
        `earliest`..`latest` each day, on a `grid` of minutes) where every leg has a resource the
        rules allow, best first, up to `limit`. Each result names the resources it would hold. Pins
        narrow the search; a `patient` adds their own readiness and other cases."""
        refuse_unknown_parameters(request, set(s.AvailabilityQuery().fields))
        query = s.AvailabilityQuery(data=request.query_params, patients=patients_visible_to(request.user))
        query.is_valid(raise_exception=True)
        data = query.validated_data
        slots = availability_search(
            SearchQuery(
                request=case_request(data),
                date_from=data["from"],
                date_to=data["to"],
                earliest=data.get("earliest"),
                latest=data.get("latest"),
                count=data["limit"],
                grid_minutes=data["grid"],
            )
        )
        zones = site_zones()
        audit_patient_query(request, "availability.read", data)
        return Response({"results": [s.slot_data(slot, zones) for slot in slots]})


class ReasonsView(APIView):
    roles = {"get": set(policy.SEARCHERS)}

    @extend_schema(parameters=[s.ReasonsQuery], responses={200: s.ReasonsResultSerializer})
    def get(self, request: Request) -> Response:
        """Why a case cannot start at a given time: every rule the start breaks, in words that name
        the leg and resource (booked, off shift, down, not credentialed, closed). `feasible` is true
        when none does."""
        refuse_unknown_parameters(request, set(s.ReasonsQuery().fields))
        query = s.ReasonsQuery(data=request.query_params, patients=patients_visible_to(request.user))
        query.is_valid(raise_exception=True)
        data = query.validated_data
        problems = explain_start(case_request(data), data["start"])
        audit_patient_query(request, "availability.reasons_read", data)
        return Response({"feasible": not problems, "reasons": [p.as_dict() for p in problems]})
