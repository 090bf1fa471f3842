"""When an anticoagulant or antiplatelet hold lets a case take place."""

from __future__ import annotations

from datetime import date

from core.dates import add_days


def hold_first_allowed_day(last_dose_on: date | None, hold_days: int, today: date) -> date:
    """The first day a case may take place under one hold: ``hold_days`` whole days without
    the drug after the last dose. While no last dose is recorded the patient is taken to be
    still on it, so the hold counts from today.

    A last dose at the end of the calendar (only in a row written around validation) gives the
    calendar's last day, which no case can reach.
    """
    return add_days(last_dose_on or today, hold_days + 1)
