"""The rulebook: every rule about whether a case may take place at a start with given resources,
written once, over one snapshot of the clinic (``rules.inputs``).

Its callers ask it different questions and it answers each from the same rules:

- the booking services: ``decide`` picks resources for what the caller left open and refuses
  with every problem of what it pinned (``check`` for a complete set);
- the search: ``pools`` gives each leg's candidates with their free time (working time minus
  every block), ``allowed_starts`` the starts the case rules leave, for the interval engine;
- the reasons endpoint: ``explain`` puts every failing rule in a scheduler's words;
- the readiness gate, on the day, asks ``hold_verdict`` (the same rule the booking obeyed).

The rules, by what they look at:

- the case: levels and sedation the procedure allows (planning), not in the past, the site open
  from the patient's arrival, the patient's anticoagulant and antiplatelet holds;
- each resource, whatever the time (``static_problems``): right kind for the role, in service,
  at the case's site, a room with the capabilities the procedure (and general anaesthesia)
  needs, a sedation-capable nurse;
- each resource over its leg's window (``leg_problems``): working time (room or site hours,
  shifts on days the privilege or permit is valid), downtime, time off, and any other case
  holding it (a clash, reported apart so callers can answer 409 rather than 422);
- pairs (``pair_problems``): equipment fixed in another room, one person in two roles.

Times are integer minutes since the epoch; nothing here queries the database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from core.dates import to_local
from core.errors import Problem, UnknownReference
from core.timewindows import expand_weekly
from rooms.models import DowntimeReason
from scheduling.availability import engine
from scheduling.guard import lock_keys
from scheduling.holdrule import HoldVerdict, hold_verdict
from scheduling.legroles import LEG_ROLES, LegRole
from scheduling.legs import LegSpec
from scheduling.models import Sedation
from scheduling.request import CaseRequest
from scheduling.rules.inputs import (
    Block,
    BusyLeg,
    Inventory,
    ResourceRow,
    SiteRow,
    Wanted,
    Window,
    load_window,
)
from scheduling.words import local_span

ARRIVAL = "arrival"
DAY = 24 * 60
# The clash codes: another case holds the resource. Callers answer these with 409 and
# alternatives; every other problem breaks a rule (422).
CLASH_CODES = frozenset({"resource_booked", "patient_busy"})
# Which inventory table a pin field names.
PIN_COLUMN = {
    "room": "room",
    "c_arm": "equipment",
    "rf_generator": "equipment",
    "physician": "staff",
    "rad_tech": "staff",
    "sedation_staff": "staff",
    "device_rep": "staff",
    "recovery_bay": "bay",
}


ON_THE_MINUTE = Problem("start_not_on_minute", "A case starts on a whole minute.", field="start")


def not_on_minute(moment: datetime) -> bool:
    return bool(moment.second or moment.microsecond)


def to_min(moment: datetime) -> int:
    return int(moment.timestamp()) // 60


def ceil_min(moment: datetime) -> int:
    return -(-int(moment.timestamp()) // 60)


def from_min(minutes: int) -> datetime:
    return datetime.fromtimestamp(minutes * 60, UTC)


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass
class ResourceState:
    """One resource in one role at one site: when it works, and what blocks it."""

    row: ResourceRow
    working: list[engine.Span]
    blocks: list[tuple[int, int, Block | BusyLeg]]
    # Shifts before the privilege or permit is applied, to tell "not on shift" from "not
    # credentialed" in words; ``working`` is what counts.
    shifts: list[engine.Span] | None = None
    credential_valid: Callable[[date], bool] | None = None
    credential_problem: Callable[[date], tuple[str, str]] | None = None

    def free(self) -> list[engine.Span]:
        return engine.subtract(self.working, ((s, e) for s, e, _ in self.blocks))


@dataclass
class Decision:
    """What the booking services write: the site, and a resource row for every leg."""

    site: SiteRow
    start: int
    chosen: dict[str, ResourceRow]


@dataclass
class Refusal:
    """Why a case cannot be booked at a start. ``problems`` break rules, ``clashes`` are other
    cases holding pinned resources; with neither, the engine found no combination for the open
    legs and ``explain`` says why (worked out by the caller once its locks are released)."""

    site: SiteRow | None
    problems: list[Problem] = field(default_factory=list)
    clashes: list[Problem] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.problems) + len(self.clashes)


def wanted_for(request: CaseRequest) -> Wanted:
    """The inventory a request reads: every candidate of the roles it leaves open, and what
    it pins."""
    open_roles = [spec.role for spec in request.legs if spec.role != LegRole.PATIENT and request.pin(spec.role) is None]
    pinned: dict[str, set[int]] = defaultdict(set)
    for name, pk in request.pins.items():
        pinned[PIN_COLUMN[name]].add(pk)
    return Wanted(
        site_id=request.site_id,
        rooms=LegRole.ROOM in open_roles,
        equipment_kinds=frozenset(kind for role in open_roles if (kind := LEG_ROLES[role].equipment_kind) is not None),
        bays=LegRole.RECOVERY_BAY in open_roles,
        staff_roles=frozenset(sr for role in open_roles if (sr := LEG_ROLES[role].staff_role) is not None),
        pinned={column: frozenset(ids) for column, ids in pinned.items()},
    )


def resolve_pins(request: CaseRequest, inventory: Inventory) -> None:
    """Every pinned id must exist; an unknown one is refused like an unknown id anywhere."""
    unknown = {
        name: pk for name, pk in sorted(request.pins.items()) if (PIN_COLUMN[name], pk) not in inventory.resources
    }
    if request.site_id is not None and request.site_id not in inventory.sites:
        unknown["site"] = request.site_id
    if unknown:
        raise UnknownReference(unknown)


def opening_spans(
    inventory: Inventory, site: SiteRow, room_id: int | None, first: date, last: date
) -> list[engine.Span]:
    """Opening hours of a room (its own rows, else the site's), or of the site, over the local
    days ``first`` to ``last``, in minutes."""
    rows = [h for h in inventory.hours if h.site_id == site.id and h.room_id == room_id] if room_id else []
    if not rows:
        rows = [h for h in inventory.hours if h.site_id == site.id and h.room_id is None]
    return engine.merge(
        (to_min(i.start), to_min(i.end))
        for i in expand_weekly(((h.weekday, h.opens, h.closes) for h in rows), site.zone, first, last)
    )


def shift_days(
    inventory: Inventory, row: ResourceRow, site: SiteRow, first: date, last: date
) -> list[tuple[date, engine.Span]]:
    """Each shift of staff member ``row`` at ``site`` over the local days ``first`` to ``last``,
    as (local day, minutes)."""
    zone = site.zone
    days = []
    for shift in inventory.shifts.get(row.id, ()):
        if shift.site_id != site.id:
            continue
        for interval in expand_weekly([(shift.weekday, shift.starts, shift.ends)], zone, first, last):
            day = interval.start.astimezone(zone).date()
            if (shift.valid_from and day < shift.valid_from) or (shift.valid_until and day > shift.valid_until):
                continue
            days.append((day, (to_min(interval.start), to_min(interval.end))))
    return days


class Rulebook:
    """The rules for one request over one snapshot. ``span`` (minutes) is the stretch of time
    the working hours are expanded over; every start asked about must lie well inside it."""

    def __init__(
        self,
        request: CaseRequest,
        inventory: Inventory,
        window: Window,
        *,
        now: datetime,
        span: tuple[int, int],
        allow_past: bool = False,
        hold_override: bool = False,
        prefer: dict[str, tuple[str, int]] | None = None,
    ) -> None:
        self.request = request
        self.procedure = request.procedure_type
        self.legs: list[LegSpec] = request.legs
        self.inventory = inventory
        self.window = window
        self.now = now
        self.span = span
        self.allow_past = allow_past
        self.hold_override = hold_override
        self.prefer = prefer or {}
        self._states: dict[tuple[int, str, tuple[str, int]], ResourceState] = {}
        self._site_hours: dict[int, list[engine.Span]] = {}
        resolve_pins(request, inventory)

    def candidate_keys(self) -> dict[str, list[int]]:
        """Every resource any leg could use, by column: the pinned ones, every candidate of the
        open legs, and the patient. The booking services lock these; the window loads them."""
        keys: dict[str, set[int]] = defaultdict(set)
        for site in self.sites():
            for spec in self.legs:
                row = self._pinned_or_patient(spec)
                rows = [row] if row is not None else []
                if row is None and spec.role != LegRole.PATIENT:
                    rows = self.candidates(site, str(spec.role))
                for one in rows:
                    keys[one.column].add(one.id)
        return {column: sorted(ids) for column, ids in keys.items()}

    def read_window(
        self, *, lock: bool = False, exclude_booking_id: int | None = None, exclude_booking_ids: Collection[int] = ()
    ) -> Window:
        """Read the window (query 2) for every resource the case could use.

        ``lock``: first take the booking guard's advisory lock on each of them, in the guard's
        order (the caller's transaction holds them until it ends), so what is read as free
        cannot be taken before the caller writes. Legs of ``exclude_booking_id`` (a case being
        moved or confirmed) are left out.
        """
        keys = self.candidate_keys()
        if lock:
            lock_keys((column, pk) for column, ids in keys.items() for pk in ids)
        lo, hi = self.window.start_s // 60, self.window.end_s // 60
        self.window = load_window(
            ids=keys,
            start=from_min(lo),
            end=from_min(hi),
            now=self.now,
            patient_id=self.request.patient_id,
            exclude_booking_id=exclude_booking_id,
            exclude_booking_ids=exclude_booking_ids,
        )
        self._states.clear()
        return self.window

    # --- sites and candidates -------------------------------------------------------------

    def sites(self) -> list[SiteRow]:
        """Where the case may take place: the site asked for, else the sites of the pinned
        rooms, equipment and bays, else every active site, in id order."""
        inv = self.inventory
        if self.request.site_id is not None:
            return [inv.sites[self.request.site_id]]
        pinned_sites = {
            row.site_id
            for name, pk in self.request.pins.items()
            if (row := inv.resources.get((PIN_COLUMN[name], pk))) is not None and row.site_id is not None
        }
        if pinned_sites:
            return [inv.sites[pk] for pk in sorted(pinned_sites) if pk in inv.sites]
        return [site for _, site in sorted(inv.sites.items()) if site.is_active]

    def pinned_row(self, role: str) -> ResourceRow | None:
        pk = self.request.pin(role)
        if pk is None:
            return None
        return self.inventory.resources[(LEG_ROLES[role].column, pk)]

    def patient_row(self) -> ResourceRow | None:
        patient = self.request.patient
        if patient is None:
            return None
        return ResourceRow("patient", patient.pk, "the patient")

    def needed_capabilities(self) -> set[str]:
        needed = set(self.procedure.required_capabilities)
        if self.request.sedation_level == Sedation.GENERAL:
            # General anaesthesia needs the room's gases, monitoring and scavenging.
            needed.add("anesthesia")
        return needed

    def static_problems(self, site: SiteRow, role: str, row: ResourceRow) -> list[Problem]:
        """Rules about a resource in a role that hold whatever the time."""
        info = LEG_ROLES[role]
        problems: list[Problem] = []

        def add(code: str, message: str) -> None:
            problems.append(Problem(code, message, role=role, resource=describe(row)))

        if info.staff_role is not None and row.role != info.staff_role:
            add("wrong_resource_kind", f"{row.name} is not a {info.noun}.")
            return problems
        if info.equipment_kind is not None and row.role != info.equipment_kind:
            add("wrong_resource_kind", f"{row.name} is not a {info.noun}.")
            return problems
        if not row.is_active:
            add("resource_inactive", f"{row.name} is not in service.")
        if row.site_id is not None and row.site_id != site.id:
            add("wrong_site", f"{row.name} belongs to another site than {site.name}.")
        if role == LegRole.ROOM:
            missing = self.needed_capabilities() - set(row.capabilities)
            if missing:
                add(
                    "room_lacks_capability",
                    f"{row.name} lacks {', '.join(sorted(missing))} needed for {self.procedure.code}"
                    + (" under general anaesthesia." if "anesthesia" in missing else "."),
                )
        if role == LegRole.SEDATION_NURSE and not row.sedation_capable:
            add("not_sedation_capable", f"{row.name} is not a sedation-capable nurse.")
        return problems

    def candidates(self, site: SiteRow, role: str) -> list[ResourceRow]:
        """The resources that could fill an open role at a site: every one that passes the
        static rules and has ever held the credential the role needs."""
        info = LEG_ROLES[role]
        rows = [
            row
            for row in self.inventory.of_column(info.column)
            if row.is_active
            and (row.site_id in (None, site.id))
            and (info.staff_role is None or row.role == info.staff_role)
            and (info.equipment_kind is None or row.role == info.equipment_kind)
        ]
        rows = [row for row in rows if not self.static_problems(site, role, row)]
        room = self.pinned_row(LegRole.ROOM)
        if info.equipment_kind is not None and room is not None:
            # Equipment fixed in another room can never join a case pinned to this one.
            rows = [row for row in rows if row.room_id in (None, room.id)]
        if role == LegRole.PHYSICIAN:
            code = self.procedure.code
            rows = [
                r
                for r in rows
                if any(c.kind == "privilege" and c.procedure_code == code for c in self.inventory.credentials[r.id])
            ]
        elif role == LegRole.RAD_TECH:
            rows = [r for r in rows if any(c.kind == "fluoroscopy" for c in self.inventory.credentials[r.id])]
        return rows

    # --- working time and blocks ------------------------------------------------------------

    def _local_days(self, zone: ZoneInfo) -> tuple[date, date]:
        lo, hi = self.span
        return from_min(lo).astimezone(zone).date() - timedelta(days=1), from_min(hi).astimezone(zone).date()

    def hours(self, site: SiteRow, room_id: int | None) -> list[engine.Span]:
        """Opening hours of a room (its own rows, else the site's), or of the site."""
        if room_id is None and site.id in self._site_hours:
            return self._site_hours[site.id]
        first, last = self._local_days(site.zone)
        spans = opening_spans(self.inventory, site, room_id, first, last)
        if room_id is None:
            self._site_hours[site.id] = spans
        return spans

    def _credential(
        self, role: str, row: ResourceRow, site: SiteRow
    ) -> tuple[Callable[[date], bool] | None, Callable[[date], tuple[str, str]] | None]:
        held = self.inventory.credentials[row.id]
        if role == LegRole.PHYSICIAN:
            code = self.procedure.code
            privileges = [c for c in held if c.kind == "privilege" and c.procedure_code == code]

            def privileged(day: date) -> bool:
                return any(c.valid_on(day) for c in privileges)

            def problem(day: date) -> tuple[str, str]:
                what = self.procedure.name.lower()
                if privileges:
                    return "physician_not_privileged", f"{row.name}'s privilege for {what} is not valid on {day}"
                return "physician_not_privileged", f"{row.name} is not privileged for {what}"

            return privileged, problem
        if role == LegRole.RAD_TECH:
            permits = [c for c in held if c.kind == "fluoroscopy"]
            if site.jurisdiction:
                permits = [c for c in permits if c.jurisdiction.upper() == site.jurisdiction.upper()]
            where = f" for {site.jurisdiction}" if site.jurisdiction else ""

            def permitted(day: date) -> bool:
                return any(c.valid_on(day) for c in permits)

            def problem(day: date) -> tuple[str, str]:
                if permits:
                    return "tech_credential_invalid", f"{row.name}'s fluoroscopy permit{where} is not valid on {day}"
                return "tech_credential_invalid", f"{row.name} has no valid fluoroscopy permit{where}"

            return permitted, problem
        return None, None

    def _shift_days(self, row: ResourceRow, site: SiteRow) -> list[tuple[date, engine.Span]]:
        """Each shift of ``row`` at ``site`` within the span, as (local day, minutes)."""
        first, last = self._local_days(site.zone)
        return shift_days(self.inventory, row, site, first, last)

    @staticmethod
    def _shift_spans(days: list[tuple[date, engine.Span]], valid: Callable[[date], bool] | None) -> list[engine.Span]:
        return engine.merge([span for day, span in days if valid is None or valid(day)])

    def state(self, site: SiteRow, role: str, row: ResourceRow) -> ResourceState:
        cache_key = (site.id, str(role), row.key)
        cached = self._states.get(cache_key)
        if cached is not None:
            return cached
        lo, hi = self.span
        credential_valid, credential_problem = None, None
        shifts = None
        if row.column in ("patient", "equipment"):
            # A patient is always free but for their other cases; equipment has no hours of its
            # own, it is usable whenever it is not down or in another case.
            working = [(lo, hi)]
        elif row.column == "room":
            working = self.hours(site, row.id)
        elif row.column == "bay":
            working = self.hours(site, None)
        else:
            credential_valid, credential_problem = self._credential(role, row, site)
            days = self._shift_days(row, site)
            shifts = self._shift_spans(days, None)
            working = shifts if credential_valid is None else self._shift_spans(days, credential_valid)
        blocks: list[tuple[int, int, Block | BusyLeg]] = [
            (b.start_s // 60, -(-b.end_s // 60), b) for b in self.window.blocks.get(row.key, ())
        ]
        blocks += [(leg.start_s // 60, -(-leg.end_s // 60), leg) for leg in self.window.busy.get(row.key, ())]
        blocks.sort(key=lambda b: (b[0], b[1]))
        state = ResourceState(row, working, blocks, shifts, credential_valid, credential_problem)
        self._states[cache_key] = state
        return state

    # --- words ------------------------------------------------------------------------------

    def _block_words(self, source: Block | BusyLeg, row: ResourceRow, zone: ZoneInfo) -> tuple[str, str]:
        """(code, reason) for one block, lower-case, without the leg it stands in."""
        if isinstance(source, BusyLeg):
            span = local_span(source.start, source.end, zone)
            if row.column == "patient":
                return "patient_busy", f"the patient already has a case {span}"
            return "resource_booked", f"{row.name} is booked {span}"
        starts, until = to_local(source.start, zone), to_local(source.end, zone)
        when = f"{until:%H:%M}" if until.date() == starts.date() else f"{until:%Y-%m-%d %H:%M}"
        if source.kind == "time_off":
            return "staff_time_off", f"{row.name} is off until {when}"
        if source.label == DowntimeReason.QA:
            state = "in QA"
        elif source.label in DowntimeReason.values:
            state = f"out of service ({DowntimeReason(source.label).label.lower()})"
        else:
            state = "out of service"
        return "resource_downtime", f"{row.name} is {state} until {when}"

    def _outside_words(self, row: ResourceRow, site: SiteRow) -> tuple[str, str]:
        if row.column == "staff":
            return "outside_shift", f"outside {row.name}'s shift at {site.name}"
        if row.column == "room":
            return "outside_opening_hours", f"{row.name} is outside opening hours"
        return "outside_opening_hours", f"outside {site.name}'s opening hours"

    def reasons(self, site: SiteRow, role: str, row: ResourceRow, lo: int, hi: int) -> list[tuple[str, str, Any]]:
        """(code, reason, the source) for every time rule the resource breaks over ``[lo, hi)``,
        in order: credential, working time, then each block."""
        state = self.state(site, role, row)
        out: list[tuple[str, str, Any]] = []
        if not engine.contains(state.working, lo, hi):
            day = from_min(lo).astimezone(site.zone).date()
            credential = state.credential_valid is not None and not state.credential_valid(day)
            if credential:
                assert state.credential_problem is not None
                code, text = state.credential_problem(day)
                out.append((code, text, None))
            raw = state.shifts if state.shifts is not None else state.working
            if not credential or not engine.contains(raw, lo, hi):
                code, text = self._outside_words(row, site)
                out.append((code, text, None))
        for start, end, source in state.blocks:
            if start < hi and lo < end:
                code, text = self._block_words(source, row, site.zone)
                out.append((code, text, source))
        return out

    def leg_problems(self, site: SiteRow, spec: LegSpec, row: ResourceRow, start: int) -> list[Problem]:
        """Every time rule ``row`` breaks as ``spec``'s resource for a case starting at
        ``start``, each in words that name the leg."""
        lo, hi = start + spec.offset, start + spec.end_offset
        role = str(spec.role)
        found = self.reasons(site, role, row, lo, hi)
        if not found:
            return []
        noun = LEG_ROLES[role].noun
        span = local_span(from_min(lo), from_min(hi), site.zone)
        requested = {"start": local_instant(from_min(lo), site.zone), "end": local_instant(from_min(hi), site.zone)}
        problems = []
        for code, reason, source in found:
            extra: dict[str, Any] = {"requested": requested}
            if isinstance(source, BusyLeg):
                extra["clashing"] = clashing(source, site.zone)
            problems.append(
                Problem(
                    code,
                    f"{_capitalised(reason)} ({noun} needed {span}).",
                    role=role,
                    resource=describe(row),
                    extra=extra,
                )
            )
        return problems

    # --- the case ---------------------------------------------------------------------------

    def hold_verdict_at(self, site: SiteRow) -> HoldVerdict:
        return hold_verdict(self.window.holds, self.procedure.bleeding_risk, self.now.astimezone(site.zone).date())

    def case_problems(self, site: SiteRow, start: int) -> list[Problem]:
        problems = []
        moment = from_min(start)
        if not self.allow_past and moment < self.now:
            problems.append(Problem("starts_in_past", "The case would start in the past.", field="start"))
        arrival = next(spec for spec in self.legs if spec.role == LegRole.PATIENT)
        if arrival.offset < 0 and not engine.contains(self.hours(site, None), start + arrival.offset, start):
            problems.append(
                Problem(
                    "arrival_outside_opening_hours",
                    f"The patient would arrive at {from_min(start + arrival.offset).astimezone(site.zone):%H:%M}, "
                    f"when {site.name} is closed.",
                    role=str(LegRole.PATIENT),
                )
            )
        verdict = self.hold_verdict_at(site)
        if not self.hold_override and verdict.blocks(moment.astimezone(site.zone).date()):
            assert verdict.first_day is not None
            assert verdict.hold is not None
            problems.append(
                Problem(
                    "anticoagulant_hold",
                    f"The patient's {verdict.hold.medication} hold runs until "
                    f"{verdict.first_day - timedelta(days=1)}; a case at "
                    f"{self.procedure.get_bleeding_risk_display().lower()} bleeding risk can start on "
                    f"{verdict.first_day}.",
                    extra={"earliest_date": verdict.first_day.isoformat(), "hold": verdict.hold.id},
                )
            )
        return problems

    def pair_problems(self, chosen: dict[str, ResourceRow]) -> list[Problem]:
        problems = []
        room = chosen.get(LegRole.ROOM)
        for role, row in chosen.items():
            fixed_elsewhere = row.room_id is not None and room is not None and row.room_id != room.id
            if LEG_ROLES[role].equipment_kind is not None and fixed_elsewhere:
                assert room is not None
                problems.append(
                    Problem(
                        "equipment_not_in_room",
                        f"{row.name} is fixed in another room and cannot be used in {room.name}.",
                        role=role,
                        resource=describe(row),
                    )
                )
        seen: dict[int, str] = {}
        for role, row in chosen.items():
            if row.column != "staff":
                continue
            if row.id in seen:
                problems.append(
                    Problem(
                        "resource_reused",
                        f"{row.name} cannot be both {LEG_ROLES[seen[row.id]].noun} and {LEG_ROLES[role].noun}.",
                        role=role,
                        resource=describe(row),
                    )
                )
            else:
                seen[row.id] = role
        return problems

    def check(self, site: SiteRow, start: int, chosen: dict[str, ResourceRow]) -> list[Problem]:
        """Every problem of a complete set of resources at ``start``: the case, each resource
        (static and over its leg), and the pairs. Empty means it may be booked."""
        problems = self.case_problems(site, start)
        for spec in self.legs:
            row = chosen.get(str(spec.role))
            if row is not None:
                problems += self.resource_problems(site, spec, row, start)
        return problems + self.pair_problems(chosen)

    def resource_problems(self, site: SiteRow, spec: LegSpec, row: ResourceRow, start: int) -> list[Problem]:
        """The static rules, then (for a resource of the right kind) the time rules."""
        static = self.static_problems(site, str(spec.role), row) if spec.role != LegRole.PATIENT else []
        if any(p.code == "wrong_resource_kind" for p in static):
            return static
        return static + self.leg_problems(site, spec, row, start)

    # --- the engine's view ----------------------------------------------------------------

    def pools(self, site: SiteRow) -> list[engine.LegPool]:
        """Each leg's candidates with their free time, and the site's opening hours from the
        patient's arrival: the interval engine's input."""
        pools = []
        for spec in self.legs:
            role = str(spec.role)
            if spec.role == LegRole.PATIENT:
                row = self.patient_row()
                rows = [row] if row is not None else []
                if not rows:
                    continue
            else:
                pinned = self.pinned_row(role)
                if pinned is not None:
                    rows = [] if self.static_problems(site, role, pinned) else [pinned]
                else:
                    rows = self.candidates(site, role)
            candidates = [
                engine.Candidate(
                    key=row.key,
                    free=self.state(site, role, row).free(),
                    room_id=row.room_id if row.column == "equipment" else None,
                )
                for row in rows
            ]
            pools.append(engine.LegPool(role, spec.offset, spec.minutes, candidates))
        arrival = next(spec for spec in self.legs if spec.role == LegRole.PATIENT)
        if arrival.offset < 0:
            site_open = engine.Candidate(key=("site", site.id), free=self.hours(site, None))
            pools.append(engine.LegPool(ARRIVAL, arrival.offset, -arrival.offset, [site_open]))
        return pools

    def not_before(self, site: SiteRow, earliest: datetime | None = None) -> int:
        """The first start the case rules allow: not in the past, and not inside a hold."""
        if self.allow_past:
            floor = ceil_min(earliest) if earliest else -(1 << 40)
        else:
            floor = ceil_min(max(self.now, earliest) if earliest else self.now)
        verdict = self.hold_verdict_at(site)
        if verdict.first_day is not None and not self.hold_override:
            floor = max(floor, to_min(datetime.combine(verdict.first_day, time(0), tzinfo=site.zone)))
        return floor

    def score(
        self, site: SiteRow
    ) -> Callable[[str, engine.Candidate, int, dict[str, engine.Candidate]], tuple[int, ...]]:
        """Preferences among free candidates: the resources a moved case already holds, a
        physician's day in one room, patients spread over the recovery bays."""
        return make_score(self.window.all_busy(), site.zone, self.request.pin(LegRole.PHYSICIAN), self.prefer)

    def rows_of(self, keys: dict[str, engine.Candidate]) -> dict[str, ResourceRow]:
        patient = self.patient_row()
        out = {}
        for role, candidate in keys.items():
            if role == ARRIVAL:
                continue
            if candidate.key[0] == "patient":
                assert patient is not None
                out[role] = patient
            else:
                out[role] = self.inventory.resources[candidate.key]
        return out

    # --- the booking services' question -------------------------------------------------------

    def decide(self, starts_at: datetime) -> Decision | Refusal:
        """Resources for every leg at ``starts_at``: the pinned ones if every rule holds for
        them, and the engine's choice for the rest. Sites are tried in order; when none fits,
        the refusal of the site with the fewest problems is returned."""
        if not_on_minute(starts_at):
            return Refusal(None, problems=[ON_THE_MINUTE])
        start = to_min(starts_at)
        refusals: list[Refusal] = []
        for site in self.sites():
            pinned = {str(spec.role): row for spec in self.legs if (row := self._pinned_or_patient(spec)) is not None}
            problems = self.check(site, start, pinned)
            if problems:
                refusals.append(
                    Refusal(
                        site,
                        problems=[p for p in problems if p.code not in CLASH_CODES],
                        clashes=[p for p in problems if p.code in CLASH_CODES],
                    )
                )
                continue
            if len(pinned) == len(self.legs):
                # Every leg named and every rule holds: nothing left for the engine to choose.
                return Decision(site, start, pinned)
            chosen = engine.assign(self.pools(site), start, score=self.score(site))
            if chosen is None:
                refusals.append(Refusal(site))
                continue
            rows = self.rows_of(chosen)
            # The engine works from the same states, so this holds; the rulebook still has the
            # last word on the whole set.
            problems = self.check(site, start, rows)
            if not problems:
                return Decision(site, start, rows)
            refusals.append(Refusal(site, problems=problems))
        if not refusals:
            return Refusal(None, problems=[Problem("no_site", "No active site matches the request.")])
        return min(refusals, key=lambda r: r.size or 1)

    def _pinned_or_patient(self, spec: LegSpec) -> ResourceRow | None:
        if spec.role == LegRole.PATIENT:
            return self.patient_row()
        return self.pinned_row(str(spec.role))

    # --- the reasons endpoint's question ------------------------------------------------------

    def explain(self, starts_at: datetime) -> list[Problem]:
        """Every reason, in a scheduler's words, that the case cannot start at ``starts_at``;
        empty means it can. With every resource pinned this is exactly ``check``'s list."""
        if not_on_minute(starts_at):
            return [ON_THE_MINUTE]
        start = to_min(starts_at)
        best: list[Problem] | None = None
        for site in self.sites():
            problems = self._explain_at(site, start)
            if not problems:
                return []
            if best is None or len(problems) < len(best):
                best = problems
        return best if best is not None else [Problem("no_site", "No active site matches the request.")]

    def _explain_at(self, site: SiteRow, start: int) -> list[Problem]:
        problems = self.case_problems(site, start)
        pinned: dict[str, ResourceRow] = {}
        for spec in self.legs:
            role = str(spec.role)
            row = self._pinned_or_patient(spec)
            if row is not None:
                pinned[role] = row
                problems += self.resource_problems(site, spec, row, start)
                continue
            if spec.role == LegRole.PATIENT:
                continue
            problems += self._open_leg_problems(site, spec, start)
        problems += self.pair_problems(pinned)
        if not problems and engine.assign(self.pools(site), start) is None:
            problems.append(
                Problem(
                    "no_combination",
                    "Every leg has a free resource, but not together: the free C-arms are fixed in rooms "
                    "that are busy, or one person would be needed twice.",
                )
            )
        return problems

    def _open_leg_problems(self, site: SiteRow, spec: LegSpec, start: int) -> list[Problem]:
        role = str(spec.role)
        noun = LEG_ROLES[role].noun
        lo, hi = start + spec.offset, start + spec.end_offset
        span = local_span(from_min(lo), from_min(hi), site.zone)
        rows = self.candidates(site, role)
        if not rows:
            return [Problem("no_candidate", f"No {noun} at {site.name} can do this case.", role=role)]
        found = {row.name: self.reasons(site, role, row, lo, hi) for row in rows}
        if not all(found.values()):
            return []
        reasons = {name: why[0][1] for name, why in found.items()}
        clashes = [
            {"resource": describe(row), "clashing": clashing(source, site.zone)}
            for row in rows
            for _, _, source in found[row.name]
            if isinstance(source, BusyLeg)
        ]
        if len(rows) == 1:
            message = f"{_capitalised(next(iter(reasons.values())))} ({noun} needed {span})."
        else:
            message = f"No {noun} free {span}."
        extra: dict[str, Any] = {
            "candidates": reasons,
            "requested": {
                "start": local_instant(from_min(lo), site.zone),
                "end": local_instant(from_min(hi), site.zone),
            },
        }
        if clashes:
            extra["clashes"] = clashes
        return [Problem("leg_unavailable", message, role=role, extra=extra)]


def describe(row: ResourceRow) -> dict[str, Any]:
    """A resource in answers. A patient is never named: it is "the patient"."""
    kind = "recovery_bay" if row.column == "bay" else row.column
    return {"kind": kind, "id": row.id, "name": row.name}


def local_instant(moment: datetime, zone: ZoneInfo) -> str:
    """An instant as every answer gives it: ISO 8601 with the site's own offset."""
    return to_local(moment, zone).isoformat()


def clashing(leg: BusyLeg, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "booking": leg.booking_id,
        "role": leg.role,
        "start": local_instant(leg.start, zone),
        "end": local_instant(leg.end, zone),
    }


def make_score(
    busy: list[BusyLeg], zone: ZoneInfo, physician_id: int | None, prefer: dict[str, tuple[str, int]]
) -> Callable[[str, engine.Candidate, int, dict[str, engine.Candidate]], tuple[int, ...]]:
    """Keep what a moved case holds; keep a physician's day in one room; spread patients over
    the recovery bays."""
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
        kept = 0 if prefer.get(role) == candidate.key else 1
        day = day_of_hour(start // 60)
        if role == LegRole.ROOM and physician_id is not None:
            return (kept, 0 if candidate.key[1] in physician_rooms.get((physician_id, day), ()) else 1)
        if role == LegRole.PHYSICIAN and "room" in chosen:
            return (kept, 0 if chosen["room"].key[1] in physician_rooms.get((candidate.key[1], day), ()) else 1)
        if role == LegRole.RECOVERY_BAY:
            return (kept, bay_load.get((candidate.key[1], day), 0))
        return (kept,)

    return score


def window_bounds(legs: list[LegSpec], start: int) -> tuple[int, int]:
    """Minutes ``[lo, hi)`` the legs of a case starting at ``start`` cover."""
    return start + min(s.offset for s in legs), start + max(s.end_offset for s in legs)
