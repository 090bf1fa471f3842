"""The day planner over REST: what a plan is asked with, and how a run reads."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers

from api.fields import AwareDateTimeField, ClinicDateField, CodeField, IdField
from api.serializers.common import ClinicModelSerializer
from core.errors import BookingInvalid
from patients.models import Patient
from planner.models import PlanRun
from rooms.models import ProcedureRoom, Site
from scheduling.models import ProcedureType, Sedation
from scheduling.request import CaseRequest
from staff.models import StaffMember


class WaitingCaseInput(serializers.Serializer):
    patient = IdField(queryset=Patient.objects.none(), help_text="The patient to fit in (by id).")
    procedure_type = CodeField(slug_field="code", queryset=ProcedureType.objects.filter(is_active=True))
    levels = serializers.IntegerField(min_value=1, max_value=10, default=1)
    sedation = serializers.ChoiceField(choices=Sedation.choices, required=False, allow_null=True)
    earliest = AwareDateTimeField(
        required=False, allow_null=True, help_text="The patient can come from (default: all day)."
    )
    latest = AwareDateTimeField(required=False, allow_null=True, help_text="The case must start by.")
    physician = IdField(
        queryset=StaffMember.objects.filter(role="physician"),
        required=False,
        allow_null=True,
        help_text="The physician the case must have.",
    )
    preferred_physician = IdField(
        queryset=StaffMember.objects.filter(role="physician"),
        required=False,
        allow_null=True,
        help_text="The physician the case should have if it can.",
    )
    priority = serializers.IntegerField(
        min_value=1, max_value=10, default=1, help_text="How much fitting this case counts (1, and up)."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("earliest") and attrs.get("latest") and attrs["latest"] < attrs["earliest"]:
            raise serializers.ValidationError({"latest": "The latest start is before the earliest."})
        return attrs


class WhatIfInput(serializers.Serializer):
    bays = serializers.IntegerField(min_value=0, max_value=10, default=0, help_text="Extra recovery bays.")
    rad_techs = serializers.IntegerField(min_value=0, max_value=10, default=0, help_text="Extra radiology techs.")
    nurses = serializers.IntegerField(min_value=0, max_value=10, default=0, help_text="Extra sedation nurses.")
    week = serializers.BooleanField(
        default=False, help_text="Compare the whole week (Monday to Friday) of the date, not the day alone."
    )
    without_rooms = serializers.ListField(
        child=IdField(queryset=ProcedureRoom.objects.all()),
        required=False,
        max_length=20,
        help_text="Rooms taken out for the day (by id).",
    )


class PlanInput(serializers.Serializer):
    """``patients``: those the caller may book for (a waiting patient outside them is refused
    like an unknown id); none given, none accepted."""

    def __init__(self, *args: Any, patients: QuerySet[Patient] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        listed = self.fields["waiting_list"]
        assert isinstance(listed, serializers.ListSerializer)
        assert isinstance(listed.child, WaitingCaseInput)
        patient = listed.child.fields["patient"]
        assert isinstance(patient, IdField)
        patient.queryset = patients if patients is not None else Patient.objects.none()

    def validate_waiting_list(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen = [item["patient"].pk for item in items]
        if len(set(seen)) != len(seen):
            raise serializers.ValidationError("A patient is on the waiting list twice.", code="rule")
        # The catalogue's rules on levels and sedation, asked once per case: a case they refuse
        # is a 422 naming it by its place in the list.
        problems = []
        for index, item in enumerate(items):
            request = CaseRequest(
                procedure_type=item["procedure_type"], levels=item["levels"], sedation=item.get("sedation")
            )
            try:
                request.legs  # noqa: B018
            except BookingInvalid as exc:
                problems += [
                    replace(problem, field=f"waiting_list.{index}.{problem.field or 'levels'}")
                    for problem in exc.problems
                ]
        if problems:
            raise BookingInvalid(problems)
        return items

    site = IdField(queryset=Site.objects.filter(is_active=True))
    date = ClinicDateField()
    waiting_list: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=WaitingCaseInput(), required=False, max_length=60
    )
    budget_seconds = serializers.FloatField(min_value=1, max_value=60, required=False, help_text="Default 10.")
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)
    max_move_minutes = serializers.IntegerField(min_value=0, max_value=240, required=False, help_text="Default 30.")
    what_if = WhatIfInput(required=False, help_text="Plan with more or fewer resources, to compare; not to apply.")

    def params(self) -> dict[str, Any]:
        """The parameters as the run keeps them: ids, codes and instants."""
        data = self.validated_data
        params: dict[str, Any] = {"seed": data["seed"]}
        for name in ("budget_seconds", "max_move_minutes"):
            if data.get(name) is not None:
                params[name] = data[name]
        params["waiting_list"] = [
            {
                "patient": item["patient"].pk,
                "procedure_type": item["procedure_type"].code,
                "levels": item["levels"],
                "sedation": item.get("sedation"),
                "earliest": item["earliest"].isoformat() if item.get("earliest") else None,
                "latest": item["latest"].isoformat() if item.get("latest") else None,
                "physician": item["physician"].pk if item.get("physician") else None,
                "preferred_physician": item["preferred_physician"].pk if item.get("preferred_physician") else None,
                "priority": item["priority"],
            }
            for item in data.get("waiting_list", [])
        ]
        if data.get("what_if"):
            change = data["what_if"]
            params["what_if"] = {
                "bays": change["bays"],
                "rad_techs": change["rad_techs"],
                "nurses": change["nurses"],
                "without_rooms": [room.pk for room in change.get("without_rooms", [])],
                "week": change["week"],
            }
        return params


class PlanRunSerializer(ClinicModelSerializer):
    date = serializers.DateField(source="day")
    result = serializers.JSONField(
        allow_null=True,
        help_text="When done: the figures of the plan, of first come first served and of the day as booked; the "
        "solver's bound and the gap to it; each case placed with its start and legs; the cases left out.",
    )

    class Meta:
        model = PlanRun
        fields = [
            "id",
            "site",
            "date",
            "status",
            "progress",
            "stage",
            "error",
            "params",
            "result",
            "created_at",
            "finished_at",
            "expires_at",
        ]
        read_only_fields = fields


class AppliedSerializer(serializers.Serializer):
    moved = serializers.ListField(child=serializers.IntegerField(), help_text="Bookings moved (ids).")
    created = serializers.ListField(child=serializers.IntegerField(), help_text="Bookings made from the waiting list.")
