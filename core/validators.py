"""Validators every app's models share."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

# The years the clinic schedules in. A typed 9999 or 0202 would otherwise be stored and later
# overflow date arithmetic (a hold's end, a lab window) far from where it was entered.
FIRST_YEAR = 2000
LAST_YEAR = 2200
# Birth dates reach further back: many vertebroplasty patients are in their eighties or nineties.
FIRST_BIRTH_YEAR = 1900


@deconstructible
class YearRangeValidator:
    """Refuses a date or date-time whose year is outside ``[first, last]``."""

    code = "year_out_of_range"

    def __init__(self, first: int = FIRST_YEAR, last: int = LAST_YEAR) -> None:
        self.first = first
        self.last = last

    @property
    def message(self) -> str:
        return f"The year must be between {self.first} and {self.last}."

    def __call__(self, value: date | datetime | None) -> None:
        if value is not None and not self.first <= value.year <= self.last:
            raise ValidationError(self.message, code=self.code)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, YearRangeValidator) and (self.first, self.last) == (other.first, other.last)

    def __hash__(self) -> int:
        return hash((self.first, self.last))


clinic_years = YearRangeValidator()
birth_years = YearRangeValidator(first=FIRST_BIRTH_YEAR)
