"""Reads more than one face needs, each in a fixed number of queries: the cases and patients a
user may see, a site's day, and the next feasible starts after a refused one.

"Own case" is defined once, in ``own_case_legs``; every visibility rule derives from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from patients.models import Patient
from rooms.models import Downtime, Site
from scheduling import policy
from scheduling.availability.search import SearchQuery, Slot, availability_search
from scheduling.legroles import LEG_ROLES, LegRole
from scheduling.models import ACTIVE_STATUSES, Allocation, Booking
from scheduling.request import CaseRequest


def own_case_legs(user: Any) -> QuerySet[Allocation] | None:
    """The one definition of "own case": None when the user's role reads every case, otherwise
    the legs that make a case theirs (possibly none).

    A case is the user's own while their staff record holds an *active* leg of it. A leg that
    was deactivated (moved to another physician by a reschedule, released after a late end,
    freed by a cancellation or a no-show) no longer counts, so whoever is moved off a case loses
    it, and its patient, at once.
    """
    if policy.sees_every_case(user):
        return None
    member = getattr(user, "staff_member", None)
    if member is None or not policy.reads_own_cases(user):
        return Allocation.objects.none()
    return Allocation.objects.filter(staff=member, is_active=True)


def booking_rows_visible_to(user: Any) -> QuerySet[Booking]:
    """Bookings the user may read or act on, without related rows (for checks and subqueries)."""
    legs = own_case_legs(user)
    bookings = Booking.objects.all()
    return bookings if legs is None else bookings.filter(pk__in=legs.values("booking_id"))


def bookings_with_legs() -> QuerySet[Booking]:
    return Booking.objects.select_related(
        "patient", "procedure_type", "site", "anticoagulant_override_by"
    ).prefetch_related(
        Prefetch("legs", queryset=Allocation.objects.select_related("room", "equipment", "staff", "bay", "patient"))
    )


def bookings_visible_to(user: Any) -> QuerySet[Booking]:
    """Bookings the user may read, with their legs, resources, patient, site and procedure."""
    legs = own_case_legs(user)
    bookings = bookings_with_legs()
    return bookings if legs is None else bookings.filter(pk__in=legs.values("booking_id"))


def patients_visible_to(user: Any) -> QuerySet[Patient]:
    """Patients of the bookings the user may read; any other patient is treated as unknown."""
    legs = own_case_legs(user)
    patients = Patient.objects.all()
    return patients if legs is None else patients.filter(pk__in=legs.values("booking__patient_id"))


def patients_bookable_by(user: Any) -> QuerySet[Patient]:
    """Patients a user may open a case for: any, for the roles that book (a physician books
    their own cases, which is how a patient becomes theirs); none otherwise."""
    if policy.may(user, policy.BOOKERS | policy.OWN_CASE_BOOKERS):
        return Patient.objects.all()
    return Patient.objects.none()


def patients_shown_for_booking(user: Any) -> QuerySet[Patient]:
    """Patients a page may show by name to book a case for: bookable by the user and already
    visible to them (a physician books for their own patients; an id alone reveals no one)."""
    legs = own_case_legs(user)
    bookable = patients_bookable_by(user)
    return bookable if legs is None else bookable.filter(pk__in=legs.values("booking__patient_id"))


@dataclass(frozen=True)
class LegView:
    """One leg as answers show it; a patient is "the patient"."""

    role: str
    kind: str
    resource_id: int
    name: str
    starts_at: datetime
    ends_at: datetime


def leg_views(booking: Booking) -> list[LegView]:
    """The legs that hold (or, for a closed case, held) its resources, in time order. Expects
    ``legs`` prefetched with their resources."""
    views = []
    for leg in booking.legs.all():
        if not leg.is_active and booking.is_active:
            continue
        info = LEG_ROLES[leg.role]
        resource = getattr(leg, info.column)
        name = "the patient" if info.column == "patient" else str(resource)
        views.append(LegView(leg.role, info.kind, leg.resource_id, name, leg.starts_at, leg.ends_at))
    return views


def legs_by_role(booking: Booking) -> dict[str, LegView]:
    return {view.role: view for view in leg_views(booking)}


@dataclass(frozen=True)
class ScheduleLeg:
    booking_id: int
    procedure_code: str
    status: str
    leg: LegView


def site_day_legs(site: Site, day: date) -> QuerySet[Allocation]:
    """Every active leg of every resource at ``site`` on its local ``day`` but the patients',
    with its resource, case and procedure type, in time order. One query."""
    start = datetime.combine(day, time(0), tzinfo=site.zone)
    return (
        Allocation.objects.filter(
            booking__site=site, is_active=True, starts_at__lt=start + timedelta(days=1), ends_at__gt=start
        )
        .exclude(role=LegRole.PATIENT)
        .select_related("room", "equipment", "staff", "bay", "booking__procedure_type")
        .order_by("starts_at", "id")
    )


def site_day_schedule(site: Site, day: date) -> list[ScheduleLeg]:
    """Every active leg of every resource at ``site`` on its local ``day`` but the patients'
    (no patient data), in time order. One query."""
    out = []
    for leg in site_day_legs(site, day):
        info = LEG_ROLES[leg.role]
        view = LegView(leg.role, info.kind, leg.resource_id, str(getattr(leg, info.column)), leg.starts_at, leg.ends_at)
        out.append(ScheduleLeg(leg.booking_id, leg.booking.procedure_type.code, leg.booking.status, view))
    return out


def bookings_hit_by(downtime: Downtime, *, now: datetime) -> QuerySet[Booking]:
    """Active cases with a live leg on the downtime's room or equipment overlapping it.

    Legs of an expired hold do not count: the hold no longer blocks anything.
    """
    target = Q(room_id=downtime.room_id) if downtime.room_id is not None else Q(equipment_id=downtime.equipment_id)
    legs = Allocation.objects.filter(
        target,
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        is_active=True,
        starts_at__lt=downtime.ends_at,
        ends_at__gt=downtime.starts_at,
    )
    return (
        Booking.objects.filter(pk__in=legs.values("booking_id"), status__in=ACTIVE_STATUSES)
        .select_related("site")
        .order_by("starts_at", "pk")
    )


def alternatives_after(request: CaseRequest, start: datetime, *, count: int = 3) -> list[Slot]:
    """The next feasible starts after a refused one, for the same case and pins, over four
    weeks."""
    return availability_search(
        SearchQuery(
            request=request,
            date_from=start.date(),
            date_to=start.date() + timedelta(days=27),
            count=count,
            not_before=start,
        )
    )


def cases_of_physician(user: Any, physician: Any, day: date) -> list[Booking]:
    """A physician's active-leg cases on their sites' local ``day`` that ``user`` may see (a
    tech reading a physician's list gets the cases they work on), in time order."""
    # The day is local to each case's site; a day-wide UTC window around it is narrowed below.
    start = datetime.combine(day, time(0), tzinfo=UTC) - timedelta(days=1)
    bookings = (
        bookings_visible_to(user)
        .filter(
            pk__in=Allocation.objects.filter(role=LegRole.PHYSICIAN, staff=physician, is_active=True).values(
                "booking_id"
            ),
            starts_at__gte=start,
            starts_at__lt=start + timedelta(days=3),
        )
        .order_by("starts_at", "id")
    )
    return [b for b in bookings if b.starts_at.astimezone(b.site.zone).date() == day]
