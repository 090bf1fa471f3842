"""Availability: the earliest feasible starts of a case, and why a start is not feasible.

Both ask the rulebook (``scheduling.rules``): the search hands its free time to the interval
engine, the reasons put its failing rules in words. Two queries each, whatever the window or
the size of the clinic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from django.utils import timezone

from core.errors import BookingInvalid, Problem
from scheduling.availability import engine
from scheduling.legroles import LEG_ROLES
from scheduling.request import CaseRequest
from scheduling.rules import rulebook_for
from scheduling.rules.rulebook import Rulebook, from_min, to_min, window_bounds

MAX_WINDOW_DAYS = 92
MAX_COUNT = 200
PER_DAY_SPACING_MINUTES = 60


@dataclass
class SlotLeg:
    role: str
    kind: str
    resource_id: int
    name: str
    start: datetime
    end: datetime


@dataclass
class Slot:
    site_id: int
    start: datetime
    end: datetime
    legs: list[SlotLeg]


@dataclass
class SearchQuery:
    request: CaseRequest
    date_from: date
    date_to: date
    earliest: time | None = None
    latest: time | None = None
    count: int = 10
    grid_minutes: int = 5
    not_before: datetime | None = None
    # Up to this many starts on each day (the earliest of each), instead of the earliest
    # ``count`` overall: a week at a glance rather than five starts on one morning.
    per_day: int | None = None
    # The demo seed books a week that may lie in the past; nothing else should.
    allow_past: bool = False
    # A case looking for another place: its own legs do not block it, and an anticoagulant
    # override it carries still covers the day.
    exclude_booking_id: int | None = None
    hold_override: bool = False


def check_query(query: SearchQuery) -> None:
    problems = []
    days = (query.date_to - query.date_from).days + 1
    if days < 1:
        problems.append(Problem("window_inverted", "The window ends before it starts.", field="to"))
    elif days > MAX_WINDOW_DAYS:
        problems.append(
            Problem("window_too_large", f"Search at most {MAX_WINDOW_DAYS} days at a time; {days} asked.", field="to")
        )
    if query.per_day is not None and not 1 <= query.per_day <= 10:
        problems.append(Problem("per_day_out_of_range", "Ask for 1 to 10 starts a day.", field="per_day"))
    if not 1 <= query.count <= MAX_COUNT:
        problems.append(Problem("count_out_of_range", f"Ask for 1 to {MAX_COUNT} results.", field="limit"))
    if not 1 <= query.grid_minutes <= 60 or 60 % query.grid_minutes:
        problems.append(
            Problem("grid_invalid", "The grid must divide an hour (1, 5, 10, 15, 30 or 60 minutes).", field="grid")
        )
    if query.earliest and query.latest and query.latest < query.earliest:
        problems.append(Problem("time_of_day_inverted", "The latest start is before the earliest.", field="latest"))
    if problems:
        raise BookingInvalid(problems)


def _local_midnight(day: date, zone: ZoneInfo) -> int:
    return to_min(datetime.combine(day, time(0), tzinfo=zone))


def allowed_starts(
    zone: ZoneInfo, first: date, last: date, earliest: time | None, latest: time | None, not_before: int
) -> list[engine.Span]:
    """Closed ranges of starts the caller accepts: the times of day asked for, on each day."""
    spans = []
    day = first
    while day <= last:
        lo = to_min(datetime.combine(day, earliest or time(0), tzinfo=zone))
        hi = (
            to_min(datetime.combine(day, latest, tzinfo=zone))
            if latest
            else _local_midnight(day + timedelta(days=1), zone) - 1
        )
        lo = max(lo, not_before)
        if lo <= hi:
            spans.append((lo, hi))
        day += timedelta(days=1)
    return spans


def to_slot(rulebook: Rulebook, site_id: int, found: engine.Assignment) -> Slot:
    rows = rulebook.rows_of(found.resources)
    start = from_min(found.start)
    legs = []
    for spec in rulebook.legs:
        row = rows.get(str(spec.role))
        if row is None:
            continue
        lo, hi = spec.window(start)
        legs.append(SlotLeg(str(spec.role), LEG_ROLES[spec.role].kind, row.id, row.name, lo, hi))
    return Slot(site_id, start, max(leg.end for leg in legs), legs)


def availability_search(query: SearchQuery, *, now: datetime | None = None) -> list[Slot]:
    """The earliest ``query.count`` feasible starts, each with a resource for every leg (with
    ``query.per_day``, the first starts of each day, an hour or more apart)."""
    check_query(query)
    now = now or timezone.now()
    request = query.request
    legs = request.legs
    before = max(0, -min(s.offset for s in legs))
    after = max(s.end_offset for s in legs)
    # The day boundaries differ by site; the widest zones on earth are within 14 hours of UTC.
    lo = to_min(datetime.combine(query.date_from, time(0), tzinfo=ZoneInfo("UTC"))) - 14 * 60 - before
    hi = to_min(datetime.combine(query.date_to + timedelta(days=1), time(0), tzinfo=ZoneInfo("UTC"))) + 14 * 60 + after
    rulebook = rulebook_for(
        request, lo=lo, hi=hi, now=now, margin=0, allow_past=query.allow_past, hold_override=query.hold_override
    )
    rulebook.read_window(exclude_booking_id=query.exclude_booking_id)
    slots: list[Slot] = []
    for site in rulebook.sites():
        zone = site.zone
        window = (_local_midnight(query.date_from, zone), _local_midnight(query.date_to + timedelta(days=1), zone))
        allowed = allowed_starts(
            zone,
            query.date_from,
            query.date_to,
            query.earliest,
            query.latest,
            rulebook.not_before(site, query.not_before),
        )
        run = partial(
            engine.search,
            rulebook.pools(site),
            window,
            grid=query.grid_minutes,
            score=rulebook.score(site),
            origin=window[0],
        )
        if not query.per_day:
            slots.extend(to_slot(rulebook, site.id, one) for one in run(allowed=allowed, count=query.count))
            continue
        # Each day: its earliest start, then the earliest an hour or more after the last found.
        for first, last in allowed:
            for _ in range(query.per_day):
                found = run(allowed=[(first, last)], count=1) if first <= last else []
                if not found:
                    break
                slots.append(to_slot(rulebook, site.id, found[0]))
                first = found[0].start + PER_DAY_SPACING_MINUTES
    slots.sort(key=lambda s: (s.start, s.site_id))
    return slots[: query.count]


def explain_start(request: CaseRequest, starts_at: datetime, *, now: datetime | None = None) -> list[Problem]:
    """Every reason, in a scheduler's words, that the case cannot start at ``starts_at``;
    empty means it can be booked there."""
    now = now or timezone.now()
    start = to_min(starts_at)
    lo, hi = window_bounds(request.legs, start)
    rulebook = rulebook_for(request, lo=lo, hi=hi, now=now)
    rulebook.read_window()
    return rulebook.explain(starts_at)
