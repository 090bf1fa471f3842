"""Availability as interval algebra. Pure: no ORM, no clock; times are integer minutes.

For a case with legs ``(pool_i, offset_i, length_i)``:

1. per candidate resource, free = working time minus every block (busy legs, downtime, time
   off), computed by the selector;
2. per leg, feasible starts = union over its pool of ``[f.start - offset, f.end - offset - length]``;
3. feasible starts of the case = intersection over legs;
4. walk the grid points of that set in time order and assign a concrete resource to every leg
   (never one resource to two legs; equipment must fit the chosen room).

Cost is O(k log k) in the free intervals of the window, independent of table size.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

Span = tuple[int, int]  # [start, end) in minutes
_FAR = 1 << 62


def merge(spans: Iterable[Span]) -> list[Span]:
    """Sort and merge overlapping or touching spans."""
    out: list[Span] = []
    for start, end in sorted(spans):
        if start >= end:
            continue
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def subtract(base: Sequence[Span], blocks: Iterable[Span]) -> list[Span]:
    """``base`` minus ``blocks``; both may be unsorted."""
    result: list[Span] = []
    cuts = merge(blocks)
    for start, end in merge(base):
        cursor = start
        i = bisect_right(cuts, (start, start)) - 1
        i = max(i, 0)
        while i < len(cuts) and cuts[i][0] < end:
            cut_start, cut_end = cuts[i]
            if cut_end > cursor:
                if cut_start > cursor:
                    result.append((cursor, min(cut_start, end)))
                cursor = max(cursor, cut_end)
                if cursor >= end:
                    break
            i += 1
        if cursor < end:
            result.append((cursor, end))
    return result


def intersect(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """Intersection of two sorted, merged lists of closed ranges ``[lo, hi]`` (two pointers)."""
    out: list[Span] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def merge_closed(ranges: Iterable[Span]) -> list[Span]:
    """Merge closed ranges ``[lo, hi]``; ranges touching at a point join."""
    out: list[Span] = []
    for lo, hi in sorted(ranges):
        if lo > hi:
            continue
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def contains(free: Sequence[Span], start: int, end: int) -> bool:
    """Whether one span of the sorted, merged ``free`` covers ``[start, end)``."""
    i = bisect_right(free, (start, _FAR)) - 1
    return i >= 0 and free[i][0] <= start and end <= free[i][1]


@dataclass(frozen=True)
class Candidate:
    """One resource that could fill a leg, with its free time in the search window."""

    key: tuple[str, int]
    free: list[Span]
    rank: tuple[int, ...] = ()
    room_id: int | None = None  # equipment fixed in a room; None for mobile equipment


@dataclass(frozen=True)
class LegPool:
    role: str
    offset: int
    minutes: int
    candidates: list[Candidate]


@dataclass(frozen=True)
class Assignment:
    start: int
    resources: dict[str, Candidate]


def feasible_starts(pool: LegPool) -> list[Span]:
    """Closed ranges of case starts at which at least one candidate is free for the leg."""
    ranges = []
    for candidate in pool.candidates:
        for start, end in candidate.free:
            ranges.append((start - pool.offset, end - pool.offset - pool.minutes))
    return merge_closed(ranges)


def case_starts(pools: Sequence[LegPool], window: Span) -> list[Span]:
    """Closed ranges of starts in ``[window)`` at which every leg has some free candidate."""
    result: list[Span] = [(window[0], window[1] - 1)]
    for pool in sorted(pools, key=lambda p: len(p.candidates)):
        result = intersect(result, feasible_starts(pool))
        if not result:
            break
    return result


def grid_points(ranges: Sequence[Span], grid: int, origin: int = 0) -> Iterator[int]:
    """Points ``origin + k * grid`` inside the closed ranges, in order."""
    for lo, hi in ranges:
        point = origin + -(-(lo - origin) // grid) * grid
        while point <= hi:
            yield point
            point += grid


def assign(
    pools: Sequence[LegPool],
    start: int,
    *,
    room_role: str = "room",
    score: Callable[[str, Candidate, int, dict[str, Candidate]], tuple[int, ...]] | None = None,
) -> dict[str, Candidate] | None:
    """Pick one free candidate per leg at ``start``, or None if no combination fits.

    The room leg goes first, since equipment fixed in a room depends on it; then legs with the
    fewest free candidates. Backtracks, so a scarce resource is never taken by a leg that had
    alternatives.
    """
    options: list[tuple[LegPool, list[Candidate]]] = []
    for pool in pools:
        lo, hi = start + pool.offset, start + pool.offset + pool.minutes
        free = [c for c in pool.candidates if contains(c.free, lo, hi)]
        if not free:
            return None
        options.append((pool, free))
    options.sort(key=lambda item: (item[0].role != room_role, len(item[1])))

    chosen: dict[str, Candidate] = {}
    used: set[tuple[str, int]] = set()

    def ordered(role: str, free: list[Candidate]) -> list[Candidate]:
        if score is None:
            return sorted(free, key=lambda c: (c.rank, c.key))
        return sorted(free, key=lambda c: (score(role, c, start, chosen), c.rank, c.key))

    def place(index: int) -> bool:
        if index == len(options):
            return True
        pool, free = options[index]
        room = chosen.get(room_role)
        for candidate in ordered(pool.role, free):
            if candidate.key in used:
                continue
            if candidate.room_id is not None and room is not None and candidate.room_id != room.key[1]:
                continue
            chosen[pool.role] = candidate
            used.add(candidate.key)
            if place(index + 1):
                return True
            used.discard(candidate.key)
            del chosen[pool.role]
        return False

    return dict(chosen) if place(0) else None


def search(
    pools: Sequence[LegPool],
    window: Span,
    *,
    grid: int = 5,
    count: int = 10,
    allowed: Sequence[Span] | None = None,
    score: Callable[[str, Candidate, int, dict[str, Candidate]], tuple[int, ...]] | None = None,
    origin: int = 0,
) -> list[Assignment]:
    """The earliest ``count`` grid-aligned starts in ``window`` with a full assignment.

    ``allowed``, if given, are closed ranges of acceptable starts (times of day, hold dates).
    """
    ranges = case_starts(pools, window)
    if allowed is not None:
        ranges = intersect(ranges, merge_closed(allowed))
    found: list[Assignment] = []
    for start in grid_points(ranges, grid, origin):
        chosen = assign(pools, start, score=score)
        if chosen is not None:
            found.append(Assignment(start, chosen))
            if len(found) >= count:
                break
    return found
