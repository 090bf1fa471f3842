from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.dateparse import parse_datetime
from rest_framework import serializers


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time that must carry its UTC offset: a naive time is ambiguous for a
    clinic in another zone and is refused rather than guessed."""

    default_error_messages = {
        "naive": "Include a UTC offset, e.g. 2027-01-11T09:00:00-06:00.",
        "invalid": "Use ISO 8601 with a UTC offset, e.g. 2027-01-11T09:00:00-06:00.",
        "range": "The year must be between 2000 and 2200.",
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
        if not 2000 <= parsed.year <= 2200:
            self.fail("range")
        return parsed


def local_iso(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat()
