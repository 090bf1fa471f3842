"""The day board: every room, C-arm and other equipment, staff member and recovery bay of a site
on one local day, each leg a bar, downtime and time off as blocks, and the projected delays of a
late case. A fixed number of queries however many cases.

What a bar says depends on who looks: a patient's initials only to a role that sees the case;
the procedure and physician to everyone on the procedure day.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from procedure_day.projection import CaseState, Delay, PlannedLeg, projected_delays, projected_window
from rooms.models import Downtime, Equipment, OpeningHours, ProcedureRoom, RecoveryBay, Site
from scheduling.legroles import LEG_ROLES, LegRole
from scheduling.models import Allocation, Booking
from scheduling.selectors import booking_rows_visible_to, site_day_legs
from scheduling.words import local_span
from staff.models import StaffMember, StaffRole, TimeOff

# The groups of rows, top to bottom, and the staff roles each holds.
STAFF_GROUPS = (
    ("Physicians", (StaffRole.PHYSICIAN,)),
    ("Radiology techs", (StaffRole.RAD_TECH,)),
    ("Nurses and anaesthesia", (StaffRole.NURSE, StaffRole.ANESTHESIA)),
    ("Device reps", (StaffRole.DEVICE_REP,)),
)


@dataclass(frozen=True)
class Bar:
    leg_id: int
    booking_id: int
    role: str
    status: str
    status_label: str
    label: str
    title: str
    starts_at: datetime
    ends_at: datetime
    left: float
    width: float
    delay: Delay | None
    opens_case: bool
    # Where the leg is expected to lie when its case runs late or waits for one (dashed).
    ghost: tuple[float, float] | None = None


@dataclass(frozen=True)
class Block:
    """Downtime or time off on a row: hatched, with what it is."""

    label: str
    starts_at: datetime
    ends_at: datetime
    left: float
    width: float


@dataclass
class Row:
    key: str
    name: str
    bars: list[Bar] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Group:
    title: str
    rows: list[Row]


@dataclass
class Board:
    site: Site
    day: date
    starts_at: datetime
    ends_at: datetime
    hours: list[tuple[str, float]]
    groups: list[Group]
    now_left: float | None
    delays: dict[int, Delay]
    patient_ids: list[int]
    bar_count: int

    @property
    def late(self) -> list[int]:
        return sorted(pk for pk, delay in self.delays.items() if delay.running_late)


def initials(first: str, last: str) -> str:
    return "".join(f"{part[0].upper()}." for part in (first.strip(), last.strip()) if part)


def case_states(bookings: list[Booking]) -> dict[int, CaseState]:
    return {b.pk: CaseState(b.status, b.procedure_ended_at is not None) for b in bookings}


def planned(leg: Allocation) -> PlannedLeg:
    return PlannedLeg(leg.booking_id, leg.role, leg.resource_column, leg.resource_id, leg.starts_at, leg.ends_at)


def day_delays(site: Site, day: date, *, now: datetime) -> dict[int, Delay]:
    """The projected delays of the site's day (one query): see ``projection``."""
    legs = list(site_day_legs(site, day))
    return _delays(legs, now)


def _delays(legs: list[Allocation], now: datetime) -> dict[int, Delay]:
    bookings = {leg.booking_id: leg.booking for leg in legs}
    return projected_delays([planned(leg) for leg in legs], case_states(list(bookings.values())), now)


def site_day_staff(site: Site, day: date, legs: list[Allocation]) -> list[StaffMember]:
    """The staff of the site's day: everyone with a leg, and the active staff with a shift there
    that weekday. One query."""
    staff_ids = {leg.staff_id for leg in legs if leg.staff_id is not None}
    return list(
        StaffMember.objects.filter(
            Q(pk__in=staff_ids) | Q(is_active=True, shifts__site=site, shifts__weekday=day.weekday())
        )
        .distinct()
        .order_by("last_name", "first_name", "id")
    )


def day_blocks(site: Site, day: date, staff: list[StaffMember]) -> tuple[list[Downtime], list[TimeOff]]:
    """The downtime of the site's rooms and equipment and the time off of ``staff`` that overlap
    its local ``day``. Two queries."""
    start = datetime.combine(day, time(0), tzinfo=site.zone)
    end = start + timedelta(days=1)
    downtimes = list(
        Downtime.objects.filter(Q(room__site=site) | Q(equipment__site=site), starts_at__lt=end, ends_at__gt=start)
        .select_related("room", "equipment")
        .order_by("starts_at", "id")
    )
    time_off = list(
        TimeOff.objects.filter(staff_id__in=[member.pk for member in staff], starts_at__lt=end, ends_at__gt=start)
        .select_related("staff")
        .order_by("starts_at", "id")
    )
    return downtimes, time_off


def _axis(site: Site, day: date, legs: list[Allocation]) -> tuple[datetime, datetime]:
    """From the earliest opening (or leg) to the latest closing (or leg), on whole hours."""
    zone = site.zone
    hours = OpeningHours.objects.filter(site=site, weekday=day.weekday())
    opens = [datetime.combine(day, row.opens_at, tzinfo=zone) for row in hours]
    closes = [datetime.combine(day, row.closes_at, tzinfo=zone) for row in hours]
    midnight = datetime.combine(day, time(0), tzinfo=zone)
    first = min([*opens, *(leg.starts_at for leg in legs)], default=midnight + timedelta(hours=7))
    last = max([*closes, *(leg.ends_at for leg in legs)], default=midnight + timedelta(hours=18))
    first = max(first.astimezone(zone), midnight).replace(minute=0, second=0, microsecond=0)
    end_of_day = midnight + timedelta(days=1)
    last = min(last.astimezone(zone), end_of_day)
    if last != last.replace(minute=0, second=0, microsecond=0):
        last = last.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if last <= first:
        last = first + timedelta(hours=1)
    return first, last


class _Scale:
    """Percent of the axis for a moment; in UTC, so a day that changes its clock keeps its scale."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.start = start.astimezone(UTC)
        self.end = end.astimezone(UTC)
        self.seconds = (self.end - self.start).total_seconds()

    def place(self, start: datetime, end: datetime) -> tuple[float, float]:
        lo = max(start, self.start)
        hi = min(end, self.end)
        left = (lo - self.start).total_seconds() / self.seconds * 100
        width = max((hi - lo).total_seconds(), 0) / self.seconds * 100
        return round(left, 3), round(width, 3)


def _label(booking: Booking, physician: str | None, names: dict[int, tuple[str, str]], zone: Any) -> tuple[str, str]:
    code = booking.procedure_type.code
    parts = []
    if booking.pk in names:
        parts.append(initials(*names[booking.pk]))
    parts.append(code)
    if physician:
        parts.append(physician)
    local_start = booking.starts_at.astimezone(zone)
    title = f"Case {booking.pk} · {code} · {booking.get_status_display()} · {local_start:%H:%M}"
    if physician:
        title += f" · {physician}"
    return " · ".join(parts), title


def day_board(user: Any, site: Site, day: date, *, now: datetime | None = None) -> Board:
    """The board of ``site`` on its local ``day`` as ``user`` may see it. Ten queries."""
    now = now or timezone.now()
    zone = site.zone
    legs = list(site_day_legs(site, day))
    bookings = {leg.booking_id: leg.booking for leg in legs}
    visible = set(booking_rows_visible_to(user).filter(pk__in=list(bookings)).values_list("pk", flat=True))
    names = {
        pk: (first, last)
        for pk, first, last in Booking.objects.filter(pk__in=visible).values_list(
            "pk", "patient__first_name", "patient__last_name"
        )
    }
    delays = _delays(legs, now)
    physicians: dict[int, str] = {}
    for leg in legs:
        if leg.role == LegRole.PHYSICIAN and leg.staff is not None:
            physicians[leg.booking_id] = f"Dr. {leg.staff.last_name}"

    start, end = _axis(site, day, legs)
    scale = _Scale(start, end)

    rooms = list(ProcedureRoom.objects.filter(site=site, is_active=True).order_by("name", "id"))
    equipment = list(Equipment.objects.filter(site=site, is_active=True).order_by("kind", "name", "id"))
    bays = list(RecoveryBay.objects.filter(site=site, is_active=True).order_by("name", "id"))
    staff = site_day_staff(site, day, legs)
    rows: dict[tuple[str, int], Row] = {}
    for column, items in (("room", rooms), ("equipment", equipment), ("bay", bays), ("staff", staff)):
        for item in items:
            rows[(column, item.pk)] = Row(f"{column}-{item.pk}", str(item))

    for leg in legs:
        row = rows.get((leg.resource_column, leg.resource_id))
        booking = bookings[leg.booking_id]
        if row is None:
            # A resource made inactive since the case was booked still shows its legs.
            resource = getattr(leg, leg.resource_column)
            row = rows[(leg.resource_column, leg.resource_id)] = Row(
                f"{leg.resource_column}-{leg.resource_id}", str(resource)
            )
        label, title = _label(booking, physicians.get(leg.booking_id), names, zone)
        title += f" · {LEG_ROLES[leg.role].label} {local_span(leg.starts_at, leg.ends_at, zone)}"
        left, width = scale.place(leg.starts_at, leg.ends_at)
        delay = delays.get(leg.booking_id)
        ghost = scale.place(*projected_window(planned(leg), delay)) if delay is not None else None
        row.bars.append(
            Bar(
                leg.pk,
                leg.booking_id,
                leg.role,
                booking.status,
                booking.get_status_display(),
                label,
                title,
                leg.starts_at,
                leg.ends_at,
                left,
                width,
                delay,
                leg.booking_id in visible,
                ghost,
            )
        )

    downtimes, time_off = day_blocks(site, day, staff)
    for down in downtimes:
        key = ("room", down.room_id) if down.room_id is not None else ("equipment", down.equipment_id)
        target = rows.get(key)  # type: ignore[arg-type]
        if target is not None:
            left, width = scale.place(down.starts_at, down.ends_at)
            target.blocks.append(Block(f"Down: {down.get_reason_display()}", down.starts_at, down.ends_at, left, width))
    for off in time_off:
        target = rows.get(("staff", off.staff_id))
        if target is not None:
            left, width = scale.place(off.starts_at, off.ends_at)
            target.blocks.append(Block("Time off", off.starts_at, off.ends_at, left, width))

    by_role: dict[str, list[Row]] = defaultdict(list)
    for member in staff:
        by_role[member.role].append(rows[("staff", member.pk)])
    groups = [
        Group("Procedure rooms", [rows[("room", r.pk)] for r in rooms]),
        Group("C-arms and equipment", [rows[("equipment", e.pk)] for e in equipment]),
        *(Group(title, [row for role in roles for row in by_role[role]]) for title, roles in STAFF_GROUPS),
        Group("Recovery bays", [rows[("bay", b.pk)] for b in bays]),
    ]
    listed = {id(row) for group in groups for row in group.rows}
    orphans = [row for row in rows.values() if id(row) not in listed and row.bars]
    if orphans:
        groups.append(Group("No longer in service", orphans))
    groups = [group for group in groups if group.rows]

    hours = []
    moment = start.astimezone(UTC)
    while moment < end:
        hours.append((f"{moment.astimezone(zone):%H:%M}", scale.place(moment, moment)[0]))
        moment += timedelta(hours=1)
    now_left = scale.place(now, now)[0] if start <= now <= end else None
    return Board(
        site=site,
        day=day,
        starts_at=start,
        ends_at=end,
        hours=hours,
        groups=groups,
        now_left=now_left,
        delays=delays,
        patient_ids=sorted({b.patient_id for pk, b in bookings.items() if pk in names}),
        bar_count=len(legs),
    )
