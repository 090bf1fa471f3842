"""Concrete resources for a case's legs, and how they are named to people."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import models

from patients.models import Patient
from rooms.models import Equipment, ProcedureRoom, RecoveryBay
from scheduling.legs import LegSpec
from scheduling.models import ROLE_COLUMN, LegRole
from staff.models import StaffMember

ROLE_FIELD: dict[LegRole, str] = {
    LegRole.ROOM: "room",
    LegRole.C_ARM: "c_arm",
    LegRole.RF_GENERATOR: "rf_generator",
    LegRole.PHYSICIAN: "physician",
    LegRole.RAD_TECH: "rad_tech",
    LegRole.SEDATION_NURSE: "sedation_staff",
    LegRole.ANESTHESIA: "sedation_staff",
    LegRole.DEVICE_REP: "device_rep",
    LegRole.RECOVERY_BAY: "recovery_bay",
}


@dataclass
class ResourceChoice:
    """The resource named for each role; ``None`` where the caller leaves the choice open."""

    room: ProcedureRoom | None = None
    c_arm: Equipment | None = None
    rf_generator: Equipment | None = None
    physician: StaffMember | None = None
    rad_tech: StaffMember | None = None
    sedation_staff: StaffMember | None = None
    device_rep: StaffMember | None = None
    recovery_bay: RecoveryBay | None = None

    def for_role(self, role: LegRole) -> models.Model | None:
        value: models.Model | None = getattr(self, ROLE_FIELD[role])
        return value

    def named(self) -> dict[str, models.Model]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass
class BoundLeg:
    """A leg with its resource and absolute window."""

    spec: LegSpec
    resource: models.Model
    starts_at: datetime
    ends_at: datetime

    @property
    def role(self) -> LegRole:
        return self.spec.role

    @property
    def column(self) -> str:
        return ROLE_COLUMN[self.spec.role]

    @property
    def resource_id(self) -> int:
        return int(self.resource.pk)


def resource_kind(obj: Any) -> str:
    if isinstance(obj, Patient):
        return "patient"
    if isinstance(obj, ProcedureRoom):
        return "room"
    if isinstance(obj, Equipment):
        return "equipment"
    if isinstance(obj, StaffMember):
        return "staff"
    if isinstance(obj, RecoveryBay):
        return "recovery_bay"
    raise TypeError(f"not a schedulable resource: {type(obj).__name__}")


def resource_name(obj: Any) -> str:
    # A patient's name is protected health information; errors and schedules say "the patient".
    return "the patient" if isinstance(obj, Patient) else str(obj)


def describe_resource(obj: Any) -> dict[str, Any]:
    return {"kind": resource_kind(obj), "id": obj.pk, "name": resource_name(obj)}


def local_hhmm(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


def local_span(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    first, last = start.astimezone(zone), end.astimezone(zone)
    if first.date() == last.date():
        return f"{first:%H:%M}–{last:%H:%M}"
    return f"{first:%Y-%m-%d %H:%M}–{last:%Y-%m-%d %H:%M}"
