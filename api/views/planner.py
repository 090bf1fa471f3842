"""The day planner over REST. A plan is asked for (202: a worker solves it within its budget),
read while it runs (progress) and when done (the result, kept an hour), and applied."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api.serializers import planner as s
from core.roles import BOOK, SCHEDULE_READ
from planner.models import PlanRun
from planner.selectors import plans_visible_to
from planner.services import plan_apply, plan_queue
from scheduling import policy
from scheduling.selectors import patients_bookable_by

PLANNERS = set(policy.PLANNERS)


class PlanViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.PlanRunSerializer
    roles = {"create": PLANNERS, "retrieve": PLANNERS, "apply": PLANNERS}
    scopes = {"create": SCHEDULE_READ, "retrieve": SCHEDULE_READ, "apply": BOOK}
    extra_error_statuses = {"apply": (409, 422), "create": (409,)}
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    def get_queryset(self) -> QuerySet[PlanRun]:
        return plans_visible_to(self.request.user)

    @extend_schema(
        request=s.PlanInput,
        responses={202: OpenApiResponse(s.PlanRunSerializer, description="Queued: follow Location for progress.")},
    )
    def create(self, request: Request) -> Response:
        """Plan a day: its scheduled cases not yet begun (each may move by up to
        ``max_move_minutes`` and keeps its physician) and any waiting list, within
        ``budget_seconds``. Answers 202 at once; read the run at ``Location``."""
        data = s.PlanInput(data=request.data, patients=patients_bookable_by(request.user))
        data.is_valid(raise_exception=True)
        run = plan_queue(
            actor=request.user, site=data.validated_data["site"], day=data.validated_data["date"], params=data.params()
        )
        body = s.PlanRunSerializer(run).data
        location = request.build_absolute_uri(f"/api/v1/plans/{run.pk}/")
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})

    @extend_schema(request=None, responses={200: s.AppliedSerializer})
    @action(detail=True, methods=["post"])
    def apply(self, request: Request, pk: str | None = None) -> Response:
        """Carry the plan out: every moved case through the reschedule service and every
        waiting case booked, in one transaction. Refused (409 ``plan_stale``, naming the cases)
        if any planned case changed since the plan was made; nothing is written then."""
        applied = plan_apply(actor=request.user, run=self.get_object())
        return Response(applied)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The run: its progress while it runs, its result once done."""
        return super().retrieve(request, *args, **kwargs)
