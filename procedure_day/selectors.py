"""Reads of the procedure day that more than one face needs: a physician's daily list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.utils import timezone

from core.errors import NotPermitted
from procedure_day.readiness import ReadinessInputs, ReadinessSummary, load_readiness_many, summarize
from rooms.models import Site
from scheduling import policy
from scheduling.models import Booking, BookingStatus
from scheduling.selectors import LegView, bookings_visible_to, cases_of_physician, legs_by_role
from staff.models import StaffMember


@dataclass(frozen=True)
class DailyCase:
    booking: Booking
    legs: dict[str, LegView]
    readiness: ReadinessSummary
    # The holds, labs, imaging and checklist the readiness was worked out from.
    inputs: ReadinessInputs


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
    return DailyList(physician, day, _daily_cases(cases_of_physician(user, physician, day)))


def daily_case(booking: Booking, inputs: ReadinessInputs, *, now: datetime) -> DailyCase:
    """One case with its legs and readiness, from inputs already loaded."""
    return DailyCase(booking, legs_by_role(booking), summarize(booking, inputs, now=now), inputs)


def _daily_cases(bookings: list[Booking]) -> list[DailyCase]:
    now = timezone.now()
    inputs = load_readiness_many(bookings)
    return [daily_case(booking, inputs[booking.pk], now=now) for booking in bookings]


def cases_of_day(user: Any, site: Site, day: date) -> list[DailyCase]:
    """Every case at ``site`` on its local ``day`` that ``user`` may see but the cancelled ones,
    in order, with legs and readiness: seven queries however many cases."""
    start = datetime.combine(day, time(0), tzinfo=site.zone)
    bookings = list(
        bookings_visible_to(user)
        .filter(site=site, starts_at__gte=start, starts_at__lt=start + timedelta(days=1))
        .exclude(status=BookingStatus.CANCELLED)
        .order_by("starts_at", "id")
    )
    return _daily_cases(bookings)
