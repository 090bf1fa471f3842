"""Times and resources as people read them: local wall-clock times, and resource names that
never name a patient."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from patients.models import Patient


def local_hhmm(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


def local_span(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    first, last = start.astimezone(zone), end.astimezone(zone)
    if first.date() == last.date():
        return f"{first:%H:%M}–{last:%H:%M}"
    return f"{first:%Y-%m-%d %H:%M}–{last:%Y-%m-%d %H:%M}"


def resource_name(obj: Any) -> str:
    # A patient's name is protected health information; errors and schedules say "the patient".
    return "the patient" if isinstance(obj, Patient) else str(obj)
