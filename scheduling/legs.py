"""The legs of a case: which resource roles it needs and at what offsets. Pure: no queries.

All offsets are minutes from the start of the room phase (t=0). With R room minutes
(first level plus extra levels), T turnover and V recovery:

- patient      [-arrival lead, R + V)  so one patient is never in two cases at once
- room         [0, R + T)              the room is cleaned and re-set after the patient leaves
- C-arm, RF    [0, R)
- rad tech     [0, R)
- sedation     [0, R)                  sedation nurse (moderate) or anesthesia (MAC, general)
- device rep   [0, R)
- physician    [P, R)                  joins once the patient is positioned and prepped
- recovery bay [R, R + V)              the patient lies flat, then is observed
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from core.errors import BookingInvalid, Problem
from scheduling.legroles import LEG_ROLES, LegRole
from scheduling.models import Sedation

SEDATION_ROLE: dict[str, LegRole | None] = {
    Sedation.LOCAL: None,
    Sedation.MODERATE: LegRole.SEDATION_NURSE,
    Sedation.MAC: LegRole.ANESTHESIA,
    Sedation.GENERAL: LegRole.ANESTHESIA,
}
EQUIPMENT_ROLE: dict[str, LegRole] = {
    info.equipment_kind: info.role for info in LEG_ROLES.values() if info.equipment_kind is not None
}


class ProcedureSpec(Protocol):
    code: str
    room_minutes: int
    minutes_per_extra_level: int
    max_levels: int
    physician_joins_after_minutes: int
    turnover_minutes: int
    arrival_lead_minutes: int
    recovery_minutes: int
    sedation_default: str
    sedation_allowed: list[str]
    staff_roles: list[str]
    required_equipment: list[str]


@dataclass(frozen=True)
class LegSpec:
    role: LegRole
    offset: int
    minutes: int

    @property
    def end_offset(self) -> int:
        return self.offset + self.minutes

    def window(self, start: datetime) -> tuple[datetime, datetime]:
        return start + timedelta(minutes=self.offset), start + timedelta(minutes=self.end_offset)


def room_minutes(spec: ProcedureSpec, levels: int) -> int:
    return spec.room_minutes + spec.minutes_per_extra_level * (levels - 1)


def resolve_sedation(spec: ProcedureSpec, sedation: str | None) -> str:
    return sedation or spec.sedation_default


def plan_legs(spec: ProcedureSpec, *, levels: int, sedation: str | None = None) -> list[LegSpec]:
    """The legs of one case, in a fixed order. Raises BookingInvalid for levels or a sedation
    level the procedure type does not allow."""
    sedation = resolve_sedation(spec, sedation)
    problems = []
    if not 1 <= levels <= spec.max_levels:
        problems.append(
            Problem(
                "levels_out_of_range",
                f"{spec.code} allows 1 to {spec.max_levels} levels; {levels} requested.",
                field="levels",
            )
        )
    if sedation not in spec.sedation_allowed:
        allowed = ", ".join(spec.sedation_allowed) or "none"
        problems.append(
            Problem(
                "sedation_not_allowed",
                f"{spec.code} allows sedation: {allowed}; {sedation!r} requested.",
                field="sedation",
            )
        )
    if problems:
        raise BookingInvalid(problems)

    room = room_minutes(spec, levels)
    recovery = spec.recovery_minutes
    legs = [
        LegSpec(LegRole.PATIENT, -spec.arrival_lead_minutes, spec.arrival_lead_minutes + room + recovery),
        LegSpec(LegRole.ROOM, 0, room + spec.turnover_minutes),
    ]
    legs += [LegSpec(EQUIPMENT_ROLE[kind], 0, room) for kind in spec.required_equipment]
    for role in spec.staff_roles:
        if role == LegRole.PHYSICIAN:
            legs.append(
                LegSpec(
                    LegRole.PHYSICIAN, spec.physician_joins_after_minutes, room - spec.physician_joins_after_minutes
                )
            )
        else:
            legs.append(LegSpec(LegRole(role), 0, room))
    sedation_role = SEDATION_ROLE[sedation]
    if sedation_role is not None:
        legs.append(LegSpec(sedation_role, 0, room))
    if recovery:
        legs.append(LegSpec(LegRole.RECOVERY_BAY, room, recovery))
    return legs
