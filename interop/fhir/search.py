"""FHIR search parameters: dates with prefixes, references, tokens and paging."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
DEFAULT_COUNT = 50
MAX_COUNT = 200
MAX_OFFSET = 100_000
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


class BadSearch(ValueError):
    """A search parameter the server cannot read; the message says which and why."""


@dataclass(frozen=True)
class DateBound:
    prefix: str
    lo: datetime
    hi: datetime


def _next_month(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1)


def parse_date(name: str, raw: str, zone: ZoneInfo) -> DateBound:
    """A ``date``-type value with an optional prefix, as the range it stands for. A date
    without a time is a day (or month, or year) in ``zone``, the clinic's."""
    prefix, value = (raw[:2], raw[2:]) if raw[:2] in PREFIXES else ("eq", raw)
    match = _DATE.match(value)
    try:
        if match:
            year, month, day = (int(part) if part else None for part in match.groups())
            assert year is not None
            if day is not None and month is not None:
                first = date(year, month, day)
                last = first + timedelta(days=1)
            elif month is not None:
                first, last = date(year, month, 1), _next_month(year, month)
            else:
                first, last = date(year, 1, 1), date(year + 1, 1, 1)
            lo = datetime.combine(first, time(0), tzinfo=zone)
            hi = datetime.combine(last, time(0), tzinfo=zone)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise BadSearch(f"{name}: a date-time needs a time zone (e.g. {value}Z).")
            lo, hi = moment, moment + timedelta(seconds=1)
    except (ValueError, AssertionError) as exc:
        if isinstance(exc, BadSearch):
            raise
        raise BadSearch(f"{name}: {raw!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or a date-time).") from exc
    if not 1900 <= lo.year <= 2200:
        raise BadSearch(f"{name}: {raw!r} is out of range.")
    return DateBound(prefix, lo, hi)


def date_condition(field: str, bound: DateBound) -> Q:
    """The condition on an instant ``field`` for one prefixed date value."""
    inside = Q(**{f"{field}__gte": bound.lo, f"{field}__lt": bound.hi})
    match bound.prefix:
        case "eq" | "ap":
            return inside
        case "ne":
            return ~inside
        case "gt" | "sa":
            return Q(**{f"{field}__gte": bound.hi})
        case "lt" | "eb":
            return Q(**{f"{field}__lt": bound.lo})
        case "ge":
            return Q(**{f"{field}__gte": bound.lo})
        case _:  # le
            return Q(**{f"{field}__lt": bound.hi})


def parse_count(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_COUNT
    if not raw.isdigit() or not 0 <= int(raw) <= MAX_COUNT:
        raise BadSearch(f"_count: give a whole number from 0 to {MAX_COUNT}.")
    return int(raw)


def parse_offset(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    if not raw.isdigit() or int(raw) > MAX_OFFSET:
        raise BadSearch("_offset: give a whole number (it comes from a Bundle's next link).")
    return int(raw)


def reference_id(name: str, raw: str, kinds: tuple[str, ...]) -> tuple[str, str]:
    """``Kind/id`` (or a bare id when one kind is allowed) as (kind, id)."""
    value = raw.rsplit("/_history", 1)[0]
    parts = value.split("/")
    if len(parts) >= 2:
        kind, ident = parts[-2], parts[-1]
    elif len(kinds) == 1:
        kind, ident = kinds[0], value
    else:
        raise BadSearch(f"{name}: name the resource as Type/id ({', '.join(kinds)}).")
    if kind not in kinds or not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", ident):
        raise BadSearch(f"{name}: {raw!r} is not a reference to {' or '.join(kinds)}.")
    return kind, ident


def numeric_id(name: str, raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise BadSearch(f"{name}: {raw!r} is not an id this server gives.")
    return int(raw)


def split_prefixed(raw: str) -> tuple[str, int] | None:
    """``room-12`` → ("room", 12); None if the id is not of that shape."""
    kind, _, number = raw.partition("-")
    if not number.isdigit() or len(number) > 18:
        return None
    return kind, int(number)
