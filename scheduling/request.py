"""What a caller asks for: one case, its procedure, levels, sedation and patient, and the
resources it pins. Every caller (the booking services, the search, the reasons, the seed, the
faces) describes a case with this one value."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from patients.models import Patient
from scheduling.legroles import LEG_ROLES, PIN_FIELDS, LegRole
from scheduling.legs import LegSpec, plan_legs, resolve_sedation
from scheduling.models import Allocation, Booking, ProcedureType


@dataclass(frozen=True)
class CaseRequest:
    """A case to place. ``pins`` maps a request field (``room``, ``c_arm``, ``physician``,
    ``sedation_staff``...) to the id of the resource the caller fixes; every other resource is
    left to the engine. ``site_id`` narrows the search to one site."""

    procedure_type: ProcedureType
    levels: int = 1
    sedation: str | None = None
    patient: Patient | None = None
    site_id: int | None = None
    pins: Mapping[str, int] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        unknown = set(self.pins) - set(PIN_FIELDS)
        if unknown:
            raise ValueError(f"Not a resource field: {', '.join(sorted(unknown))}.")

    @cached_property
    def sedation_level(self) -> str:
        return resolve_sedation(self.procedure_type, self.sedation)

    @cached_property
    def legs(self) -> list[LegSpec]:
        """The legs of the case, planned once. Raises BookingInvalid for levels or a sedation
        level the procedure type does not allow."""
        return plan_legs(self.procedure_type, levels=self.levels, sedation=self.sedation_level)

    def pin(self, role: str) -> int | None:
        pin_field = LEG_ROLES[str(role)].pin
        return self.pins.get(pin_field) if pin_field is not None else None

    @property
    def patient_id(self) -> int | None:
        return self.patient.pk if self.patient is not None else None

    def pinning(self, **pins: int | None) -> CaseRequest:
        """The same case with these pins added (None removes one)."""
        merged: dict[str, int] = dict(self.pins)
        for name, value in pins.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        pinned = replace(self, pins=merged)
        if "legs" in self.__dict__:
            # The legs do not depend on the pins: planned once, they are kept.
            pinned.__dict__["legs"] = self.__dict__["legs"]
        return pinned

    def describe(self) -> dict[str, Any]:
        """Ids and codes only, for the audit trail."""
        return {
            "procedure_type": self.procedure_type.code,
            "levels": self.levels,
            "sedation": self.sedation_level,
            "pins": dict(sorted(self.pins.items())),
        }


def pins_of(resources: Mapping[str, Any]) -> dict[str, int]:
    """Pins from field → model instance (or id); fields left None are open."""
    out = {}
    for name, value in resources.items():
        if value is None:
            continue
        out[name] = int(getattr(value, "pk", value))
    return out


def held_pins(legs: Iterable[Allocation]) -> dict[str, int]:
    """The resources a case's active legs hold, as request pins."""
    return {
        pin: leg.resource_id
        for leg in legs
        if leg.is_active and leg.role != LegRole.PATIENT and (pin := LEG_ROLES[leg.role].pin) is not None
    }


def request_of(booking: Booking, pins: Mapping[str, int]) -> CaseRequest:
    """The booked case as a request at its own site, with these pins."""
    return CaseRequest(
        procedure_type=booking.procedure_type,
        levels=booking.levels,
        sedation=booking.sedation,
        patient=booking.patient,
        site_id=booking.site_id,
        pins=pins,
    )
