"""Running late, ahead of time: while a case is in the room past its planned end, how late the
cases after it on the same room, C-arm, staff and recovery bays will start. Pure: no queries.

A case in procedure whose room phase should have ended holds its room-phase legs (and the
room's turnover) until at least now, and its recovery starts that much later. A case that has
not started begins when every resource it needs is free: its delay is the most any leg of an
earlier case on one of its resources overruns into it, and a delayed case pushes the ones
after it in turn. Only cases pushed that way get a delay; the rest keep their planned times.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduling.legroles import LEG_ROLES, LegRole
from scheduling.models import BookingStatus

# Cases that have not reached the room yet: they start when their resources are free.
NOT_STARTED = frozenset({BookingStatus.HOLD, BookingStatus.SCHEDULED, BookingStatus.CHECKED_IN, BookingStatus.READY})


@dataclass(frozen=True)
class PlannedLeg:
    booking_id: int
    role: str
    column: str
    resource_id: int
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class CaseState:
    status: str
    procedure_ended: bool


@dataclass(frozen=True)
class Delay:
    """``minutes`` late: the case's own overrun (``running_late``) or its projected late start,
    ``because`` of the cases (ids) whose legs run into it."""

    minutes: int
    running_late: bool
    because: tuple[int, ...] = ()


def _minutes(span: timedelta) -> int:
    return max(0, math.ceil(span.total_seconds() / 60))


def overruns(legs: Iterable[PlannedLeg], cases: Mapping[int, CaseState], now: datetime) -> dict[int, int]:
    """Minutes each case in procedure (not yet ended) is past its planned end of procedure."""
    planned_end: dict[int, datetime] = {}
    for leg in legs:
        if LEG_ROLES[leg.role].ends_with_procedure:
            previous = planned_end.get(leg.booking_id)
            planned_end[leg.booking_id] = leg.ends_at if previous is None else max(previous, leg.ends_at)
    out = {}
    for booking_id, end in planned_end.items():
        state = cases.get(booking_id)
        if state is None or state.status != BookingStatus.IN_PROCEDURE or state.procedure_ended:
            continue
        late = _minutes(now - end)
        if late > 0:
            out[booking_id] = late
    return out


def _projected(leg: PlannedLeg, late: int, delay: int) -> tuple[datetime, datetime]:
    """Where ``leg`` will lie: a late case stretches its room phase and pushes its recovery; a
    delayed case moves whole."""
    if late:
        stretch = timedelta(minutes=late)
        if leg.role == LegRole.RECOVERY_BAY:
            return leg.starts_at + stretch, leg.ends_at + stretch
        return leg.starts_at, leg.ends_at + stretch
    shift = timedelta(minutes=delay)
    return leg.starts_at + shift, leg.ends_at + shift


def projected_window(leg: PlannedLeg, delay: Delay) -> tuple[datetime, datetime]:
    """Where a leg of a late or delayed case is expected to lie."""
    if delay.running_late:
        return _projected(leg, delay.minutes, 0)
    return _projected(leg, 0, delay.minutes)


def projected_delays(legs: Iterable[PlannedLeg], cases: Mapping[int, CaseState], now: datetime) -> dict[int, Delay]:
    """The delay of every case a late one holds up (and of the late ones themselves), keyed by
    booking id; cases on time are absent."""
    legs = list(legs)
    late = overruns(legs, cases, now)
    if not late:
        return {}
    by_resource: dict[tuple[str, int], list[PlannedLeg]] = defaultdict(list)
    by_case: dict[int, list[PlannedLeg]] = defaultdict(list)
    for leg in legs:
        if leg.role == LegRole.PATIENT:
            continue
        by_resource[(leg.column, leg.resource_id)].append(leg)
        by_case[leg.booking_id].append(leg)
    waiting = sorted(
        (pk for pk, state in cases.items() if state.status in NOT_STARTED and pk in by_case),
        key=lambda pk: min(leg.starts_at for leg in by_case[pk]),
    )
    delay: dict[int, int] = defaultdict(int)
    because: dict[int, set[int]] = defaultdict(set)
    # Each pass can only push cases later; a case's delay depends on earlier legs only, so the
    # passes end once nothing moves (one pass in start order, usually).
    for _ in range(len(waiting) + 1):
        moved = False
        for pk in waiting:
            for leg in by_case[pk]:
                for other in by_resource[(leg.column, leg.resource_id)]:
                    if other.booking_id == pk or other.starts_at >= leg.starts_at:
                        continue
                    other_late = late.get(other.booking_id, 0)
                    other_delay = delay.get(other.booking_id, 0)
                    if not other_late and not other_delay:
                        continue
                    _, other_end = _projected(other, other_late, other_delay)
                    need = _minutes(other_end - leg.starts_at)
                    if need > delay[pk]:
                        delay[pk] = need
                        moved = True
                    if need > 0:
                        because[pk].add(other.booking_id)
        if not moved:
            break
    out = {pk: Delay(minutes, True) for pk, minutes in late.items()}
    for pk, minutes in delay.items():
        if minutes > 0:
            out[pk] = Delay(minutes, False, tuple(sorted(because[pk])))
    return out
