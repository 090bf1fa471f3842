"""What the API's views share: role maps per action, query-string dates, zones, read audits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from api.errors import exception_handler
from api.fields import ClinicDateField
from core.audit import audit_patients
from patients.models import Patient
from rooms.zones import site_zone_map

READ = {"list", "retrieve"}
WRITE = {"create", "update", "partial_update", "destroy"}
PATIENT_OBJECT = Patient._meta.label_lower


def role_map(readers: Iterable[str], writers: Iterable[str]) -> dict[str, set[str]]:
    return {**{a: set(readers) for a in READ}, **{a: set(writers) for a in WRITE}}


def query_date(request: Request, name: str) -> date:
    raw = request.query_params.get(name)
    if not raw:
        raise serializers.ValidationError({name: ["This query parameter is required (YYYY-MM-DD)."]})
    try:
        return ClinicDateField().to_internal_value(raw)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({name: exc.detail}) from exc


def site_zones() -> dict[int, ZoneInfo]:
    return site_zone_map()


def audit_patients_read(request: Request, action: str, patient_ids: Iterable[int], **details: Any) -> None:
    """One audit row for the patients an answer shows (none when it shows none)."""
    audit_patients(request.user, action, patient_ids, **details)


class ProblemRendering:
    """For views that catch errors themselves (idempotent actions): render as the API does."""

    def render_error(self, exc: Exception) -> Response | None:
        return exception_handler(exc, {"view": self, "request": getattr(self, "request", None)})
