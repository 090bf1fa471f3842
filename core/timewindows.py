"""Local wall-clock rules (opening hours, shifts) expanded to UTC intervals per date.

Every stored time is UTC; rules are written in the site's own zone. Expanding per date with
the zone's rules keeps 07:00-17:00 at 07:00-17:00 local on both DST change days.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.core.exceptions import ValidationError


@dataclass(frozen=True, order=True)
class Interval:
    start: datetime
    end: datetime

    def contains(self, start: datetime, end: datetime) -> bool:
        return self.start <= start and end <= self.end

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


def validate_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"{name!r} is not an IANA time zone name.") from exc
    if name not in available_timezones():
        raise ValidationError(f"{name!r} is not an IANA time zone name.")


def local_to_utc(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time on a date.

    A time skipped by a spring-forward change is moved forward by the gap (02:30 becomes 03:30),
    and an ambiguous autumn time takes its first occurrence, which is what a person reading a
    roster means.
    """
    # zoneinfo resolves fold=0 with the offset in force before a change, which gives exactly
    # those two readings for skipped and repeated times.
    return datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)


def expand_weekly(
    rules: Iterable[tuple[int, time, time]], zone: ZoneInfo, first_day: date, last_day: date
) -> Iterator[Interval]:
    """Yield one UTC interval per rule per matching local date in [first_day, last_day].

    A rule is ``(weekday, starts, ends)`` with Monday as 0; ``ends`` at or before ``starts``
    runs past midnight into the next day.
    """
    by_weekday: dict[int, list[tuple[time, time]]] = {}
    for weekday, starts, ends in rules:
        by_weekday.setdefault(weekday, []).append((starts, ends))
    day = first_day
    while day <= last_day:
        for starts, ends in by_weekday.get(day.weekday(), ()):
            end_day = day if ends > starts else day + timedelta(days=1)
            yield Interval(local_to_utc(day, starts, zone), local_to_utc(end_day, ends, zone))
        day += timedelta(days=1)


def local_dates_between(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[date, date]:
    """The first and last local dates touched by ``[start, end)``, widened by a day each way
    so rules that run past midnight are included."""
    return (start.astimezone(zone).date() - timedelta(days=1), end.astimezone(zone).date())


def covered(intervals: Iterable[Interval], start: datetime, end: datetime) -> bool:
    """Whether the union of ``intervals`` covers ``[start, end)`` without a gap."""
    cursor = start
    for interval in sorted(intervals):
        if interval.start > cursor:
            break
        if interval.end > cursor:
            cursor = interval.end
        if cursor >= end:
            return True
    return cursor >= end
