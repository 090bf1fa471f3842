"""The roles a leg can play, and everything the code needs to know about each: one table.

Each role names the allocation column that holds its resource, the request field that pins it,
the kind of resource shown in answers, the staff role or equipment kind that may fill it, the
noun a scheduler reads, and whether the leg ends with the procedure.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


class LegRole(models.TextChoices):
    PATIENT = "patient", "Patient"
    ROOM = "room", "Procedure room"
    C_ARM = "c_arm", "C-arm"
    RF_GENERATOR = "rf_generator", "RF generator"
    PHYSICIAN = "physician", "Physician"
    RAD_TECH = "rad_tech", "Radiology tech"
    SEDATION_NURSE = "sedation_nurse", "Sedation nurse"
    ANESTHESIA = "anesthesia", "Anesthesia provider"
    DEVICE_REP = "device_rep", "Device rep"
    RECOVERY_BAY = "recovery_bay", "Recovery bay"


@dataclass(frozen=True)
class RoleInfo:
    role: LegRole
    column: str  # the Allocation column (and the inventory table) that holds the resource
    kind: str  # the resource kind in answers
    pin: str | None  # the request field that names a resource for this role
    noun: str
    staff_role: str | None = None
    equipment_kind: str | None = None
    ends_with_procedure: bool = False  # room-phase legs; the room adds its turnover after them

    @property
    def label(self) -> str:
        return str(self.role.label)


def _staff(role: LegRole, pin: str, noun: str, staff_role: str) -> RoleInfo:
    return RoleInfo(role, "staff", "staff", pin, noun, staff_role=staff_role, ends_with_procedure=True)


def _equipment(role: LegRole, noun: str, kind: str) -> RoleInfo:
    return RoleInfo(role, "equipment", "equipment", str(role), noun, equipment_kind=kind, ends_with_procedure=True)


LEG_ROLES: dict[str, RoleInfo] = {
    info.role.value: info
    for info in (
        RoleInfo(LegRole.PATIENT, "patient", "patient", None, "patient"),
        RoleInfo(LegRole.ROOM, "room", "room", "room", "procedure room"),
        _equipment(LegRole.C_ARM, "C-arm", "c_arm"),
        _equipment(LegRole.RF_GENERATOR, "RF generator", "rf_generator"),
        _staff(LegRole.PHYSICIAN, "physician", "physician", "physician"),
        _staff(LegRole.RAD_TECH, "rad_tech", "radiology tech", "rad_tech"),
        _staff(LegRole.SEDATION_NURSE, "sedation_staff", "sedation nurse", "nurse"),
        _staff(LegRole.ANESTHESIA, "sedation_staff", "anesthesia provider", "anesthesia"),
        _staff(LegRole.DEVICE_REP, "device_rep", "device rep", "device_rep"),
        RoleInfo(LegRole.RECOVERY_BAY, "bay", "recovery_bay", "recovery_bay", "recovery bay"),
    )
}
RESOURCE_COLUMNS = ("patient", "room", "equipment", "staff", "bay")
# The fields of a request that pin a resource, in the order answers list them.
PIN_FIELDS = ("room", "c_arm", "rf_generator", "physician", "rad_tech", "sedation_staff", "device_rep", "recovery_bay")
# Staff roles a procedure type may list for its room phase; sedation roles follow from the
# sedation level instead.
PROCEDURE_STAFF_ROLES = (LegRole.PHYSICIAN, LegRole.RAD_TECH, LegRole.DEVICE_REP)


def role_info(role: str) -> RoleInfo:
    return LEG_ROLES[str(role)]


def kind_of_column(column: str) -> str:
    """The resource kind answers use for an allocation column (a bay is a recovery_bay)."""
    return "recovery_bay" if column == "bay" else column
