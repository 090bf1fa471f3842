from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import MultipleObjectsReturned
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.strict import from_json
from core.dates import to_local
from core.sql import fetch_one
from core.validators import FIRST_YEAR, LAST_YEAR
from rooms.zones import clinic_zone, site_zone_map, zone_of


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time that must carry its UTC offset: a naive time is ambiguous for a
    clinic in another zone and is refused rather than guessed."""

    default_error_messages = {
        "naive": "Include a UTC offset, e.g. 2027-01-11T09:00:00-06:00.",
        "invalid": "Use ISO 8601 with a UTC offset, e.g. 2027-01-11T09:00:00-06:00.",
        "range": f"The year must be between {FIRST_YEAR} and {LAST_YEAR}.",
    }

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            parsed: datetime | None = value
        elif isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
        else:
            parsed = None
        if parsed is None:
            self.fail("invalid")
        assert parsed is not None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail("naive")
        if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
            self.fail("range")
        return parsed

    # Every instant the API answers carries the offset of the site it belongs to (a downtime
    # its room's, a shift its own), or the clinic's zone for what belongs to no one site (a
    # lab result, a key): one convention, so a client never mixes UTC and local times.
    def get_attribute(self, instance: Any) -> Any:
        self._zone = zone_of(instance, self._zones())
        return super().get_attribute(instance)

    def to_representation(self, value: Any) -> Any:
        if not isinstance(value, datetime):
            return super().to_representation(value)
        zone = getattr(self, "_zone", None) or clinic_zone(self._zones())
        return to_local(value, zone).isoformat()

    def _zones(self) -> dict[int, ZoneInfo]:
        """The sites' zones, read once per answer (kept on the outermost serializer)."""
        root = self.root
        zones: dict[int, ZoneInfo] | None = getattr(root, "_site_zones", None)
        if zones is None:
            zones = site_zone_map()
            root._site_zones = zones  # type: ignore[attr-defined]
        return zones


@extend_schema_field({"type": "string", "format": "date-time", "example": "2027-01-11T09:00:00-06:00"})
class InstantText(serializers.CharField):
    """An instant an answer gives already written with its site's offset (ISO 8601)."""


def local_iso(moment: datetime, zone: ZoneInfo) -> str:
    return to_local(moment, zone).isoformat()


MAX_ID = 2**63 - 1


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdField(serializers.PrimaryKeyRelatedField):
    """A primary key that is checked to be a positive 64-bit integer before any query, so an
    absurd id is a 400 (it breaks the schema), never a database error; an id of the right
    form that names no record is a 422."""

    default_error_messages = {"out_of_range": f"An id is a whole number from 1 to {MAX_ID}."}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if isinstance(data, str) and from_json(self):
            # A JSON body gives an id as a number, as the schema says.
            self.fail("incorrect_type", data_type="str")
        text = str(data).strip()
        if not re.fullmatch(r"[0-9]{1,19}", text) or not 1 <= int(text) <= MAX_ID:
            self.fail("out_of_range")
        queryset = self.get_queryset()
        assert queryset is not None
        found = fetch_one(queryset, "pk", int(text))
        if found is None:
            self.fail("does_not_exist", pk_value=data)
        return found


class ClinicDateField(serializers.DateField):
    """A calendar date within the years the clinic schedules (2000-2200 unless told otherwise,
    e.g. birth dates start earlier)."""

    default_error_messages = {"range": "The year must be between {first} and {last}."}

    def __init__(self, *args: Any, first_year: int = FIRST_YEAR, last_year: int = LAST_YEAR, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first_year = first_year
        self.last_year = last_year

    def to_internal_value(self, value: Any) -> Any:
        parsed = super().to_internal_value(value)
        if not self.first_year <= parsed.year <= self.last_year:
            self.fail("range", first=self.first_year, last=self.last_year)
        return parsed


@extend_schema_field({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$", "example": "07:00"})
class WallClockTimeField(serializers.TimeField):
    """A local wall-clock time (HH:MM or HH:MM:SS) in the site's zone; no offset, by design."""


CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$"


@extend_schema_field({"type": "string", "pattern": CODE_PATTERN, "example": "VP"})
class CodeField(serializers.SlugRelatedField):
    """A catalogue code (letters, digits, dashes), checked before it reaches a query: a code
    of another form breaks the schema (400), one of this form that names nothing is a 422."""

    pattern = re.compile(CODE_PATTERN)
    default_error_messages = {"invalid_code": "A code is 1 to 40 letters, digits, dashes or underscores."}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or not self.pattern.fullmatch(data):
            self.fail("invalid_code")
        queryset = self.get_queryset()
        assert queryset is not None
        try:
            found = fetch_one(queryset, self.slug_field, data)
        except MultipleObjectsReturned:
            self.fail("invalid")
        if found is None:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return found


class PinField(serializers.IntegerField):
    """The id of a resource a request pins: a positive 64-bit integer. Whether it exists and
    may do the case is the rulebook's answer, not a lookup here."""

    default_error_messages = {"invalid": "A resource id is a positive whole number."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        return int(super().to_internal_value(data))
