"""What to do about the cases a downtime hits: for each, the swaps the engine finds (another
C-arm at the same time, another room at the same time, another start the same day), each a
full set of resources that the reschedule service applies as it stands."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from django.utils import timezone

from core.errors import SchedulingError
from rooms.models import Downtime
from scheduling.availability.search import SearchQuery, Slot, availability_search
from scheduling.legroles import LEG_ROLES, PIN_FIELDS, LegRole
from scheduling.models import Booking
from scheduling.request import held_pins, request_of
from scheduling.selectors import bookings_hit_by
from scheduling.services.bookings import booking_reschedule
from scheduling.words import local_hhmm

SWAP_KINDS = {
    "c_arm": "Another C-arm, same time",
    "equipment": "Other equipment, same time",
    "room": "Another room, same time",
    "time": "Another start the same day",
}


@dataclass(frozen=True)
class Swap:
    kind: str
    title: str
    starts_at: datetime
    pins: dict[str, int]
    resources: list[tuple[str, str]]  # (the role's noun, the resource's name)

    @property
    def choice(self) -> str:
        """The swap as one form value: ``ISO start|pin=id,pin=id``."""
        pins = ",".join(f"{name}={pk}" for name, pk in sorted(self.pins.items()))
        return f"{self.starts_at.isoformat()}|{pins}"


@dataclass
class HitCase:
    booking: Booking
    physician: str
    swaps: list[Swap] = field(default_factory=list)


def current_pins(booking: Booking) -> dict[str, int]:
    """The resources the case holds, as request pins (``legs`` prefetched)."""
    return held_pins(booking.legs.all())


def _slot_pins(slot: Slot) -> dict[str, int]:
    return {pin: leg.resource_id for leg in slot.legs if (pin := LEG_ROLES[leg.role].pin) is not None}


def _resources(slot: Slot) -> list[tuple[str, str]]:
    return [(LEG_ROLES[leg.role].label, leg.name) for leg in slot.legs if leg.role != LegRole.PATIENT]


def _down_roles(downtime: Downtime, booking: Booking) -> set[str]:
    """The pins the downtime takes from the case: its room (and the equipment fixed in rooms),
    or the role the down equipment plays."""
    if downtime.room_id is not None:
        return {"room", *(str(info.role) for info in LEG_ROLES.values() if info.equipment_kind)}
    return {str(leg.role) for leg in booking.legs.all() if leg.is_active and leg.equipment_id == downtime.equipment_id}


def _search(booking: Booking, pins: dict[str, int], *, not_before: datetime, count: int, now: datetime) -> list[Slot]:
    zone = booking.site.zone
    day = booking.starts_at.astimezone(zone).date()
    request = request_of(booking, pins)
    try:
        return availability_search(
            SearchQuery(
                request=request,
                date_from=day,
                date_to=day,
                count=count,
                not_before=not_before,
                exclude_booking_id=booking.pk,
                hold_override=booking.anticoagulant_override_at is not None,
            ),
            now=now,
        )
    except SchedulingError:
        return []


def swaps_for(booking: Booking, downtime: Downtime, *, now: datetime | None = None) -> list[Swap]:
    """The swaps for one hit case, best first; none when the engine finds nothing that day."""
    now = now or timezone.now()
    zone = booking.site.zone
    held = current_pins(booking)
    down = _down_roles(downtime, booking)
    open_pins = {name: pk for name, pk in held.items() if not any(LEG_ROLES[role].pin == name for role in down)}
    found: list[Swap] = []
    seen: set[tuple[datetime, tuple[tuple[str, int], ...]]] = set()

    def add(kind: str, slot: Slot, title: str) -> None:
        pins = _slot_pins(slot)
        key = (slot.start, tuple(sorted(pins.items())))
        if key in seen or (pins == held and slot.start == booking.starts_at):
            return
        seen.add(key)
        found.append(Swap(kind, title, slot.start, pins, _resources(slot)))

    start = booking.starts_at
    if downtime.equipment_id is not None:
        same = [s for s in _search(booking, open_pins, not_before=start, count=1, now=now) if s.start == start]
        for slot in same:
            names = [leg.name for leg in slot.legs if str(leg.role) in down]
            kind = "c_arm" if LegRole.C_ARM in down else "equipment"
            add(kind, slot, f"{' and '.join(names)} instead, at {local_hhmm(start, zone)}")
    # Another room keeps the team and the bay; the room's own C-arm comes with it.
    team = {name: pk for name, pk in open_pins.items() if name not in {"room", "c_arm", "rf_generator"}}
    for slot in [s for s in _search(booking, team, not_before=start, count=1, now=now) if s.start == start]:
        room = next((leg.name for leg in slot.legs if leg.role == LegRole.ROOM), "")
        add("room", slot, f"{room} instead, at {local_hhmm(start, zone)}")
    day_start = datetime.combine(start.astimezone(zone).date(), time(0), tzinfo=zone)
    later = [
        s
        for s in _search(booking, open_pins, not_before=max(day_start, now + timedelta(minutes=1)), count=6, now=now)
        if s.start != start and not _hit(downtime, s)
    ]
    for slot in later[:2]:
        add("time", slot, f"At {local_hhmm(slot.start, zone)} the same day")
    return found


def _hit(downtime: Downtime, slot: Slot) -> bool:
    column = "room" if downtime.room_id is not None else "equipment"
    target = downtime.room_id if downtime.room_id is not None else downtime.equipment_id
    return any(
        LEG_ROLES[leg.role].column == column
        and leg.resource_id == target
        and leg.start < downtime.ends_at
        and leg.end > downtime.starts_at
        for leg in slot.legs
    )


def downtime_impact(downtime: Downtime, *, now: datetime | None = None) -> list[HitCase]:
    """Every active case the downtime hits, in order, with its physician and its swaps."""
    now = now or timezone.now()
    hit = list(
        bookings_hit_by(downtime, now=now).select_related("procedure_type", "patient").prefetch_related("legs__staff")
    )
    out = []
    for booking in hit:
        physician = next(
            (str(leg.staff) for leg in booking.legs.all() if leg.is_active and leg.role == LegRole.PHYSICIAN), ""
        )
        out.append(HitCase(booking, physician, swaps_for(booking, downtime, now=now)))
    return out


def parse_choice(value: str) -> tuple[datetime, dict[str, int]] | None:
    """A swap's form value back into its start and pins; None when it is not one."""
    start_text, _, pins_text = (value or "").partition("|")
    try:
        start = datetime.fromisoformat(start_text)
        pins = {}
        for part in filter(None, pins_text.split(",")):
            name, _, pk = part.partition("=")
            pins[name] = int(pk)
    except ValueError:
        return None
    if timezone.is_naive(start) or not pins or not set(pins) <= set(PIN_FIELDS):
        return None
    return start, pins


def swap_apply(*, actor: Any, booking: Booking, starts_at: datetime, pins: dict[str, int]) -> Booking:
    """Apply a swap: the reschedule service, with every resource of the swap pinned."""
    return booking_reschedule(actor=actor, booking=booking, starts_at=starts_at, pins=pins)
