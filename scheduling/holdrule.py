"""The one rule for anticoagulant and antiplatelet holds: when a patient's holds let a case of
a given bleeding risk take place, and when each drug must be stopped for it.

The booking services and the search (through the rulebook), the readiness gate on the day, and
the preparation reminder all ask these functions; the hold days per drug and bleeding risk are
the drug list's (``patients.Drug``), a patient's own number where recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from core.dates import add_days
from patients.models import BleedingRisk, MedicationHold, effective_hold_days


@dataclass(frozen=True)
class HoldRow:
    """A patient's hold as the rules read it."""

    id: int
    drug_code: str
    medication: str
    days_high: int
    days_intermediate: int
    days_low: int
    override: int | None
    last_dose_on: date | None

    def days_for(self, bleeding_risk: str) -> int:
        days: dict[str, int] = {
            BleedingRisk.HIGH.value: self.days_high,
            BleedingRisk.INTERMEDIATE.value: self.days_intermediate,
            BleedingRisk.LOW.value: self.days_low,
        }
        default = days.get(str(bleeding_risk), self.days_high)
        return effective_hold_days(default, self.override)

    @classmethod
    def of(cls, hold: MedicationHold) -> HoldRow:
        drug = hold.drug
        return cls(
            hold.pk,
            drug.code,
            drug.name,
            drug.hold_days_high,
            drug.hold_days_intermediate,
            drug.hold_days_low,
            hold.hold_days,
            hold.last_dose_on,
        )


def hold_first_allowed_day(last_dose_on: date | None, hold_days: int, today: date) -> date:
    """The first day a case may take place under one hold: ``hold_days`` whole days without
    the drug after the last dose. While no last dose is recorded the patient is taken to be
    still on it, so the hold counts from today.

    A last dose at the end of the calendar (only in a row written around validation) gives the
    calendar's last day, which no case can reach.
    """
    return add_days(last_dose_on or today, hold_days + 1)


@dataclass(frozen=True)
class HoldVerdict:
    """The first day a case may take place under the patient's holds, and the hold that sets
    it; ``first_day`` is None when no hold applies to the case's bleeding risk."""

    first_day: date | None = None
    hold: HoldRow | None = None
    days: int = 0

    def blocks(self, day: date) -> bool:
        return self.first_day is not None and day < self.first_day


def hold_verdict(holds: Iterable[HoldRow], bleeding_risk: str, today: date) -> HoldVerdict:
    """Whether, and until when, the patient's holds keep a case of ``bleeding_risk`` away: the
    longest hold that applies sets the first allowed day."""
    best = HoldVerdict()
    for hold in holds:
        days = hold.days_for(bleeding_risk)
        if days <= 0:
            continue
        first = hold_first_allowed_day(hold.last_dose_on, days, today)
        if best.first_day is None or first > best.first_day:
            best = HoldVerdict(first, hold, days)
    return best


@dataclass(frozen=True)
class StopNotice:
    """What the patient must be told about one drug for a case on ``case_day``."""

    hold: HoldRow
    days: int
    last_dose_day: date  # the last day the patient may take it


def stop_notices(holds: Sequence[HoldRow], bleeding_risk: str, case_day: date) -> list[StopNotice]:
    """For each hold that applies to the case, the last day the drug may be taken."""
    notices = []
    for hold in holds:
        days = hold.days_for(bleeding_risk)
        if days > 0:
            notices.append(StopNotice(hold, days, add_days(case_day, -(days + 1))))
    return sorted(notices, key=lambda n: (n.last_dose_day, n.hold.medication))
