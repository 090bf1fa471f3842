"""Reference data: sites (and a site's day), hours, rooms, equipment, bays, downtime, staff,
credentials, shifts, time off and the procedure catalogue."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api.fields import local_iso
from api.serializers import reference as s
from api.serializers.days import SiteScheduleSerializer
from api.views.common import query_date, role_map
from core.roles import PEOPLE_ONLY
from core.services import record_create, record_delete, record_update
from procedure_day.board import day_blocks, day_delays, site_day_staff
from rooms.models import Downtime, Equipment, OpeningHours, ProcedureRoom, RecoveryBay, Site
from scheduling import policy
from scheduling.models import ProcedureType
from scheduling.selectors import site_day_legs, site_day_schedule
from scheduling.services.downtime import downtime_create, downtime_delete, downtime_update
from scheduling.services.swaps import downtime_impact
from staff.models import Credential, Shift, StaffMember, TimeOff


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


INVENTORY_ROLES = role_map(policy.EVERYONE, policy.CONFIGURERS)
AVAILABILITY_ROLES = role_map(policy.EVERYONE, policy.AVAILABILITY_EDITORS)
# Downtime and time off are recorded by people; a key reads them.
PEOPLE_WRITE = {action: PEOPLE_ONLY for action in ("create", "update", "partial_update", "destroy")}


class SiteViewSet(ReferenceViewSet):
    queryset = Site.objects.all()
    serializer_class = s.SiteSerializer
    roles = {**INVENTORY_ROLES, "schedule": set(policy.EVERYONE)}
    action_query_params = {"schedule": {"date"}}

    @extend_schema(
        parameters=[OpenApiParameter("date", OpenApiTypes.DATE, required=True, description="Site-local date")],
        responses={
            200: OpenApiResponse(
                SiteScheduleSerializer,
                description="Every leg of every resource that day; the downtime and time off that day; and the "
                "projected delay of each case a case running late holds up (running_late for the late one itself).",
            )
        },
    )
    @action(detail=True, methods=["get"])
    def schedule(self, request: Request, pk: str | None = None) -> Response:
        """A site's whole day: every leg of every resource, the downtime and time off that day, and
        how late each case held up by a late one is projected to run. What the day board shows."""
        site = self.get_object()
        day = query_date(request, "date")
        zone = site.zone
        rows = [
            {
                "booking": row.booking_id,
                "procedure_type": row.procedure_code,
                "status": row.status,
                "role": row.leg.role,
                "resource": {"kind": row.leg.kind, "id": row.leg.resource_id, "name": row.leg.name},
                "start": local_iso(row.leg.starts_at, zone),
                "end": local_iso(row.leg.ends_at, zone),
            }
            for row in site_day_schedule(site, day)
        ]
        legs = list(site_day_legs(site, day))
        downtimes, time_off = day_blocks(site, day, site_day_staff(site, day, legs))
        delays = day_delays(site, day, now=timezone.now())
        return Response(
            {
                "site": site.pk,
                "date": day.isoformat(),
                "legs": rows,
                "downtime": [
                    {
                        "id": block.pk,
                        "resource": {
                            "kind": "room" if block.room_id is not None else "equipment",
                            "id": block.room_id or block.equipment_id,
                            "name": str(block.room or block.equipment),
                        },
                        "reason": block.reason,
                        "start": local_iso(block.starts_at, zone),
                        "end": local_iso(block.ends_at, zone),
                    }
                    for block in downtimes
                ],
                "time_off": [
                    {
                        "staff": {"id": off.staff_id, "name": str(off.staff)},
                        "start": local_iso(off.starts_at, zone),
                        "end": local_iso(off.ends_at, zone),
                    }
                    for off in time_off
                ],
                "delays": [
                    {
                        "booking": pk,
                        "minutes": delay.minutes,
                        "running_late": delay.running_late,
                        "because_of": list(delay.because),
                    }
                    for pk, delay in sorted(delays.items())
                ],
            }
        )


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
    roles = {**AVAILABILITY_ROLES, "impact": set(policy.AVAILABILITY_EDITORS)}
    scopes = PEOPLE_WRITE

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.instance = downtime_create(actor=self.request.user, data=dict(serializer.validated_data))

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        assert serializer.instance is not None
        serializer.instance = downtime_update(
            actor=self.request.user, downtime=serializer.instance, data=dict(serializer.validated_data)
        )

    def perform_destroy(self, instance: Any) -> None:
        downtime_delete(actor=self.request.user, downtime=instance)

    @extend_schema(
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Every active case the downtime hits, with its physician and the swaps found (another "
                "C-arm or room at the same time, another start that day). Apply one by rescheduling the booking "
                "to the swap's start with its pins.",
            )
        }
    )
    @action(detail=True, methods=["get"])
    def impact(self, request: Request, pk: str | None = None) -> Response:
        """The cases this downtime hits, each with the resources that could stand in (a swap the
        rules allow) or none."""
        downtime = self.get_object()
        out = []
        for hit in downtime_impact(downtime):
            zone = hit.booking.site.zone
            out.append(
                {
                    "booking": hit.booking.pk,
                    "procedure_type": hit.booking.procedure_type.code,
                    "start": local_iso(hit.booking.starts_at, zone),
                    "physician": hit.physician,
                    "swaps": [
                        {
                            "kind": swap.kind,
                            "title": swap.title,
                            "start": local_iso(swap.starts_at, zone),
                            "pins": swap.pins,
                        }
                        for swap in hit.swaps
                    ],
                }
            )
        return Response({"downtime": downtime.pk, "cases": out})


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
    roles = AVAILABILITY_ROLES
    scopes = PEOPLE_WRITE


class ProcedureTypeViewSet(ReferenceViewSet):
    queryset = ProcedureType.objects.all()
    serializer_class = s.ProcedureTypeSerializer
    roles = INVENTORY_ROLES
