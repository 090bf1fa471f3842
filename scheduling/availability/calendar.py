"""One resource's time over a span, as a calendar: when it is free, busy with a case, held
(tentatively busy) or unavailable (downtime, time off). Its working time is the rulebook's
(opening hours of the room or site, a staff member's shifts), so a FHIR Slot or a feed never
offers time the booking services would refuse for that reason.

Procedure-specific rules (privileges, capabilities, sedation, the patient's holds) are not a
resource's calendar: ``availability_search`` applies them to a case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from scheduling.availability import engine
from scheduling.rules.inputs import Inventory, ResourceRow, SiteRow, Wanted, load_inventory, load_window
from scheduling.rules.rulebook import from_min, opening_spans, shift_days, to_min

FREE, BUSY, TENTATIVE, UNAVAILABLE = "free", "busy", "busy-tentative", "busy-unavailable"
COLUMNS = ("room", "equipment", "staff", "bay")


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    status: str
    booking_id: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class ResourceCalendar:
    column: str
    row: ResourceRow
    periods: list[Period]


def _working(inventory: Inventory, row: ResourceRow, lo: int, hi: int) -> list[engine.Span]:
    sites: list[SiteRow] = list(inventory.sites.values())
    spans: list[engine.Span] = []
    for site in sites:
        if row.column != "staff" and row.site_id != site.id:
            continue
        first = from_min(lo).astimezone(site.zone).date() - timedelta(days=1)
        last = from_min(hi).astimezone(site.zone).date()
        if row.column == "equipment":
            # Equipment keeps the hours of its site: it is of no use while the site is shut.
            spans += opening_spans(inventory, site, None, first, last)
        elif row.column == "room":
            spans += opening_spans(inventory, site, row.id, first, last)
        elif row.column == "bay":
            spans += opening_spans(inventory, site, None, first, last)
        else:
            spans += [span for _, span in shift_days(inventory, row, site, first, last)]
    return engine.intersect(engine.merge(spans), [(lo, hi)])


def resource_calendar(
    column: str, pk: int, start: datetime, end: datetime, *, now: datetime | None = None
) -> ResourceCalendar | None:
    """The calendar of one room, piece of equipment, staff member or bay over ``[start, end)``;
    None if there is no such resource. Two queries."""
    if column not in COLUMNS:
        return None
    now = now or timezone.now()
    inventory = load_inventory(Wanted(pinned={column: frozenset({pk})}))
    row = inventory.resources.get((column, pk))
    if row is None:
        return None
    window = load_window(ids={column: [pk]}, start=start, end=end, now=now)
    lo, hi = to_min(start), -(-int(end.timestamp()) // 60)
    periods: list[Period] = []
    taken: list[engine.Span] = []
    for block in window.blocks.get(row.key, ()):
        span = (max(lo, block.start_s // 60), min(hi, -(-block.end_s // 60)))
        periods.append(Period(from_min(span[0]), from_min(span[1]), UNAVAILABLE, reason=block.kind))
        taken.append(span)
    for leg in window.busy.get(row.key, ()):
        span = (max(lo, leg.start_s // 60), min(hi, -(-leg.end_s // 60)))
        status = TENTATIVE if leg.expires_s is not None else BUSY
        periods.append(Period(from_min(span[0]), from_min(span[1]), status, booking_id=leg.booking_id))
        taken.append(span)
    for free_lo, free_hi in engine.subtract(_working(inventory, row, lo, hi), taken):
        if free_hi > free_lo:
            periods.append(Period(from_min(free_lo), from_min(free_hi), FREE))
    periods.sort(key=lambda p: (p.start, p.end, p.status))
    return ResourceCalendar(column, row, periods)
