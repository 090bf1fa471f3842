"""A day to plan, as the rulebook sees it: every case asks the rulebook for its legs, the
candidates the rules allow for each and their free time, and the starts its own rules accept.
The cases being planned are left out of one another's windows (they will all be placed
afresh); everything else of the day (cases under way, holds, downtime, time off) blocks them.

Reads: two queries per case (its inventory and its window), one for the day's bookings and one
for the recovery bays of the cases that stay as they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet

from core.dates import to_local
from patients.models import Patient
from planner.model import DayProblem, Key, PlanCase
from rooms.models import Site
from scheduling.availability import engine
from scheduling.availability.search import allowed_starts
from scheduling.legroles import LEG_ROLES, LegRole
from scheduling.models import ACTIVE_STATUSES, Allocation, Booking, BookingStatus, ProcedureType
from scheduling.request import CaseRequest, request_of
from scheduling.rules import rulebook_for
from scheduling.rules.rulebook import Rulebook, ceil_min, from_min, to_min

GRID = 5
DEFAULT_MAX_MOVE = 30


@dataclass(frozen=True)
class Waiting:
    """A requested case on the waiting list: what to do, for whom, when the patient can arrive
    from (``earliest``) and by when the case must start (``latest``), both aware; the physician
    it must have or would rather have, and how much fitting it matters (``priority``, 1 and up)."""

    procedure: ProcedureType
    patient: Patient
    levels: int = 1
    sedation: str | None = None
    earliest: datetime | None = None
    latest: datetime | None = None
    physician: int | None = None
    preferred_physician: int | None = None
    priority: int = 1

    def request(self, site: Site) -> CaseRequest:
        pins = {"physician": self.physician} if self.physician is not None else {}
        return CaseRequest(
            procedure_type=self.procedure,
            levels=self.levels,
            sedation=self.sedation,
            patient=self.patient,
            site_id=site.pk,
            pins=pins,
        )


@dataclass
class Day:
    """The problem, and what stands behind each of its cases."""

    site: Site
    day: date
    problem: DayProblem
    bookings: dict[str, Booking] = field(default_factory=dict)
    waiting: dict[str, Waiting] = field(default_factory=dict)
    requests: dict[str, CaseRequest] = field(default_factory=dict)
    # When each planned booking last changed: a plan applies only while none has.
    snapshot: dict[int, str] = field(default_factory=dict)

    def instant(self, minutes: int) -> datetime:
        return to_local(from_min(minutes), self.site.zone)


def stamp(booking: Booking, legs: list[Allocation]) -> str:
    """What a booking is, for telling later whether it changed: its status, start, last change
    and every active leg (a change within the same clock tick still shows)."""
    held = sorted(
        (leg.role, leg.resource_column, leg.resource_id, leg.starts_at.isoformat(), leg.ends_at.isoformat())
        for leg in legs
        if leg.is_active
    )
    text = f"{booking.status}|{booking.starts_at.isoformat()}|{booking.updated_at.isoformat()}|{held}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def movable(booking: Booking, now: datetime) -> bool:
    """A scheduled case whose patient is not yet due may be moved; anything under way, held or
    whose patient is (or should be) here stays."""
    return booking.status == BookingStatus.SCHEDULED and booking.arrival_at > now


def day_bookings(site: Site, day: date) -> QuerySet[Booking]:
    zone = site.zone
    lo = datetime.combine(day, time(0), tzinfo=zone)
    return (
        Booking.objects.filter(
            site=site, status__in=ACTIVE_STATUSES, starts_at__gte=lo, starts_at__lt=lo + timedelta(1)
        )
        .select_related("procedure_type", "patient", "site")
        .prefetch_related("legs")
        .order_by("starts_at", "pk")
    )


def _keys(legs: list[Allocation]) -> dict[str, Key]:
    return {
        leg.role: (leg.resource_column, leg.resource_id)
        for leg in legs
        if leg.is_active and leg.role != LegRole.PATIENT
    }


def _case(
    ident: str,
    rulebook: Rulebook,
    site: Site,
    day: date,
    *,
    window: tuple[int, int] | None = None,
    weight: int = 1,
    current: int | None = None,
    current_keys: dict[str, Key] | None = None,
    preferred: dict[str, Key] | None = None,
) -> PlanCase:
    row = rulebook.inventory.sites[site.pk]
    allowed = allowed_starts(site.zone, day, day, None, None, rulebook.not_before(row))
    if window is not None:
        allowed = engine.intersect(engine.merge_closed(allowed), [window])
    return PlanCase(
        ident=ident,
        pools=tuple(rulebook.pools(row)),
        allowed=tuple(allowed),
        weight=weight,
        required=current is not None,
        current=current,
        current_keys=current_keys or {},
        preferred=preferred or {},
    )


def load_day(
    *,
    site: Site,
    day: date,
    waiting: list[Waiting] | tuple[Waiting, ...] = (),
    now: datetime,
    max_move: int = DEFAULT_MAX_MOVE,
) -> Day:
    """The day at ``site``: its scheduled cases that have not begun (each may move by up to
    ``max_move`` minutes, and keeps its physician) and the waiting list's cases (each within
    its patient's window), over everything else of the day."""
    zone = site.zone
    lo = to_min(datetime.combine(day, time(0), tzinfo=zone))
    hi = to_min(datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone))
    bookings = list(day_bookings(site, day))
    planned = [b for b in bookings if movable(b, now)]
    staying = [b for b in bookings if not movable(b, now)]
    exclude = frozenset(b.pk for b in planned)

    cases: list[PlanCase] = []
    out = Day(site=site, day=day, problem=DayProblem((), (lo, hi), lo))
    for booking in planned:
        legs = list(booking.legs.all())
        keys = _keys(legs)
        physician = keys.get(LegRole.PHYSICIAN)
        request = request_of(booking, {"physician": physician[1]} if physician else {})
        rulebook = rulebook_for(
            request, lo=lo, hi=hi, now=now, hold_override=booking.anticoagulant_override_at is not None
        )
        rulebook.read_window(exclude_booking_ids=exclude)
        current = to_min(booking.starts_at)
        ident = f"b{booking.pk}"
        # Nor may a move ask the patient to have arrived already.
        lead = to_min(booking.starts_at) - to_min(booking.arrival_at)
        earliest = max(current - max_move, ceil_min(now) + lead)
        cases.append(
            _case(
                ident,
                rulebook,
                site,
                day,
                window=(earliest, current + max_move),
                current=current,
                current_keys=keys,
            )
        )
        out.bookings[ident] = booking
        out.requests[ident] = request
        out.snapshot[booking.pk] = stamp(booking, legs)
    for index, wanted in enumerate(waiting, start=1):
        request = wanted.request(site)
        rulebook = rulebook_for(request, lo=lo, hi=hi, now=now)
        rulebook.read_window(exclude_booking_ids=exclude)
        # The patient's earliest is when they can arrive: the case starts its arrival lead after.
        lead = -min((spec.offset for spec in request.legs), default=0)
        first = to_min(wanted.earliest) + lead if wanted.earliest else lo
        last = to_min(wanted.latest) if wanted.latest else hi
        preferred = (
            {str(LegRole.PHYSICIAN): ("staff", wanted.preferred_physician)} if wanted.preferred_physician else {}
        )
        ident = f"w{index}"
        cases.append(
            _case(ident, rulebook, site, day, window=(first, last), weight=max(1, wanted.priority), preferred=preferred)
        )
        out.waiting[ident] = wanted
        out.requests[ident] = request
    fixed_bays = tuple(
        (to_min(leg.starts_at), to_min(leg.ends_at))
        for booking in staying
        for leg in booking.legs.all()
        if leg.is_active and leg.bay_id is not None
    )
    opens = _opening(cases, lo, hi)
    out.problem = DayProblem(tuple(cases), (lo, hi), opens, GRID, fixed_bays)
    return out


def _opening(cases: list[PlanCase], day_start: int, day_end: int) -> int:
    """When the day begins, for its length: the earliest a room could be used that day."""
    firsts = [
        max(span[0], day_start)
        for case in cases
        for pool in case.pools
        if pool.role == LegRole.ROOM
        for candidate in pool.candidates
        for span in candidate.free
        if span[1] > day_start and span[0] < day_end
    ]
    return min(firsts, default=day_start)


def pins_of(keys: Mapping[str, Key]) -> dict[str, int]:
    """A placement's resources as booking pins (the patient and the arrival hold none)."""
    pins = {}
    for role, key in keys.items():
        info = LEG_ROLES.get(role) if role in LegRole.values else None
        pin = info.pin if info is not None else None
        if pin is not None:
            pins[pin] = key[1]
    return pins
