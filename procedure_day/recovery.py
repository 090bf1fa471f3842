"""The recovery clock: from the start of recovery, the minimum flat time (the cement sets while
the patient lies on their back), then observation until the procedure type's minimum recovery
has passed and the patient may be made ready for discharge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduling.models import Booking


@dataclass(frozen=True)
class RecoveryClock:
    started_at: datetime
    flat_until: datetime
    due: datetime
    flat_minutes: int
    minutes: int


def recovery_clock(booking: Booking) -> RecoveryClock | None:
    """The case's recovery clock once recovery has started; None before. Expects the
    procedure type loaded."""
    started = booking.recovery_started_at
    if started is None:
        return None
    procedure = booking.procedure_type
    return RecoveryClock(
        started,
        started + timedelta(minutes=procedure.recovery_flat_minutes),
        started + timedelta(minutes=procedure.recovery_minutes),
        procedure.recovery_flat_minutes,
        procedure.recovery_minutes,
    )
