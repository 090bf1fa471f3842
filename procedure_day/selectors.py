"""Reads of the procedure day that more than one face needs: a physician's daily list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from core.errors import NotPermitted
from procedure_day.readiness import ReadinessSummary, readiness_summaries
from scheduling import policy
from scheduling.models import Booking
from scheduling.selectors import LegView, cases_of_physician, legs_by_role
from staff.models import StaffMember


@dataclass(frozen=True)
class DailyCase:
    booking: Booking
    legs: dict[str, LegView]
    readiness: ReadinessSummary


@dataclass(frozen=True)
class DailyList:
    physician: StaffMember
    day: date
    cases: list[DailyCase]

    @property
    def patient_ids(self) -> list[int]:
        return [case.booking.patient_id for case in self.cases]


def daily_list_for_physician(user: Any, physician: StaffMember, day: date) -> DailyList:
    """The physician's cases on ``day`` (each site's local date) that ``user`` may see, in
    order, with their legs and readiness: seven queries however many cases.

    Raises NotPermitted when ``user`` may not read this physician's list (a physician reads
    their own).
    """
    if not policy.may_read_daily_list(user, physician):
        raise NotPermitted("Physicians see their own daily list.")
    cases = cases_of_physician(user, physician, day)
    readiness = readiness_summaries(cases)
    return DailyList(
        physician, day, [DailyCase(booking, legs_by_role(booking), readiness[booking.pk]) for booking in cases]
    )
