"""The day planner's model. Pure: no ORM, no clock; times are integer minutes.

A day to plan is a set of cases, each given as the rulebook's own view of it: its legs, each
with the candidate resources the rules allow and their free time (working time minus downtime,
time off and every case not being planned), and the starts the case's rules accept (not in the
past, not inside an anticoagulant hold, within a waiting patient's window, within the allowed
move of a booked patient). Nothing here decides whether a resource may serve a leg: the
rulebook did. What the model adds is what no single case can see, the other planned cases:

- one interval per (case, leg, candidate), present when that candidate takes the leg; no two
  present intervals of one resource overlap (CP-SAT ``NoOverlap``); recovery bays also feed a
  cumulative whose capacity is the peak number of bays in use;
- the engine's pair rules: equipment fixed in a room goes with that room, and one person takes
  at most one role in a case.

It is solved in stages, each keeping the best of the one before (lexicographic):
1. the most cases fitted (by weight; a booked case must stay);
2. the earliest end of the day (the last patient leaving recovery);
3. the fewest recovery bays in use at once; then the least staff idle time between cases and
   the fewest booked patients moved, weighed together (a move costs ``MOVE_IDLE_MINUTES`` of
   idle time); then the fewest resources changed.

``first_come_first_served`` is the baseline: each case in request order at its earliest start
by the availability engine, around the cases placed before it.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ortools.sat.python import cp_model

from scheduling.availability import engine

Key = tuple[str, int]
Span = engine.Span
# The arrival pseudo-leg's resource: the site's opening hours, shared by every case, held by none.
SITE = "site"
BAY = "bay"
# Resources free at the same times for the same cases are interchangeable (eight bays, techs on
# one shift): the model takes "one of the group" (a cumulative as wide as the group) and they are
# named afterwards, which spares the solver every symmetric way of naming them.
GROUP = "group"
STAFF = "staff"
RECOVERY_ROLE = "recovery_bay"
# Stage 3 weighs its goals: a bay fewer at the peak outweighs everything after it; a booked
# patient moved costs as much as MOVE_IDLE_MINUTES of staff idle time (a patient is not moved
# to save a tech half an hour); a resource changed on a case weighs least.
MOVE_IDLE_MINUTES = 120
W_CHANGE = 1
W_IDLE = 10**3
W_MOVE = MOVE_IDLE_MINUTES * W_IDLE
W_PEAK = 10**12


@dataclass(frozen=True)
class PlanCase:
    """One case to place. ``pools`` are the rulebook's legs (``Rulebook.pools``): role, offset
    and minutes from the case start, and the candidates with their free time. ``allowed`` are
    closed ranges of starts the case's own rules accept."""

    ident: str
    pools: tuple[engine.LegPool, ...]
    allowed: tuple[Span, ...]
    weight: int = 1
    required: bool = False
    current: int | None = None
    current_keys: Mapping[str, Key] = field(default_factory=dict)
    preferred: Mapping[str, Key] = field(default_factory=dict)

    @property
    def end_offset(self) -> int:
        return max(pool.offset + pool.minutes for pool in self.pools)


@dataclass(frozen=True)
class DayProblem:
    cases: tuple[PlanCase, ...]
    # Starts and legs lie in [window); the day's length is counted from ``opens``.
    window: Span
    opens: int
    grid: int = 5
    # Recovery-bay legs of the day's cases that are not planned (in progress, held, fixed).
    fixed_bays: tuple[Span, ...] = ()


@dataclass(frozen=True)
class Placement:
    ident: str
    start: int
    keys: Mapping[str, Key]


@dataclass(frozen=True)
class Figures:
    fitted: int
    weight: int
    day_end: int | None
    peak_bays: int
    idle_minutes: int
    moves: int
    changes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "fitted": self.fitted,
            "weight": self.weight,
            "day_end": self.day_end,
            "peak_bays": self.peak_bays,
            "idle_minutes": self.idle_minutes,
            "moves": self.moves,
            "changes": self.changes,
        }


@dataclass
class Stage:
    name: str
    status: str
    value: int | None
    bound: int | None
    seconds: float


@dataclass
class Result:
    placements: dict[str, Placement]
    figures: Figures
    status: str  # optimal, feasible, infeasible
    seconds: float
    stages: list[Stage] = field(default_factory=list)
    # What the solver proved no plan can beat: the weight fitted, the end of the day.
    bound_weight: int | None = None
    bound_day_end: int | None = None

    def unplaced(self, problem: DayProblem) -> list[str]:
        return [case.ident for case in problem.cases if case.ident not in self.placements]


class Infeasible(Exception):
    """The booked cases cannot all keep a place (one breaks a rule as booked)."""

    def __init__(self, idents: list[str]) -> None:
        super().__init__(", ".join(idents))
        self.idents = idents


# --- figures ------------------------------------------------------------------------------


def figures(problem: DayProblem, placements: Mapping[str, Placement]) -> Figures:
    """The plan's figures, worked out from its placements (so a plan and a baseline are
    measured alike)."""
    cases = {case.ident: case for case in problem.cases}
    bays: list[Span] = list(problem.fixed_bays)
    staff: dict[Key, list[Span]] = defaultdict(list)
    day_end: int | None = None
    weight = moves = changes = 0
    for ident, placed in placements.items():
        case = cases[ident]
        weight += case.weight
        end = placed.start + case.end_offset
        day_end = end if day_end is None else max(day_end, end)
        if case.required and case.current is not None and placed.start != case.current:
            moves += 1
        changes += sum(1 for role, key in case.current_keys.items() if placed.keys.get(role) != key)
        for pool in case.pools:
            key = placed.keys.get(pool.role)
            if key is None:
                continue
            span = (placed.start + pool.offset, placed.start + pool.offset + pool.minutes)
            if pool.role == RECOVERY_ROLE:
                bays.append(span)
            if key[0] == STAFF:
                staff[key].append(span)
    return Figures(
        fitted=len(placements),
        weight=weight,
        day_end=day_end,
        peak_bays=peak(bays),
        idle_minutes=sum(idle(spans) for spans in staff.values()),
        moves=moves,
        changes=changes,
    )


def peak(spans: Iterable[Span]) -> int:
    """The most spans open at one moment."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda ev: (ev[0], ev[1]))
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most


def idle(spans: Sequence[Span]) -> int:
    """Minutes between a person's first and last leg that no leg covers."""
    if not spans:
        return 0
    merged = engine.merge(spans)
    return (merged[-1][1] - merged[0][0]) - sum(e - s for s, e in merged)


# --- the baseline ---------------------------------------------------------------------------


def _as_booked(case: PlanCase, busy: Mapping[Key, list[Span]]) -> Placement | None:
    """A booked case where it is, on what it holds, if that is still free around ``busy``."""
    if case.current is None:
        return None
    keys: dict[str, Key] = {}
    for pool in case.pools:
        lo, hi = case.current + pool.offset, case.current + pool.offset + pool.minutes
        held = case.current_keys.get(pool.role)
        options = [c for c in pool.candidates if held is None or c.key == held]
        fits = [
            c
            for c in options
            if engine.contains(c.free if c.key[0] == SITE else engine.subtract(c.free, busy.get(c.key, [])), lo, hi)
        ]
        if not fits:
            return None
        keys[pool.role] = fits[0].key
    return Placement(case.ident, case.current, keys)


def first_come_first_served(problem: DayProblem) -> Result:
    """The day as first come, first served would have it: booked cases where they are (they
    came first), then each requested case in order at the earliest start the availability
    engine finds for it around the cases placed before it."""
    started = time.perf_counter()
    busy: dict[Key, list[Span]] = defaultdict(list)
    placements: dict[str, Placement] = {}
    order = sorted(problem.cases, key=lambda case: not case.required)

    def hold(case: PlanCase, placed: Placement) -> None:
        placements[case.ident] = placed
        for pool in case.pools:
            key = placed.keys.get(pool.role)
            if key is not None and key[0] != SITE:
                busy[key].append((placed.start + pool.offset, placed.start + pool.offset + pool.minutes))

    for case in order:
        kept = _as_booked(case, busy)
        if kept is not None:
            hold(case, kept)
            continue
        pools = [
            engine.LegPool(
                pool.role,
                pool.offset,
                pool.minutes,
                [
                    engine.Candidate(
                        candidate.key,
                        candidate.free
                        if candidate.key[0] == SITE
                        else engine.subtract(candidate.free, busy[candidate.key]),
                        candidate.rank,
                        candidate.room_id,
                    )
                    for candidate in pool.candidates
                ],
            )
            for pool in case.pools
        ]
        found = engine.search(
            pools, problem.window, grid=problem.grid, count=1, allowed=list(case.allowed), origin=problem.window[0]
        )
        if not found:
            continue
        chosen = found[0]
        hold(case, Placement(case.ident, chosen.start, {role: c.key for role, c in chosen.resources.items()}))
    return Result(placements, figures(problem, placements), "feasible", time.perf_counter() - started)


# --- the model ------------------------------------------------------------------------------


@dataclass
class _Choice:
    case: PlanCase
    role: str
    offset: int
    minutes: int
    key: Key
    present: Any  # a literal


@dataclass
class _Model:
    model: cp_model.CpModel
    starts: dict[str, Any]
    present: dict[str, Any]
    choices: dict[str, dict[str, dict[Key, Any]]]
    day_end: Any
    peak: Any
    idle: Any
    moves: Any
    changes: Any
    preferred: Any
    weight: Any
    required: frozenset[str] = frozenset()


def interchangeable(problem: DayProblem) -> dict[Key, Key]:
    """Resources that stand in for one another, each to its group: recovery bays, staff or
    mobile equipment that serve one role, in the very same cases, free at the very same times
    (three techs on the same shift, eight bays). Rooms and fixed equipment never: they pair."""
    signature: dict[Key, set[tuple[str, tuple[Span, ...]]]] = defaultdict(set)
    cases_of: dict[Key, set[str]] = defaultdict(set)
    for case in problem.cases:
        for pool in case.pools:
            for candidate in pool.candidates:
                signature[candidate.key].add((pool.role, tuple(candidate.free)))
                cases_of[candidate.key].add(case.ident)
                if candidate.room_id is not None:
                    signature[candidate.key].add(("fixed", ((candidate.room_id, 0),)))
    alike: dict[tuple[Any, ...], list[Key]] = defaultdict(list)
    for key, marks in sorted(signature.items()):
        if key[0] not in (BAY, STAFF, "equipment") or len(marks) != 1:
            continue
        ((role, free),) = marks
        alike[(role, free, frozenset(cases_of[key]))].append(key)
    groups: dict[Key, Key] = {}
    for number, keys in enumerate(members for members in alike.values() if len(members) > 1):
        for key in keys:
            groups[key] = (GROUP, number)
    return groups


def _grouped(pool: engine.LegPool, groups: Mapping[Key, Key]) -> list[engine.Candidate]:
    """The pool's candidates with the interchangeable ones of a group as one."""
    out: list[engine.Candidate] = []
    seen: set[Key] = set()
    for candidate in pool.candidates:
        group = groups.get(candidate.key)
        if group is None:
            out.append(candidate)
        elif group not in seen:
            seen.add(group)
            out.append(engine.Candidate(group, candidate.free))
    return out


def _hand_out(problem: DayProblem, placements: dict[str, Placement], groups: Mapping[Key, Key]) -> None:
    """Name the resource of every leg that took "one of a group". Each booked case keeps the
    member it holds where that member is free for it; the other legs, in order of start, take a
    member free by then. Should keeping members as booked leave a leg without one (a group's
    members are free at the same times, and the model saw to it that a group is never over-full,
    so taking them in order of start always works), they are all taken in order of start."""
    if not groups:
        return
    members: dict[Key, list[Key]] = defaultdict(list)
    for key, group in sorted(groups.items()):
        members[group].append(key)
    cases = {case.ident: case for case in problem.cases}
    legs = []
    for ident, placed in placements.items():
        for pool in cases[ident].pools:
            taken = placed.keys.get(pool.role)
            if taken is not None and taken[0] == GROUP:
                start = placed.start + pool.offset
                legs.append((start, start + pool.minutes, ident, pool.role, taken))
    legs.sort()
    chosen = _assign(legs, members, cases, keep_own=True) or _assign(legs, members, cases, keep_own=False)
    assert chosen is not None
    for (_, _, ident, role, _), key in zip(legs, chosen, strict=True):
        placed = placements[ident]
        placements[ident] = Placement(ident, placed.start, {**placed.keys, role: key})


def _assign(
    legs: list[tuple[int, int, str, str, Key]],
    members: Mapping[Key, list[Key]],
    cases: Mapping[str, PlanCase],
    *,
    keep_own: bool,
) -> list[Key] | None:
    taken: dict[Key, list[Span]] = defaultdict(list)

    def free(key: Key, start: int, end: int) -> bool:
        return all(end <= s or e <= start for s, e in taken[key])

    out: list[Key | None] = [None] * len(legs)
    if keep_own:
        for index, (start, end, ident, role, group) in enumerate(legs):
            own = cases[ident].current_keys.get(role)
            if own is not None and own in members[group] and free(own, start, end):
                taken[own].append((start, end))
                out[index] = own
    for index, (start, end, _, _, group) in enumerate(legs):
        if out[index] is not None:
            continue
        ready = [key for key in members[group] if free(key, start, end)]
        if not ready:
            return None
        taken[ready[0]].append((start, end))
        out[index] = ready[0]
    return [key for key in out if key is not None]


def _patient_keys(case: PlanCase) -> list[Key]:
    return [c.key for pool in case.pools if pool.role == "patient" for c in pool.candidates]


def _likeness(case: PlanCase) -> tuple[Any, ...]:
    """What a case is, its patient aside (their free time counts, not who they are)."""
    pools = tuple(
        (
            pool.role,
            pool.offset,
            pool.minutes,
            tuple(
                (candidate.key if pool.role != "patient" else None, tuple(candidate.free), candidate.room_id)
                for candidate in pool.candidates
            ),
        )
        for pool in case.pools
    )
    return (pools, tuple(case.allowed), case.weight)


def _case_values(problem: DayProblem, case: PlanCase) -> list[int]:
    """The starts worth trying: grid points where every leg has a free candidate and the case's
    rules allow it, and a booked case's own start."""
    ranges = engine.intersect(engine.case_starts(case.pools, problem.window), engine.merge_closed(list(case.allowed)))
    values = set(engine.grid_points(ranges, problem.grid, problem.window[0]))
    if case.current is not None and any(lo <= case.current <= hi for lo, hi in ranges):
        values.add(case.current)
    return sorted(values)


def _domain(values: Iterable[int]) -> cp_model.Domain:
    return cp_model.Domain.from_values(list(values))


def build(problem: DayProblem) -> _Model:
    m = cp_model.CpModel()
    origin = problem.window[0]
    horizon = problem.window[1] - origin
    starts: dict[str, Any] = {}
    present: dict[str, Any] = {}
    choices: dict[str, dict[str, dict[Key, Any]]] = {}
    by_key: dict[Key, list[_Choice]] = defaultdict(list)
    ends: list[tuple[Any, Any, int]] = []
    impossible: list[str] = []
    move_flags: list[Any] = []
    change_terms: list[Any] = []
    preferred_terms: list[Any] = []
    weights: list[tuple[int, Any]] = []
    groups = interchangeable(problem)
    for case in problem.cases:
        values = _case_values(problem, case)
        if not values:
            if case.required:
                impossible.append(case.ident)
            continue
        # Starts are kept relative to the window, so the solver works with small numbers.
        start = m.new_int_var_from_domain(_domain(v - origin for v in values), f"start[{case.ident}]")
        here = m.new_constant(1) if case.required else m.new_bool_var(f"present[{case.ident}]")
        starts[case.ident], present[case.ident] = start, here
        weights.append((case.weight, here))
        roles: dict[str, dict[Key, Any]] = {}
        per_key: dict[Key, list[Any]] = defaultdict(list)
        for pool in case.pools:
            lits: dict[Key, Any] = {}
            for candidate in _grouped(pool, groups):
                ranges = [(lo - pool.offset, hi - pool.offset - pool.minutes) for lo, hi in candidate.free]
                fits = [v - origin for v in values if any(lo <= v <= hi for lo, hi in ranges)]
                if not fits:
                    continue
                lit = m.new_bool_var(f"take[{case.ident},{pool.role},{candidate.key[0]}{candidate.key[1]}]")
                if len(fits) < len(values):
                    m.add_linear_expression_in_domain(start, _domain(fits)).only_enforce_if(lit)
                m.add_implication(lit, here)
                lits[candidate.key] = lit
                per_key[candidate.key].append(lit)
                if candidate.key[0] != SITE:
                    by_key[candidate.key].append(
                        _Choice(case, pool.role, pool.offset, pool.minutes, candidate.key, lit)
                    )
            m.add(sum(lits.values()) == here)
            roles[pool.role] = lits
            key_now = case.current_keys.get(pool.role)
            if key_now is not None:
                key_now = groups.get(key_now, key_now)
                change_terms.append(1 - lits[key_now] if key_now in lits else here)
            wanted = case.preferred.get(pool.role)
            if wanted is not None and wanted in lits:
                preferred_terms.append(lits[wanted])
        # The engine's pair rules: equipment fixed in a room goes with that room; one person,
        # one role.
        room_lits = roles.get("room", {})
        for pool in case.pools:
            for candidate in pool.candidates:
                taken = roles[pool.role].get(candidate.key)
                if taken is None or candidate.room_id is None or pool.role == "room":
                    continue
                room_lit = room_lits.get(("room", candidate.room_id))
                if room_lit is None:
                    m.add(taken == 0)
                else:
                    m.add_implication(taken, room_lit)
        for lits_of_key in per_key.values():
            if len(lits_of_key) > 1:
                m.add(sum(lits_of_key) <= 1)
        choices[case.ident] = roles
        ends.append((start, here, case.end_offset))
        if case.required and case.current is not None:
            moved = m.new_bool_var(f"moved[{case.ident}]")
            m.add(start != case.current - origin).only_enforce_if(moved)
            m.add(start == case.current - origin).only_enforce_if(moved.Not())
            move_flags.append(moved)
    if impossible:
        raise Infeasible(impossible)

    # Cases alike but for their patient (the same procedure, levels, sedation and window, for
    # patients free the same times) could trade places in any plan: take them in one order.
    twins: dict[tuple[Any, ...], list[PlanCase]] = defaultdict(list)
    patients: dict[Key, int] = defaultdict(int)
    for case in problem.cases:
        for key in _patient_keys(case):
            patients[key] += 1
    for case in problem.cases:
        # A patient in two planned cases cannot trade places with another: their cases keep
        # apart from each other.
        alone = all(patients[key] == 1 for key in _patient_keys(case))
        if case.ident in starts and not case.required and not case.preferred and alone:
            twins[_likeness(case)].append(case)
    for alike in twins.values():
        for before, after in itertools.pairwise(alike):
            m.add(present[before.ident] >= present[after.ident])
            m.add(starts[before.ident] <= starts[after.ident]).only_enforce_if(present[after.ident])

    # Redundant pools: every case takes one resource of each role it has, so at any moment no
    # more cases can be in a role's legs than the role has resources. The solver reasons over
    # the pool as a whole (energy, not only one resource at a time), which tightens its bound.
    by_role: dict[str, list[tuple[PlanCase, int, int]]] = defaultdict(list)
    role_keys: dict[str, set[Key]] = defaultdict(set)
    for entries in by_key.values():
        for e in entries:
            role_keys[e.role].add(e.key)
    for case in problem.cases:
        if case.ident not in starts:
            continue
        for pool in case.pools:
            if pool.role in role_keys and pool.role != "patient":
                by_role[pool.role].append((case, pool.offset, pool.minutes))
    size_of: dict[Key, int] = defaultdict(lambda: 1)
    for group in groups.values():
        size_of[group] = sum(1 for g in groups.values() if g == group)
    # And the case that leaves a role's pool last still has its tail to run (recovery after the
    # room, say): the day ends no sooner than the pool is done plus the shortest tail.
    pools_done: list[tuple[Any, int]] = []
    for role, members in by_role.items():
        done = m.new_int_var(0, 2 * horizon, f"done[{role}]")
        for case, offset, minutes in members:
            m.add(done >= starts[case.ident] + offset + minutes).only_enforce_if(present[case.ident])
        pools_done.append((done, min(case.end_offset - offset - minutes for case, offset, minutes in members)))
        capacity = sum(size_of[key] for key in role_keys[role])
        if len(members) <= capacity:
            continue
        pooled = [
            m.new_optional_fixed_size_interval_var(
                starts[case.ident] + offset, minutes, present[case.ident], f"pool[{case.ident},{role}]"
            )
            for case, offset, minutes in members
        ]
        m.add_cumulative(pooled, [1] * len(pooled), capacity)

    bay_intervals, bay_demands = [], []
    for key, entries in by_key.items():
        intervals = [
            m.new_optional_fixed_size_interval_var(
                starts[e.case.ident] + e.offset, e.minutes, e.present, f"leg[{e.case.ident},{e.role}]"
            )
            for e in entries
        ]
        if key[0] == GROUP:
            m.add_cumulative(intervals, [1] * len(intervals), size_of[key])
        elif len({e.case.ident for e in entries}) > 1:
            m.add_no_overlap(intervals)
        if any(pool_role == RECOVERY_ROLE for pool_role in {e.role for e in entries}):
            bay_intervals += intervals
            bay_demands += [1] * len(intervals)
    for lo, hi in problem.fixed_bays:
        lo, hi = max(lo, origin), min(hi, problem.window[1])
        if lo < hi:
            bay_intervals.append(m.new_fixed_size_interval_var(lo - origin, hi - lo, f"fixed-bay[{lo}]"))
            bay_demands.append(1)
    bay_count = sum(size_of[key] for key in by_key if any(e.role == RECOVERY_ROLE for e in by_key[key]))
    bay_count += len(problem.fixed_bays)
    peak_var = m.new_int_var(0, max(bay_count, 0), "peak_bays")
    if bay_intervals:
        m.add_cumulative(bay_intervals, bay_demands, peak_var)

    day_end = m.new_int_var(0, horizon + max((c.end_offset for c in problem.cases), default=0), "day_end")
    for start, here, end_offset in ends:
        m.add(day_end >= start + end_offset).only_enforce_if(here)
    for done, tail in pools_done:
        m.add(day_end >= done + tail)

    idle_terms = []
    for key, entries in by_key.items():
        if key[0] != STAFF:
            continue
        first = m.new_int_var(-horizon, 2 * horizon, f"first[{key[1]}]")
        last = m.new_int_var(-horizon, 2 * horizon, f"last[{key[1]}]")
        m.add(last >= first)
        for e in entries:
            m.add(first <= starts[e.case.ident] + e.offset).only_enforce_if(e.present)
            m.add(last >= starts[e.case.ident] + e.offset + e.minutes).only_enforce_if(e.present)
        idle_terms.append(last - first - sum(e.minutes * e.present for e in entries))

    return _Model(
        model=m,
        starts=starts,
        present=present,
        choices=choices,
        day_end=day_end,
        peak=peak_var,
        idle=sum(idle_terms),
        moves=sum(move_flags),
        changes=sum(change_terms),
        preferred=sum(preferred_terms),
        weight=sum(w * lit for w, lit in weights),
        required=frozenset(case.ident for case in problem.cases if case.required),
    )


def _run(built: _Model, seconds: float, seed: int, workers: int) -> tuple[cp_model.CpSolver, str]:
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, seconds)
    solver.parameters.random_seed = seed
    solver.parameters.num_workers = workers
    if workers == 2:
        # On two threads the default portfolio keeps no worker on the bound; this pair finds
        # good plans and proves how good (the reduced-costs worker raises the bound).
        solver.parameters.subsolvers.extend(["reduced_costs", "default_lp"])
    status = solver.solve(built.model)
    return solver, solver.status_name(status)


def _hint(built: _Model, solver: cp_model.CpSolver) -> None:
    m = built.model
    m.clear_hints()
    for var in built.starts.values():
        m.add_hint(var, solver.value(var))
    for roles in built.choices.values():
        for lits in roles.values():
            for lit in lits.values():
                m.add_hint(lit, solver.boolean_value(lit))


def _hint_from(built: _Model, placements: Mapping[str, Placement], groups: Mapping[Key, Key], origin: int) -> None:
    m = built.model
    m.clear_hints()
    for ident, start in built.starts.items():
        placed = placements.get(ident)
        if ident not in built.required:
            # A booked case's presence is the shared constant 1: hinting it twice is invalid.
            m.add_hint(built.present[ident], placed is not None)
        if placed is None:
            continue
        m.add_hint(start, placed.start - origin)
        for role, lits in built.choices[ident].items():
            chosen = placed.keys.get(role)
            chosen = groups.get(chosen, chosen) if chosen is not None else None
            for key, lit in lits.items():
                m.add_hint(lit, key == chosen)


def _placements(built: _Model, solver: cp_model.CpSolver, origin: int) -> dict[str, Placement]:
    out = {}
    for ident, start in built.starts.items():
        if not solver.boolean_value(built.present[ident]):
            continue
        keys = {
            role: key
            for role, lits in built.choices[ident].items()
            for key, lit in lits.items()
            if solver.boolean_value(lit)
        }
        out[ident] = Placement(ident, origin + solver.value(start), keys)
    return out


def solve(
    problem: DayProblem,
    *,
    budget: float = 10.0,
    seed: int = 0,
    workers: int = 2,
    on_stage: Callable[[str, float], None] | None = None,
    hint: Mapping[str, Placement] | None = None,
) -> Result:
    """The best plan found within ``budget`` seconds (see the module's stages), the same for
    the same ``seed`` given the time to finish each stage. ``on_stage`` hears each stage as it
    begins, with the share of the budget spent. Raises Infeasible if a booked case cannot keep
    any place. ``hint`` (a baseline's placements) is where the search starts: the plan is never
    worse than it."""
    started = time.perf_counter()
    origin = problem.window[0]
    built = build(problem)
    if hint is not None:
        _hint_from(built, hint, interchangeable(problem), origin)
    stages: list[Stage] = []
    best: cp_model.CpSolver | None = None

    def left() -> float:
        return budget - (time.perf_counter() - started)

    def stage(name: str, share: float) -> cp_model.CpSolver | None:
        nonlocal best
        if on_stage is not None:
            on_stage(name, min(1.0, (time.perf_counter() - started) / budget) if budget > 0 else 1.0)
        began = time.perf_counter()
        solver, status = _run(built, left() * share, seed, workers)
        found = status in ("OPTIMAL", "FEASIBLE")
        stages.append(
            Stage(
                name,
                status.lower(),
                round(solver.objective_value) if found else None,
                round(solver.best_objective_bound) if found else None,
                time.perf_counter() - began,
            )
        )
        if not found:
            return None
        best = solver
        _hint(built, solver)
        return solver

    def nothing_found() -> Result:
        """No stage found a plan: proven impossible (a booked case cannot keep a place), or
        out of time, when the baseline given as the hint is the answer."""
        if (stages and stages[-1].status == "infeasible") or hint is None:
            raise Infeasible([case.ident for case in problem.cases if case.required])
        placements = dict(hint)
        return Result(placements, figures(problem, placements), "feasible", time.perf_counter() - started, stages)

    m = built.model
    all_required = all(case.required for case in problem.cases)
    bound_weight = None
    if not all_required:
        m.maximize(built.weight)
        first = stage("cases fitted", 0.3)
        if first is None:
            return nothing_found()
        weight = round(first.objective_value)
        bound_weight = math.floor(first.best_objective_bound + 1e-6)
        m.add(built.weight >= weight)
    m.minimize(built.day_end)
    second = stage("end of the day", 0.6)
    if second is None and best is None:
        return nothing_found()
    assert best is not None
    bound_day_end = None
    if second is not None:
        m.add(built.day_end <= round(second.objective_value))
        bound_day_end = origin + math.ceil(second.best_objective_bound - 1e-6)
    else:
        # Out of time on the end of the day: the next stage may not end it later than found.
        m.add(built.day_end <= best.value(built.day_end))
    m.minimize(
        W_PEAK * built.peak + W_IDLE * built.idle + W_MOVE * built.moves + W_CHANGE * built.changes - built.preferred
    )
    stage("bays, idle time, moves", 1.0)
    placements = _placements(built, best, origin)
    _hand_out(problem, placements, interchangeable(problem))
    plan = figures(problem, placements)
    if hint is not None:
        # The solver starts from the hint but a hint is only a hint: keep the better of the two.
        baseline = figures(problem, hint)
        if _rank(baseline) < _rank(plan):
            placements, plan = dict(hint), baseline
    optimal = all(s.status == "optimal" for s in stages)
    return Result(
        placements,
        plan,
        "optimal" if optimal else "feasible",
        time.perf_counter() - started,
        stages,
        bound_weight=bound_weight if bound_weight is not None else sum(c.weight for c in problem.cases),
        bound_day_end=bound_day_end,
    )


def _rank(figures: Figures) -> tuple[int, int]:
    """The first two stages' order: more weight fitted, then an earlier end of the day."""
    return (-figures.weight, figures.day_end if figures.day_end is not None else 0)


# --- capacity what-if -----------------------------------------------------------------------

# Made-up resources get negative ids, so they never meet a real one.
_EXTRA_ROLES = {"bays": (RECOVERY_ROLE, BAY), "rad_techs": ("rad_tech", STAFF), "nurses": ("sedation_nurse", STAFF)}


@dataclass(frozen=True)
class WhatIf:
    """More or fewer of a resource for the day: extra recovery bays, radiology techs or
    sedation nurses (each free all the opening hours), or rooms taken out (by id)."""

    bays: int = 0
    rad_techs: int = 0
    nurses: int = 0
    without_rooms: tuple[int, ...] = ()

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> WhatIf:
        return cls(
            bays=int(data.get("bays", 0)),
            rad_techs=int(data.get("rad_techs", 0)),
            nurses=int(data.get("nurses", 0)),
            without_rooms=tuple(int(pk) for pk in data.get("without_rooms", ())),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "bays": self.bays,
            "rad_techs": self.rad_techs,
            "nurses": self.nurses,
            "without_rooms": list(self.without_rooms),
        }


def with_capacity(problem: DayProblem, change: WhatIf) -> DayProblem:
    """The same day with the resources of ``change``: a made-up resource is free whenever the
    site is open (the arrival leg's hours); a room taken out serves no leg (and equipment fixed
    in it goes with it)."""
    counts = {"bays": change.bays, "rad_techs": change.rad_techs, "nurses": change.nurses}
    next_id = -1
    extras: dict[str, list[Key]] = defaultdict(list)
    for name, count in counts.items():
        role, column = _EXTRA_ROLES[name]
        for _ in range(max(0, count)):
            extras[role].append((column, next_id))
            next_id -= 1
    gone = {("room", pk) for pk in change.without_rooms}
    cases = []
    for case in problem.cases:
        opening = next(
            (c.free for pool in case.pools for c in pool.candidates if c.key[0] == SITE),
            [problem.window],
        )
        pools = []
        for pool in case.pools:
            candidates = [c for c in pool.candidates if c.key not in gone]
            candidates += [engine.Candidate(key, list(opening)) for key in extras.get(pool.role, [])]
            pools.append(engine.LegPool(pool.role, pool.offset, pool.minutes, candidates))
        cases.append(
            PlanCase(
                case.ident,
                tuple(pools),
                case.allowed,
                case.weight,
                case.required,
                case.current,
                case.current_keys,
                case.preferred,
            )
        )
    return DayProblem(tuple(cases), problem.window, problem.opens, problem.grid, problem.fixed_bays)
