"""Availability search and explanations, on top of the pure engine.

``availability_search`` finds the earliest feasible starts; ``explain_start`` says, leg by leg,
why a requested start cannot be booked; ``assign_resources`` picks concrete resources for a
start inside the booking transaction. Each loads its inputs with the three queries of
``inputs``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from core.dates import to_local
from core.errors import BookingInvalid, Problem
from core.timewindows import expand_weekly
from patients.models import Patient
from rooms.models import DowntimeReason
from scheduling.availability import engine
from scheduling.availability.inputs import (
    Block,
    BusyLeg,
    HoldRow,
    Inventory,
    ResourceRow,
    SiteRow,
    load_blocks,
    load_busy,
    load_inventory,
)
from scheduling.guard import lock_keys
from scheduling.holdrule import hold_first_allowed_day
from scheduling.legs import LegSpec, plan_legs, resolve_sedation
from scheduling.models import BleedingRisk, LegRole, ProcedureType
from scheduling.resources import local_span

MAX_WINDOW_DAYS = 92
ARRIVAL = "arrival"
MAX_COUNT = 200

# Which kind of inventory row fills each leg role, and the staff role it must have.
STAFF_ROLE = {
    LegRole.PHYSICIAN: "physician",
    LegRole.RAD_TECH: "rad_tech",
    LegRole.SEDATION_NURSE: "nurse",
    LegRole.ANESTHESIA: "anesthesia",
    LegRole.DEVICE_REP: "device_rep",
}
EQUIPMENT_KIND = {LegRole.C_ARM: "c_arm", LegRole.RF_GENERATOR: "rf_generator"}
COLUMN_OF_KIND = {"room": "room", "equipment": "equipment", "bay": "bay", "staff": "staff", "patient": "patient"}
ROLE_NOUN = {
    LegRole.ROOM: "procedure room",
    LegRole.C_ARM: "C-arm",
    LegRole.RF_GENERATOR: "RF generator",
    LegRole.PHYSICIAN: "physician",
    LegRole.RAD_TECH: "radiology tech",
    LegRole.SEDATION_NURSE: "sedation nurse",
    LegRole.ANESTHESIA: "anesthesia provider",
    LegRole.DEVICE_REP: "device rep",
    LegRole.RECOVERY_BAY: "recovery bay",
    LegRole.PATIENT: "patient",
}


def to_min(moment: datetime) -> int:
    return int(moment.timestamp()) // 60


def ceil_min(moment: datetime) -> int:
    return -(-int(moment.timestamp()) // 60)


def from_min(minutes: int) -> datetime:
    return datetime.fromtimestamp(minutes * 60, UTC)


@dataclass(frozen=True)
class Pins:
    """Resources the caller fixed, by id; None leaves the choice to the search."""

    site_id: int | None = None
    room_id: int | None = None
    physician_id: int | None = None
    by_role: dict[str, int] = field(default_factory=dict)

    def for_role(self, role: LegRole) -> int | None:
        if role == LegRole.ROOM and self.room_id is not None:
            return self.room_id
        if role == LegRole.PHYSICIAN and self.physician_id is not None:
            return self.physician_id
        return self.by_role.get(str(role))


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
class ResourceState:
    """One candidate resource at one site: why it is not free, span by span."""

    row: ResourceRow
    working: list[engine.Span]
    # (start, end) in minutes and what blocks it; reasons are only put in words when asked for.
    blocks: list[tuple[int, int, Block | BusyLeg]]
    credential_ok: Callable[[date], bool] | None = None
    credential_problem: str = ""

    def free(self) -> list[engine.Span]:
        return engine.subtract(self.working, ((s, e) for s, e, _ in self.blocks))


@dataclass
class SitePlan:
    site: SiteRow
    zone: ZoneInfo
    pools: dict[LegRole, list[ResourceState]]
    site_hours: list[engine.Span] = field(default_factory=list)


# --- building pools -------------------------------------------------------------------------


def _candidates_for(
    role: LegRole, site: SiteRow, inv: Inventory, procedure_type: ProcedureType, sedation: str, pins: Pins
) -> list[ResourceRow]:
    pinned = pins.for_role(role)
    rows: list[ResourceRow]
    if role == LegRole.ROOM:
        needed = set(procedure_type.required_capabilities)
        if sedation == "general":
            needed.add("anesthesia")
        rows = [r for r in inv.resources if r.kind == "room" and r.site_id == site.id and needed <= set(r.capabilities)]
    elif role in EQUIPMENT_KIND:
        rows = [
            r
            for r in inv.resources
            if r.kind == "equipment" and r.site_id == site.id and r.role == EQUIPMENT_KIND[role]
        ]
        if pins.room_id is not None:
            rows = [r for r in rows if r.room_id in (None, pins.room_id)]
    elif role == LegRole.RECOVERY_BAY:
        rows = [r for r in inv.resources if r.kind == "bay" and r.site_id == site.id]
    else:
        wanted = STAFF_ROLE[role]
        rows = [r for r in inv.resources if r.kind == "staff" and r.role == wanted]
        if role == LegRole.SEDATION_NURSE:
            rows = [r for r in rows if r.sedation_capable]
    if pinned is not None:
        return [r for r in rows if r.id == pinned]
    # Unpinned pools leave out people who never held the credential; a pinned one is kept so
    # the explanation can say what is missing.
    if role == LegRole.PHYSICIAN:
        privileged = {
            c.staff_id for c in inv.credentials if c.kind == "privilege" and c.procedure_code == procedure_type.code
        }
        rows = [r for r in rows if r.id in privileged]
    elif role == LegRole.RAD_TECH:
        permitted = {c.staff_id for c in inv.credentials if c.kind == "fluoroscopy"}
        rows = [r for r in rows if r.id in permitted]
    return rows


def _credential_check(
    role: LegRole, row: ResourceRow, inv: Inventory, procedure_type: ProcedureType, site: SiteRow
) -> tuple[Callable[[date], bool] | None, str]:
    if role == LegRole.PHYSICIAN:
        held = [
            c
            for c in inv.credentials
            if c.staff_id == row.id and c.kind == "privilege" and c.procedure_code == procedure_type.code
        ]
        problem = f"{row.name} is not privileged for {procedure_type.name.lower()}"
    elif role == LegRole.RAD_TECH:
        held = [c for c in inv.credentials if c.staff_id == row.id and c.kind == "fluoroscopy"]
        if site.jurisdiction:
            held = [c for c in held if c.jurisdiction.upper() == site.jurisdiction.upper()]
        problem = f"{row.name} has no valid fluoroscopy permit" + (
            f" for {site.jurisdiction}" if site.jurisdiction else ""
        )
    else:
        return None, ""

    def valid(day: date) -> bool:
        return any(c.valid_from <= day and (c.expires_on is None or day <= c.expires_on) for c in held)

    return valid, problem


def _local_days(zone: ZoneInfo, lo: int, hi: int) -> tuple[date, date]:
    return from_min(lo).astimezone(zone).date() - timedelta(days=1), from_min(hi).astimezone(zone).date()


def _hours_spans(
    inv: Inventory, site: SiteRow, zone: ZoneInfo, room_id: int | None, lo: int, hi: int
) -> list[engine.Span]:
    rows = [h for h in inv.hours if h.site_id == site.id and h.room_id == room_id] if room_id is not None else []
    if not rows:
        rows = [h for h in inv.hours if h.site_id == site.id and h.room_id is None]
    first, last = _local_days(zone, lo, hi)
    return engine.merge(
        (to_min(i.start), to_min(i.end))
        for i in expand_weekly(((h.weekday, h.opens, h.closes) for h in rows), zone, first, last)
    )


def _shift_spans(
    inv: Inventory, staff_id: int, site: SiteRow, zone: ZoneInfo, lo: int, hi: int, ok: Callable[[date], bool] | None
) -> list[engine.Span]:
    first, last = _local_days(zone, lo, hi)
    spans = []
    for shift in inv.shifts:
        if shift.staff_id != staff_id or shift.site_id != site.id:
            continue
        for interval in expand_weekly([(shift.weekday, shift.starts, shift.ends)], zone, first, last):
            day = interval.start.astimezone(zone).date()
            if (shift.valid_from and day < shift.valid_from) or (shift.valid_until and day > shift.valid_until):
                continue
            if ok is not None and not ok(day):
                continue
            spans.append((to_min(interval.start), to_min(interval.end)))
    return engine.merge(spans)


def _block_reason(block: Block, zone: ZoneInfo, name: str) -> str:
    # A row written around validation may hold a time that falls off the calendar in this zone.
    starts, until = to_local(block.start, zone), to_local(block.end, zone)
    when = f"{until:%H:%M}" if until.date() == starts.date() else f"{until:%Y-%m-%d %H:%M}"
    if block.kind == "time_off":
        return f"{name} is off until {when}"
    if block.label == DowntimeReason.QA:
        state = "in QA"
    elif block.label in DowntimeReason.values:
        state = f"out of service ({DowntimeReason(block.label).label.lower()})"
    else:
        state = "out of service"
    return f"{name} is {state} until {when}"


def build_site_plans(
    *,
    legs: list[LegSpec],
    inv: Inventory,
    procedure_type: ProcedureType,
    sedation: str,
    pins: Pins,
    patient: Patient | None,
) -> list[SitePlan]:
    """Candidate rows per leg and site (no free time yet)."""
    plans = []
    for site in sorted(inv.sites.values(), key=lambda s: s.id):
        if pins.site_id is not None and site.id != pins.site_id:
            continue
        zone = ZoneInfo(site.timezone)
        pools: dict[LegRole, list[ResourceState]] = {}
        for spec in legs:
            if spec.role == LegRole.PATIENT:
                if patient is not None:
                    row = ResourceRow("patient", patient.pk, "the patient")
                    pools[spec.role] = [ResourceState(row, [], [])]
                continue
            pools[spec.role] = [
                ResourceState(row, [], [])
                for row in _candidates_for(spec.role, site, inv, procedure_type, sedation, pins)
            ]
        plans.append(SitePlan(site, zone, pools))
    return plans


def candidate_ids(plans: list[SitePlan]) -> dict[str, list[int]]:
    ids: dict[str, set[int]] = defaultdict(set)
    for plan in plans:
        for states in plan.pools.values():
            for state in states:
                ids[COLUMN_OF_KIND[state.row.kind]].add(state.row.id)
    return {column: sorted(values) for column, values in ids.items()}


def fill_free_time(
    plans: list[SitePlan],
    *,
    inv: Inventory,
    procedure_type: ProcedureType,
    blocks: list[Block],
    busy: list[BusyLeg],
    lo: int,
    hi: int,
) -> None:
    """Working time and labelled blocks for every candidate over ``[lo, hi)`` minutes."""
    blocks_by: dict[tuple[str, int], list[Block]] = defaultdict(list)
    for block in blocks:
        blocks_by[(block.column, block.resource_id)].append(block)
    busy_by: dict[tuple[str, int], list[BusyLeg]] = defaultdict(list)
    for leg in busy:
        busy_by[(leg.column, leg.resource_id)].append(leg)

    for plan in plans:
        zone = plan.zone
        plan.site_hours = _hours_spans(inv, plan.site, zone, None, lo, hi)
        for role, states in plan.pools.items():
            for state in states:
                row = state.row
                column = COLUMN_OF_KIND[row.kind]
                if row.kind == "patient":
                    state.working = [(lo, hi)]
                elif row.kind == "room":
                    state.working = _hours_spans(inv, plan.site, zone, row.id, lo, hi)
                elif row.kind in ("bay", "equipment"):
                    state.working = _hours_spans(inv, plan.site, zone, None, lo, hi)
                else:
                    ok, problem = _credential_check(role, row, inv, procedure_type, plan.site)
                    state.credential_ok, state.credential_problem = ok, problem
                    state.working = _shift_spans(inv, row.id, plan.site, zone, lo, hi, ok)
                labelled: list[tuple[int, int, Block | BusyLeg]] = [
                    (to_min(b.start), ceil_min(b.end), b) for b in blocks_by.get((column, row.id), [])
                ]
                labelled += [(leg.start_s // 60, -(-leg.end_s // 60), leg) for leg in busy_by.get((column, row.id), [])]
                state.blocks = labelled


def _describe_block(source: Block | BusyLeg, row: ResourceRow, zone: ZoneInfo) -> tuple[str, dict[str, Any] | None]:
    """A block in a scheduler's words, and the clashing leg when a booking holds the resource."""
    if isinstance(source, Block):
        return _block_reason(source, zone, row.name), None
    span = local_span(source.start, source.end, zone)
    reason = f"the patient already has a case {span}" if row.kind == "patient" else f"{row.name} is booked {span}"
    clash = {
        "resource": {"kind": "recovery_bay" if row.kind == "bay" else row.kind, "id": row.id, "name": row.name},
        "clashing": {
            "booking": source.booking_id,
            "role": source.role,
            "start": source.start.isoformat(),
            "end": source.end.isoformat(),
        },
    }
    return reason, clash


def engine_pools(plan: SitePlan, legs: list[LegSpec]) -> list[engine.LegPool]:
    pools = []
    for spec in legs:
        states = plan.pools.get(spec.role)
        if states is None:
            continue  # the patient leg when no patient is given
        candidates = [
            engine.Candidate(
                key=(COLUMN_OF_KIND[s.row.kind], s.row.id),
                free=s.free(),
                room_id=s.row.room_id if s.row.kind == "equipment" else None,
            )
            for s in states
        ]
        pools.append(engine.LegPool(str(spec.role), spec.offset, spec.minutes, candidates))
    patient = next(spec for spec in legs if spec.role == LegRole.PATIENT)
    if patient.offset < 0:
        # Pre-op happens at the clinic: the site must be open from the patient's arrival.
        site = engine.Candidate(key=("site", plan.site.id), free=plan.site_hours)
        pools.append(engine.LegPool(ARRIVAL, patient.offset, -patient.offset, [site]))
    return pools


# --- preferences ----------------------------------------------------------------------------


def make_score(
    busy: list[BusyLeg], zone: ZoneInfo, pins: Pins
) -> Callable[[str, engine.Candidate, int, dict[str, engine.Candidate]], tuple[int, ...]]:
    """Keep a physician's day in one room; spread patients over the recovery bays."""
    room_of_booking = {leg.booking_id: leg.resource_id for leg in busy if leg.role == LegRole.ROOM}
    physician_rooms: dict[tuple[int, date], set[int]] = defaultdict(set)
    bay_load: dict[tuple[int, date], int] = defaultdict(int)

    @lru_cache(maxsize=4096)
    def day_of_hour(hour: int) -> date:
        # Offsets change on the hour, so the local date of an hour is the date of all its minutes.
        return datetime.fromtimestamp(hour * 3600, UTC).astimezone(zone).date()

    for leg in busy:
        if leg.role not in (LegRole.PHYSICIAN, LegRole.RECOVERY_BAY):
            continue
        day = day_of_hour(leg.start_s // 3600)
        if leg.role == LegRole.PHYSICIAN and leg.booking_id in room_of_booking:
            physician_rooms[(leg.resource_id, day)].add(room_of_booking[leg.booking_id])
        elif leg.role == LegRole.RECOVERY_BAY:
            bay_load[(leg.resource_id, day)] += 1

    def score(
        role: str, candidate: engine.Candidate, start: int, chosen: dict[str, engine.Candidate]
    ) -> tuple[int, ...]:
        day = day_of_hour(start // 60)
        if role == LegRole.ROOM and pins.physician_id is not None:
            return (0 if candidate.key[1] in physician_rooms.get((pins.physician_id, day), ()) else 1,)
        if role == LegRole.PHYSICIAN and "room" in chosen:
            return (0 if chosen["room"].key[1] in physician_rooms.get((candidate.key[1], day), ()) else 1,)
        if role == LegRole.RECOVERY_BAY:
            return (bay_load.get((candidate.key[1], day), 0),)
        return (0,)

    return score


# --- search ---------------------------------------------------------------------------------


@dataclass
class SearchQuery:
    procedure_type: ProcedureType
    date_from: date
    date_to: date
    levels: int = 1
    sedation: str | None = None
    pins: Pins = field(default_factory=Pins)
    earliest: time | None = None
    latest: time | None = None
    count: int = 10
    grid_minutes: int = 5
    patient: Patient | None = None
    not_before: datetime | None = None


def _check_query(query: SearchQuery) -> None:
    problems = []
    days = (query.date_to - query.date_from).days + 1
    if days < 1:
        problems.append(Problem("window_inverted", "The window ends before it starts.", field="to"))
    elif days > MAX_WINDOW_DAYS:
        problems.append(
            Problem("window_too_large", f"Search at most {MAX_WINDOW_DAYS} days at a time; {days} asked.", field="to")
        )
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


def hold_end(holds: list[HoldRow], today: date) -> tuple[date, HoldRow] | None:
    """The first day a high-bleeding-risk case may take place, and the hold that sets it."""
    best: tuple[date, HoldRow] | None = None
    for hold in holds:
        ends = hold_first_allowed_day(hold.last_dose_on, hold.hold_days, today)
        if best is None or ends > best[0]:
            best = (ends, hold)
    return best


def _allowed_starts(
    zone: ZoneInfo, first: date, last: date, earliest: time | None, latest: time | None, not_before: int
) -> list[engine.Span]:
    spans = []
    day = first
    while day <= last:
        lo = to_min(datetime.combine(day, earliest or time(0), tzinfo=zone))
        hi = (
            to_min(datetime.combine(day, latest, tzinfo=zone))
            if latest
            else to_min(datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)) - 1
        )
        lo = max(lo, not_before)
        if lo <= hi:
            spans.append((lo, hi))
        day += timedelta(days=1)
    return spans


def availability_search(query: SearchQuery, *, now: datetime | None = None) -> list[Slot]:
    """The earliest ``query.count`` feasible starts, each with a resource for every leg.

    Three queries whatever the window or the number of resources.
    """
    _check_query(query)
    sedation = resolve_sedation(query.procedure_type, query.sedation)
    legs = plan_legs(query.procedure_type, levels=query.levels, sedation=sedation)
    now = now or timezone.now()
    staff_roles = sorted({STAFF_ROLE[s.role] for s in legs if s.role in STAFF_ROLE})
    inv = load_inventory(site_id=query.pins.site_id, staff_roles=staff_roles)
    plans = build_site_plans(
        legs=legs,
        inv=inv,
        procedure_type=query.procedure_type,
        sedation=sedation,
        pins=query.pins,
        patient=query.patient,
    )
    if not plans:
        return []
    before = max(0, -min(s.offset for s in legs))
    after = max(s.end_offset for s in legs)
    windows = {
        plan.site.id: (
            to_min(datetime.combine(query.date_from, time(0), tzinfo=plan.zone)),
            to_min(datetime.combine(query.date_to + timedelta(days=1), time(0), tzinfo=plan.zone)),
        )
        for plan in plans
    }
    lo = min(w[0] for w in windows.values()) - before
    hi = max(w[1] for w in windows.values()) + after
    blocks, holds = load_blocks(
        start=from_min(lo), end=from_min(hi), patient_id=query.patient.pk if query.patient else None
    )
    busy = load_busy(ids=candidate_ids(plans), start=from_min(lo), end=from_min(hi))
    fill_free_time(plans, inv=inv, procedure_type=query.procedure_type, blocks=blocks, busy=busy, lo=lo, hi=hi)

    slots: list[Slot] = []
    for plan in plans:
        not_before = ceil_min(max(now, query.not_before) if query.not_before else now)
        if query.procedure_type.bleeding_risk == BleedingRisk.HIGH:
            ends = hold_end(holds, now.astimezone(plan.zone).date())
            if ends is not None:
                not_before = max(not_before, to_min(datetime.combine(ends[0], time(0), tzinfo=plan.zone)))
        allowed = _allowed_starts(plan.zone, query.date_from, query.date_to, query.earliest, query.latest, not_before)
        pools = engine_pools(plan, legs)
        origin = windows[plan.site.id][0]
        found = engine.search(
            pools,
            windows[plan.site.id],
            grid=query.grid_minutes,
            count=query.count,
            allowed=allowed,
            score=make_score(busy, plan.zone, query.pins),
            origin=origin,
        )
        slots.extend(_to_slot(plan, legs, found_one) for found_one in found)
    slots.sort(key=lambda s: (s.start, s.site_id))
    return slots[: query.count]


def _to_slot(plan: SitePlan, legs: list[LegSpec], found: engine.Assignment) -> Slot:
    names = {(COLUMN_OF_KIND[s.row.kind], s.row.id): s.row.name for states in plan.pools.values() for s in states}
    out = []
    start = from_min(found.start)
    for spec in legs:
        candidate = found.resources.get(str(spec.role))
        if candidate is None:
            continue
        lo, hi = spec.window(start)
        kind = "recovery_bay" if candidate.key[0] == "bay" else candidate.key[0]
        out.append(SlotLeg(str(spec.role), kind, candidate.key[1], names[candidate.key], lo, hi))
    return Slot(plan.site.id, start, max(leg.end for leg in out), out)


# --- explaining a start ---------------------------------------------------------------------


def _why_not(
    state: ResourceState, role: LegRole, lo: int, hi: int, zone: ZoneInfo
) -> tuple[str, dict[str, Any] | None] | None:
    """Why this candidate cannot hold ``[lo, hi)`` (and the clashing leg, if a booking), or None."""
    row = state.row
    if state.credential_ok is not None and not state.credential_ok(from_min(lo).astimezone(zone).date()):
        return state.credential_problem, None
    if not engine.contains(engine.merge(state.working), lo, hi):
        if row.kind == "staff":
            return f"outside {row.name}'s shift", None
        where = f"{row.name} is outside opening hours" if row.kind == "room" else "outside the site's opening hours"
        return where, None
    for start, end, source in sorted(state.blocks, key=lambda b: (b[0], b[1])):
        if start < hi and lo < end:
            return _describe_block(source, row, zone)
    return None


def explain_start(
    *,
    procedure_type: ProcedureType,
    starts_at: datetime,
    levels: int = 1,
    sedation: str | None = None,
    pins: Pins | None = None,
    patient: Patient | None = None,
    now: datetime | None = None,
) -> list[Problem]:
    """Every reason, in a scheduler's words, that a case cannot start at ``starts_at``.

    An empty list means the start is feasible. Three queries.
    """
    pins = pins or Pins()
    sedation = resolve_sedation(procedure_type, sedation)
    legs = plan_legs(procedure_type, levels=levels, sedation=sedation)
    now = now or timezone.now()
    staff_roles = sorted({STAFF_ROLE[s.role] for s in legs if s.role in STAFF_ROLE})
    inv = load_inventory(site_id=pins.site_id, staff_roles=staff_roles)
    plans = build_site_plans(
        legs=legs, inv=inv, procedure_type=procedure_type, sedation=sedation, pins=pins, patient=patient
    )
    start = to_min(starts_at)
    lo = start + min(s.offset for s in legs)
    hi = start + max(s.end_offset for s in legs)
    blocks, holds = load_blocks(start=from_min(lo), end=from_min(hi), patient_id=patient.pk if patient else None)
    busy = load_busy(ids=candidate_ids(plans), start=from_min(lo), end=from_min(hi))
    fill_free_time(
        plans, inv=inv, procedure_type=procedure_type, blocks=blocks, busy=busy, lo=lo - 24 * 60, hi=hi + 24 * 60
    )
    if not plans:
        return [Problem("no_site", "No active site matches the request.")]

    best: list[Problem] | None = None
    for plan in plans:
        problems = _explain_at_site(plan, legs, start, procedure_type, holds, now)
        if not problems:
            return []
        if best is None or len(problems) < len(best):
            best = problems
    return best or []


def _explain_at_site(
    plan: SitePlan, legs: list[LegSpec], start: int, procedure_type: ProcedureType, holds: list[HoldRow], now: datetime
) -> list[Problem]:
    zone = plan.zone
    problems: list[Problem] = []
    moment = from_min(start)
    if moment < now:
        problems.append(Problem("starts_in_past", "That start is in the past."))
    if procedure_type.bleeding_risk == BleedingRisk.HIGH:
        ends = hold_end(holds, now.astimezone(zone).date())
        if ends is not None and moment.astimezone(zone).date() < ends[0]:
            problems.append(
                Problem(
                    "anticoagulant_hold",
                    f"The patient's {ends[1].medication} hold runs until {ends[0] - timedelta(days=1)}; "
                    f"a high-bleeding-risk case can start on {ends[0]}.",
                    extra={"earliest_date": ends[0].isoformat()},
                )
            )
    arrival = next(spec for spec in legs if spec.role == LegRole.PATIENT)
    if arrival.offset < 0 and not engine.contains(plan.site_hours, start + arrival.offset, start):
        problems.append(
            Problem(
                "arrival_outside_opening_hours",
                f"The patient would arrive at {from_min(start + arrival.offset).astimezone(zone):%H:%M}, "
                f"when {plan.site.name} is closed.",
                role=str(LegRole.PATIENT),
            )
        )
    for spec in legs:
        states = plan.pools.get(spec.role)
        if states is None:
            continue
        lo, hi = spec.offset + start, spec.end_offset + start
        span = local_span(from_min(lo), from_min(hi), zone)
        noun = ROLE_NOUN[spec.role]
        if not states:
            problems.append(
                Problem("no_candidate", f"No {noun} at {plan.site.name} can do this case.", role=str(spec.role))
            )
            continue
        found = {s.row.name: _why_not(s, spec.role, lo, hi, zone) for s in states}
        if all(found.values()):
            reasons = {name: why[0] for name, why in found.items() if why}
            clashes = [why[1] for why in found.values() if why and why[1]]
            if len(states) == 1:
                message = str(next(iter(reasons.values())))
                message = message[0].upper() + message[1:]
                message = f"{message} ({noun} needed {span})." if not message.endswith(")") else message + "."
            else:
                message = f"No {noun} free {span}."
            problems.append(
                Problem(
                    "leg_unavailable",
                    message,
                    role=str(spec.role),
                    extra={
                        "candidates": reasons,
                        "requested": {"start": from_min(lo).isoformat(), "end": from_min(hi).isoformat()},
                        **({"clashes": clashes} if clashes else {}),
                    },
                )
            )
    if not problems:
        pools = engine_pools(plan, legs)
        if engine.assign(pools, start) is None:
            problems.append(
                Problem(
                    "no_combination",
                    "Every leg has a free resource, but not together: the free C-arms are fixed in rooms "
                    "that are busy, or one person would be needed twice.",
                )
            )
    return problems


# --- picking resources for a booking --------------------------------------------------------


def lock_candidates(plans: Iterable[SitePlan]) -> None:
    """Advisory-lock every candidate resource in the global order used by the booking guard."""
    lock_keys((column, rid) for column, ids in candidate_ids(list(plans)).items() for rid in ids)


def assign_resources(
    *,
    procedure_type: ProcedureType,
    starts_at: datetime,
    levels: int,
    sedation: str,
    pins: Pins,
    patient: Patient,
) -> tuple[int, dict[str, tuple[str, int]]] | None:
    """Pick a resource for every leg at ``starts_at`` with the search engine.

    Must run inside the booking transaction: on PostgreSQL every candidate is advisory-locked
    (in the guard's order) before busy time is read, so the choice cannot be raced.
    Returns (site id, {role: (column, id)}), or None when no combination is free.
    """
    legs = plan_legs(procedure_type, levels=levels, sedation=sedation)
    staff_roles = sorted({STAFF_ROLE[s.role] for s in legs if s.role in STAFF_ROLE})
    inv = load_inventory(site_id=pins.site_id, staff_roles=staff_roles)
    plans = build_site_plans(
        legs=legs, inv=inv, procedure_type=procedure_type, sedation=sedation, pins=pins, patient=patient
    )
    lock_candidates(plans)
    start = to_min(starts_at)
    lo = start + min(s.offset for s in legs)
    hi = start + max(s.end_offset for s in legs)
    blocks, _ = load_blocks(start=from_min(lo), end=from_min(hi), patient_id=None)
    busy = load_busy(ids=candidate_ids(plans), start=from_min(lo), end=from_min(hi))
    fill_free_time(
        plans, inv=inv, procedure_type=procedure_type, blocks=blocks, busy=busy, lo=lo - 24 * 60, hi=hi + 24 * 60
    )
    for plan in plans:
        pools = engine_pools(plan, legs)
        chosen = engine.assign(pools, start, score=make_score(busy, plan.zone, pins))
        if chosen is not None:
            return plan.site.id, {role: c.key for role, c in chosen.items() if role not in (ARRIVAL, LegRole.PATIENT)}
    return None
