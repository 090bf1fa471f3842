"""Typed domain errors with structured details, for every interface to render."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from typing import Any


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    field: str | None = None
    role: str | None = None
    resource: dict[str, Any] | None = None
    extra: dict[str, Any] = dataclass_field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {})}


class SchedulingError(Exception):
    code = "scheduling_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class BookingInvalid(SchedulingError):
    """The request breaks one or more rules; ``problems`` lists every one found."""

    code = "booking_invalid"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems), details={"problems": [p.as_dict() for p in problems]})


class SlotUnavailable(SchedulingError):
    """A resource is already held for part of a requested leg's window."""

    code = "slot_unavailable"

    def __init__(self, conflicts: list[dict[str, Any]]) -> None:
        self.conflicts = conflicts
        described = "; ".join(c["message"] for c in conflicts) or "A resource is already booked for that time."
        super().__init__(described, details={"conflicts": conflicts})


class InvalidTransition(SchedulingError):
    code = "invalid_transition"


class ReadinessNotMet(SchedulingError):
    """The readiness checklist does not pass; ``items`` lists what is outstanding."""

    code = "readiness_not_met"

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        codes = ", ".join(item["code"] for item in items)
        super().__init__(f"The readiness checklist is not complete: {codes}.", details={"items": items})


class OverrideNotPermitted(SchedulingError):
    """Only a physician or an administrator may override the readiness gate."""

    code = "override_not_permitted"


class UnknownReference(SchedulingError):
    """Ids the request names that do not exist: refused like any unknown id, field by field."""

    code = "unknown_reference"

    def __init__(self, ids: dict[str, Any]) -> None:
        self.ids = ids
        named = ", ".join(f"{name} {value}" for name, value in ids.items())
        super().__init__(f"No such {named}.", details={"fields": {name: str(value) for name, value in ids.items()}})


class NotPermitted(SchedulingError):
    """The user's role does not allow this read or write."""

    code = "permission_denied"


class PossibleDuplicate(SchedulingError):
    """A new patient looks like one on file: same MRN, or same name and date of birth."""

    code = "possible_duplicate"

    def __init__(self, message: str, matches: list[int], *, same_mrn: bool) -> None:
        self.matches = matches
        self.same_mrn = same_mrn
        super().__init__(message, details={"matches": matches, "same_mrn": same_mrn})
