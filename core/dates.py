"""Date arithmetic that cannot overflow on a stored value outside the clinic's years.

Validation keeps every date entered within the clinic's years, but a row written around it (a
data migration, a fix in SQL) may hold 0001-01-01 or 9999-12-31. Reading such a row must not
turn a daily list, a checklist or a search into a server error, so these clamp to the ends of
Python's calendar, where no case can ever fall, instead of raising OverflowError.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from core.errors import BookingInvalid, Problem


def add_days(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def to_local(moment: datetime, zone: ZoneInfo) -> datetime:
    """``moment`` in ``zone``; a moment whose local time falls off the calendar (year 1 west of
    UTC, year 9999 east of it) becomes the calendar's first or last local moment."""
    try:
        return moment.astimezone(zone)
    except OverflowError:
        if moment.year > date.max.year // 2:
            return datetime.max.replace(tzinfo=zone)
        return datetime.min.replace(tzinfo=zone)


def require_aware(value: datetime, field: str) -> None:
    """Refuse a naive time: it is ambiguous for a clinic in another zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise BookingInvalid([Problem("naive_datetime", f"{field} must include a UTC offset.", field=field)])
