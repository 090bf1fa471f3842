"""The no-double-booking guarantee, as seen from the services.

The database is the guarantee (an exclusion constraint per resource column on PostgreSQL,
triggers on SQLite). Before inserting, the services take per-resource advisory locks in one
fixed order, so two raced bookings queue instead of deadlocking inside the GiST index, and
look for clashes to explain them in words; the constraint is the last line for any path
that skips this.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q

from core.errors import SlotUnavailable
from scheduling.models import RESOURCE_COLUMNS, Allocation, LegRole
from scheduling.resources import BoundLeg, describe_resource, local_span

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


def lock_resources(legs: Iterable[BoundLeg]) -> None:
    """Lock every resource of these legs (see ``lock_keys``)."""
    lock_keys((leg.column, leg.resource_id) for leg in legs)


def find_clashes(legs: list[BoundLeg], *, exclude_booking_id: int | None = None) -> list[tuple[BoundLeg, Allocation]]:
    """Active legs of other bookings that overlap the requested legs, paired with them."""
    if not legs:
        return []
    condition = Q()
    for leg in legs:
        condition |= Q(**{f"{leg.column}_id": leg.resource_id}, starts_at__lt=leg.ends_at, ends_at__gt=leg.starts_at)
    existing = Allocation.objects.filter(condition, is_active=True)
    if exclude_booking_id is not None:
        existing = existing.exclude(booking_id=exclude_booking_id)
    pairs = []
    for other in existing.order_by("starts_at", "id"):
        for leg in legs:
            if (
                leg.column == other.resource_column
                and leg.resource_id == other.resource_id
                and other.starts_at < leg.ends_at
                and leg.starts_at < other.ends_at
            ):
                pairs.append((leg, other))
    return pairs


def describe_clashes(pairs: list[tuple[BoundLeg, Allocation]], zone: ZoneInfo) -> list[dict[str, Any]]:
    out = []
    for leg, other in pairs:
        resource = describe_resource(leg.resource)
        if leg.role == LegRole.PATIENT:
            message = f"The patient already has a case {local_span(other.starts_at, other.ends_at, zone)}."
        else:
            message = (
                f"{resource['name']} is already booked {local_span(other.starts_at, other.ends_at, zone)}"
                f" (needed {local_span(leg.starts_at, leg.ends_at, zone)} as {leg.role.label.lower()})."
            )
        out.append(
            {
                "role": str(leg.role),
                "resource": resource,
                "requested": {"start": leg.starts_at.isoformat(), "end": leg.ends_at.isoformat()},
                "clashing": {
                    "booking": other.booking_id,
                    "role": other.role,
                    "start": other.starts_at.isoformat(),
                    "end": other.ends_at.isoformat(),
                },
                "message": message,
            }
        )
    return out


def ensure_free(legs: list[BoundLeg], zone: ZoneInfo, *, exclude_booking_id: int | None = None) -> None:
    pairs = find_clashes(legs, exclude_booking_id=exclude_booking_id)
    if pairs:
        raise SlotUnavailable(describe_clashes(pairs, zone))


def _sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


def is_overlap_violation(exc: BaseException) -> bool:
    if _sqlstate(exc) in OVERLAP_SQLSTATES:
        return True
    # SQLite triggers abort with the constraint's name as the message.
    return connection.vendor == "sqlite" and "no_overlap" in str(exc)


@contextmanager
def overlap_as_conflict(legs: list[BoundLeg], zone: ZoneInfo) -> Iterator[None]:
    """Run inserts in a savepoint; an overlap the database refuses becomes SlotUnavailable."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        if not is_overlap_violation(exc):
            raise
        raise SlotUnavailable(describe_clashes(find_clashes(legs), zone)) from exc
    except DatabaseError as exc:
        if _sqlstate(exc) not in RACE_SQLSTATES:
            raise
        raise SlotUnavailable([]) from exc
