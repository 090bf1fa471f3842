"""The no-double-booking guarantee, as seen from the services.

The database is the guarantee (an exclusion constraint per resource column on PostgreSQL,
triggers on SQLite). Before reading which resources are busy, the services take per-resource
advisory locks in one fixed order, so two raced bookings queue instead of deadlocking inside the
GiST index; the rulebook then sees every committed leg. The constraint is the last line for any
path that skips this: a refused insert becomes a clash (409), never a server error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import DatabaseError, IntegrityError, connection
from django.db.models import Q

from core.dates import to_local
from core.errors import SlotUnavailable
from scheduling.legroles import LEG_ROLES, RESOURCE_COLUMNS
from scheduling.models import Allocation
from scheduling.words import local_span

# Advisory lock namespace per resource column (the first key of the two-int form).
LOCK_NAMESPACE = {column: 0x5C00 + i for i, column in enumerate(RESOURCE_COLUMNS)}
OVERLAP_SQLSTATES = {"23P01"}
# A deadlock or serialization failure means a writer skipped the lock order; it is still a
# lost race for this request, not a server fault.
RACE_SQLSTATES = {"40P01", "40001"}


def lock_keys(keys: Iterable[tuple[str, int]]) -> None:
    """Take transaction-scoped advisory locks on ``(resource column, id)`` pairs, in one global
    ascending order, so every writer that locks overlapping sets queues instead of deadlocking.

    Must run inside the writer's transaction. On SQLite the IMMEDIATE transaction already
    holds the database's single write lock, so there is nothing to add.
    """
    if connection.vendor != "postgresql":
        return
    ordered = sorted({(LOCK_NAMESPACE[column], rid) for column, rid in keys})
    if not ordered:
        return
    with connection.cursor() as cursor:
        # unnest yields rows in array order, so the locks are taken in that order.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(k, i::integer) FROM unnest(%s::integer[], %s::bigint[]) AS t(k, i)",
            [[k for k, _ in ordered], [i for _, i in ordered]],
        )


@dataclass(frozen=True)
class PlannedLeg:
    """A leg about to be written: enough to name a clash if the database refuses it."""

    role: str
    column: str
    resource_id: int
    name: str
    starts_at: datetime
    ends_at: datetime


def _sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


def is_overlap_violation(exc: BaseException) -> bool:
    if _sqlstate(exc) in OVERLAP_SQLSTATES:
        return True
    # SQLite triggers abort with the constraint's name as the message.
    return connection.vendor == "sqlite" and "no_overlap" in str(exc)


def is_lost_race(exc: BaseException) -> bool:
    """An insert the database refused because another case holds a resource, or a deadlock or
    serialization failure of a writer that skipped the lock order."""
    if isinstance(exc, IntegrityError):
        return is_overlap_violation(exc)
    return isinstance(exc, DatabaseError) and _sqlstate(exc) in RACE_SQLSTATES


def clashes_after_refusal(legs: list[PlannedLeg], zone: ZoneInfo) -> SlotUnavailable:
    """The clash to report for legs the database refused, read after the refused transaction
    has rolled back (its locks are gone, so this reads what the winner committed)."""
    condition = Q()
    for leg in legs:
        condition |= Q(**{f"{leg.column}_id": leg.resource_id}, starts_at__lt=leg.ends_at, ends_at__gt=leg.starts_at)
    conflicts: list[dict[str, Any]] = []
    for other in Allocation.objects.filter(condition, is_active=True).order_by("starts_at", "id"):
        for leg in legs:
            if (
                leg.column == other.resource_column
                and leg.resource_id == other.resource_id
                and other.starts_at < leg.ends_at
                and leg.starts_at < other.ends_at
            ):
                held = local_span(other.starts_at, other.ends_at, zone)
                noun = LEG_ROLES[leg.role].noun
                if leg.column == "patient":
                    message = f"The patient already has a case {held}."
                else:
                    message = (
                        f"{leg.name} is booked {held} ({noun} needed {local_span(leg.starts_at, leg.ends_at, zone)})."
                    )
                conflicts.append(
                    {
                        "role": leg.role,
                        "code": "patient_busy" if leg.column == "patient" else "resource_booked",
                        "resource": {
                            "kind": LEG_ROLES[leg.role].kind,
                            "id": leg.resource_id,
                            "name": "the patient" if leg.column == "patient" else leg.name,
                        },
                        "requested": {
                            "start": to_local(leg.starts_at, zone).isoformat(),
                            "end": to_local(leg.ends_at, zone).isoformat(),
                        },
                        "clashing": {
                            "booking": other.booking_id,
                            "role": other.role,
                            "start": to_local(other.starts_at, zone).isoformat(),
                            "end": to_local(other.ends_at, zone).isoformat(),
                        },
                        "message": message,
                    }
                )
    return SlotUnavailable(conflicts)
