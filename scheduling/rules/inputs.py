"""What the rulebook reads, in two queries whatever the window or the size of the clinic:

1. the inventory: sites, opening hours, rooms, equipment, bays, staff, shifts, credentials;
   only the rows a request can use (every candidate of the roles it leaves open, and the
   resources it pins, whatever their state, so a pinned resource out of service is explained
   rather than unknown);
2. the window: downtime and time off of those resources, the patient's medication holds, and
   the legs of other cases that hold those resources. On PostgreSQL the legs are found with the
   exclusion constraints' expression, tstzrange(starts_at, ends_at, '[)'), so from their GiST
   indexes.

Rows come back as plain values (times as epoch seconds): decoding a timestamp per row costs
more than the query itself, and the rules are pure functions of these values.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection

from patients.models import Drug, MedicationHold
from rooms.models import Downtime, Equipment, OpeningHours, ProcedureRoom, RecoveryBay, Site
from scheduling.holdrule import HoldRow
from scheduling.models import Allocation
from staff.models import Credential, Shift, StaffMember, TimeOff


def _t(name: str) -> str:
    return connection.ops.quote_name(name)


def parse_time(value: Any) -> time:
    return value if isinstance(value, time) else time.fromisoformat(str(value))


def parse_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@dataclass
class SiteRow:
    id: int
    name: str
    timezone: str
    jurisdiction: str
    is_active: bool = True
    record: dict[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def instance(self) -> Site:
        """The site as a model instance, every field as read (the booking it is put on is
        answered from it without reading the site again)."""
        values = {f.attname: f.to_python(self.record.get(f.attname)) for f in Site._meta.concrete_fields}
        site = Site(**values)
        site._state.adding = False
        site._state.db = "default"
        return site


def _site_record_sql() -> str:
    """Every column of a site as one JSON text, so the union keeps its width."""
    pairs = ", ".join(f"'{f.attname}', {_t(f.column)}" for f in Site._meta.concrete_fields)
    if connection.vendor == "postgresql":
        return f"CAST(json_build_object({pairs}) AS TEXT)"
    return f"json_object({pairs})"


@dataclass
class ResourceRow:
    """A room, piece of equipment, recovery bay or staff member, as the rules see it."""

    column: str  # room, equipment, bay, staff
    id: int
    name: str
    site_id: int | None = None
    role: str = ""  # staff role, or equipment kind
    sedation_capable: bool = False
    room_id: int | None = None  # equipment fixed in a room
    capabilities: tuple[str, ...] = ()
    is_active: bool = True
    first_name: str = ""
    last_name: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.column, self.id)


@dataclass
class HoursRow:
    site_id: int
    room_id: int | None
    weekday: int
    opens: time
    closes: time


@dataclass
class ShiftRow:
    staff_id: int
    site_id: int
    weekday: int
    starts: time
    ends: time
    valid_from: date | None
    valid_until: date | None


@dataclass
class CredentialRow:
    staff_id: int
    kind: str
    procedure_code: str
    jurisdiction: str
    valid_from: date
    expires_on: date | None

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.expires_on is None or day <= self.expires_on)


@dataclass
class Inventory:
    sites: dict[int, SiteRow] = field(default_factory=dict)
    resources: dict[tuple[str, int], ResourceRow] = field(default_factory=dict)
    hours: list[HoursRow] = field(default_factory=list)
    shifts: dict[int, list[ShiftRow]] = field(default_factory=lambda: defaultdict(list))
    credentials: dict[int, list[CredentialRow]] = field(default_factory=lambda: defaultdict(list))

    def of_column(self, column: str) -> list[ResourceRow]:
        return sorted((r for r in self.resources.values() if r.column == column), key=lambda r: r.id)


@dataclass(frozen=True)
class Wanted:
    """Which inventory rows a request needs: every active candidate of the open kinds (at one
    site, if given), and the pinned ids whatever their site or state."""

    site_id: int | None = None
    rooms: bool = False
    equipment_kinds: frozenset[str] = frozenset()
    bays: bool = False
    staff_roles: frozenset[str] = frozenset()
    pinned: dict[str, frozenset[int]] = field(default_factory=dict, hash=False)

    def pinned_ids(self, column: str) -> list[int]:
        return sorted(self.pinned.get(column, ()))


# PostgreSQL types a UNION pairwise, so NULL-only columns must say what they are.
NULL_ID = "CAST(NULL AS BIGINT)"
FALSE = "1 = 0"


def _marks(values: Iterable[Any]) -> str:
    return ", ".join("%s" for _ in values)


def _active(expression: str = "is_active") -> str:
    return f"CASE WHEN {expression} THEN 1 ELSE 0 END"


def _rows_condition(
    open_condition: str | None, open_params: list[Any], pinned: list[int], prefix: str = ""
) -> tuple[str, list[Any]]:
    """``(open candidates) OR id IN (pinned)`` for one table."""
    parts, params = [], []
    if open_condition is not None:
        parts.append(f"({prefix}is_active AND {open_condition})")
        params += open_params
    if pinned:
        parts.append(f"{prefix}id IN ({_marks(pinned)})")
        params += pinned
    return (" OR ".join(parts) or FALSE), params


def load_inventory(wanted: Wanted) -> Inventory:
    """Query 1: the inventory rows ``wanted`` names, as one UNION ALL of text columns so both
    engines agree. Every site is loaded (a handful of rows) so that a pinned resource of another
    site is recognised as such."""
    site_filter, site_args = ("site_id = %s", [wanted.site_id]) if wanted.site_id is not None else ("1 = 1", [])
    parts: list[str] = []
    params: list[Any] = []

    def part(sql: str, args: list[Any]) -> None:
        parts.append(sql)
        params.extend(args)

    part(
        f"SELECT 'site', id, {NULL_ID}, {NULL_ID}, {_site_record_sql()}, NULL, NULL, NULL, NULL, {_active()} "
        f"FROM {_t(Site._meta.db_table)}",
        [],
    )
    part(
        f"SELECT 'hours', site_id, {NULL_ID}, room_id, CAST(weekday AS TEXT), CAST(opens_at AS TEXT), "
        f"CAST(closes_at AS TEXT), NULL, NULL, 1 FROM {_t(OpeningHours._meta.db_table)}",
        [],
    )
    condition, args = _rows_condition(site_filter if wanted.rooms else None, site_args, wanted.pinned_ids("room"))
    part(
        f"SELECT 'room', id, site_id, {NULL_ID}, name, CAST(capabilities AS TEXT), NULL, NULL, NULL, {_active()} "
        f"FROM {_t(ProcedureRoom._meta.db_table)} WHERE {condition}",
        args,
    )
    kinds = sorted(wanted.equipment_kinds)
    condition, args = _rows_condition(
        f"{site_filter} AND kind IN ({_marks(kinds)})" if kinds else None,
        [*site_args, *kinds],
        wanted.pinned_ids("equipment"),
    )
    part(
        f"SELECT 'equipment', id, site_id, room_id, name, kind, NULL, NULL, NULL, {_active()} "
        f"FROM {_t(Equipment._meta.db_table)} WHERE {condition}",
        args,
    )
    condition, args = _rows_condition(site_filter if wanted.bays else None, site_args, wanted.pinned_ids("bay"))
    part(
        f"SELECT 'bay', id, site_id, {NULL_ID}, name, NULL, NULL, NULL, NULL, {_active()} "
        f"FROM {_t(RecoveryBay._meta.db_table)} WHERE {condition}",
        args,
    )
    roles = sorted(wanted.staff_roles)
    staff_pins = wanted.pinned_ids("staff")

    def staff_condition(prefix: str) -> tuple[str, list[Any]]:
        return _rows_condition(
            f"{prefix}role IN ({_marks(roles)})" if roles else None, list(roles), staff_pins, prefix=prefix
        )

    condition, args = staff_condition("")
    part(
        f"SELECT 'staff', id, {NULL_ID}, {NULL_ID}, first_name, last_name, role, "
        f"CASE WHEN sedation_capable THEN '1' ELSE '0' END, NULL, {_active()} "
        f"FROM {_t(StaffMember._meta.db_table)} WHERE {condition}",
        args,
    )
    condition, args = staff_condition("st.")
    staff_table = _t(StaffMember._meta.db_table)
    part(
        f"SELECT 'shift', sh.staff_id, sh.site_id, {NULL_ID}, CAST(sh.weekday AS TEXT), CAST(sh.starts_at AS TEXT), "
        f"CAST(sh.ends_at AS TEXT), CAST(sh.valid_from AS TEXT), CAST(sh.valid_until AS TEXT), 1 "
        f"FROM {_t(Shift._meta.db_table)} sh JOIN {staff_table} st ON st.id = sh.staff_id WHERE {condition}",
        args,
    )
    part(
        f"SELECT 'credential', c.staff_id, {NULL_ID}, {NULL_ID}, c.kind, c.procedure_code, c.jurisdiction, "
        "CAST(c.valid_from AS TEXT), CAST(c.expires_on AS TEXT), 1 "
        f"FROM {_t(Credential._meta.db_table)} c JOIN {staff_table} st ON st.id = c.staff_id WHERE {condition}",
        args,
    )
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        rows = cursor.fetchall()

    inv = Inventory()
    for kind, pk, site_id, ref_id, a, b, c, d, e, active in rows:
        is_active = bool(int(active))
        if kind == "site":
            record = json.loads(a)
            inv.sites[pk] = SiteRow(
                pk, record["name"], record["timezone"], record["jurisdiction"] or "", is_active, record
            )
        elif kind == "hours":
            inv.hours.append(HoursRow(pk, ref_id, int(a), parse_time(b), parse_time(c)))
        elif kind == "room":
            capabilities = tuple(json.loads(b or "[]"))
            inv.resources[("room", pk)] = ResourceRow(
                "room", pk, a, site_id=site_id, capabilities=capabilities, is_active=is_active
            )
        elif kind == "equipment":
            inv.resources[("equipment", pk)] = ResourceRow(
                "equipment", pk, a, site_id=site_id, role=b, room_id=ref_id, is_active=is_active
            )
        elif kind == "bay":
            inv.resources[("bay", pk)] = ResourceRow("bay", pk, a, site_id=site_id, is_active=is_active)
        elif kind == "staff":
            name = f"Dr. {a} {b}" if c == "physician" else f"{a} {b}"
            inv.resources[("staff", pk)] = ResourceRow(
                "staff",
                pk,
                name,
                role=c,
                sedation_capable=d == "1",
                is_active=is_active,
                first_name=a,
                last_name=b,
            )
        elif kind == "shift":
            inv.shifts[pk].append(
                ShiftRow(pk, site_id, int(a), parse_time(b), parse_time(c), parse_date(d), parse_date(e))
            )
        elif kind == "credential":
            valid_from = parse_date(d)
            assert valid_from is not None
            inv.credentials[pk].append(CredentialRow(pk, a, b or "", c or "", valid_from, parse_date(e)))
    return inv


# --- the window ---------------------------------------------------------------------------------


class EpochSpan:
    """A span held as epoch seconds (``start_s``, ``end_s``), read as aware UTC times."""

    start_s: int
    end_s: int

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.start_s, UTC)

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp(self.end_s, UTC)


@dataclass
class Block(EpochSpan):
    """Downtime of a room or equipment, or time off of a staff member."""

    kind: str  # downtime, time_off
    key: tuple[str, int]
    start_s: int
    end_s: int
    label: str


@dataclass
class BusyLeg(EpochSpan):
    """An active leg of another case, as epoch seconds."""

    booking_id: int
    role: str
    key: tuple[str, int]
    start_s: int
    end_s: int
    expires_s: int | None = None

    @property
    def column(self) -> str:
        return self.key[0]

    @property
    def resource_id(self) -> int:
        return self.key[1]


@dataclass
class Window:
    """Everything time-bound the rules read for one span, by resource."""

    start_s: int
    end_s: int
    blocks: dict[tuple[str, int], list[Block]] = field(default_factory=lambda: defaultdict(list))
    busy: dict[tuple[str, int], list[BusyLeg]] = field(default_factory=lambda: defaultdict(list))
    # Legs of holds whose time is up but which no sweep has released yet: free for the rules,
    # still refused by the database until released.
    stale: list[BusyLeg] = field(default_factory=list)
    holds: list[HoldRow] = field(default_factory=list)

    def all_busy(self) -> list[BusyLeg]:
        return [leg for legs in self.busy.values() for leg in legs]


def _epoch(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"
    return f"CAST(strftime('%%s', {column}) AS INTEGER)"


RESOURCE_OF_LEG = "COALESCE(room_id, equipment_id, staff_id, bay_id, patient_id)"
COLUMN_OF_LEG = (
    "CASE WHEN room_id IS NOT NULL THEN 'room' WHEN equipment_id IS NOT NULL THEN 'equipment' "
    "WHEN staff_id IS NOT NULL THEN 'staff' WHEN bay_id IS NOT NULL THEN 'bay' ELSE 'patient' END"
)
LEG_COLUMNS = ("room", "equipment", "staff", "bay", "patient")


def legs_sql(
    ids: dict[str, list[int]],
    *,
    lo: Any,
    hi: Any,
    exclude_booking_id: int | None = None,
    exclude_booking_ids: Collection[int] = (),
) -> tuple[str, list[Any]]:
    """The busy-leg part of query 2: on PostgreSQL the exclusion constraints' own expression,
    so the planner answers it from their GiST indexes."""
    terms, params = [], []
    for column in LEG_COLUMNS:
        if ids.get(column):
            terms.append(f"{column}_id IN ({_marks(ids[column])})")
            params.extend(ids[column])
    if connection.vendor == "postgresql":
        overlap, overlap_params = "tstzrange(starts_at, ends_at, '[)') && tstzrange(%s, %s, '[)')", [lo, hi]
    else:
        overlap, overlap_params = "starts_at < %s AND ends_at > %s", [hi, lo]
    exclude = ""
    excluded = sorted({*exclude_booking_ids, *([exclude_booking_id] if exclude_booking_id is not None else [])})
    if len(excluded) == 1:
        exclude = " AND booking_id <> %s"
        overlap_params.append(excluded[0])
    elif excluded:
        exclude = f" AND booking_id NOT IN ({_marks(excluded)})"
        overlap_params.extend(excluded)
    sql = (
        f"SELECT 'leg', booking_id, {RESOURCE_OF_LEG}, {COLUMN_OF_LEG}, role, {_epoch('starts_at')}, "
        f"{_epoch('ends_at')}, {_epoch('expires_at')}, NULL FROM {_t(Allocation._meta.db_table)} "
        f"WHERE is_active AND ({' OR '.join(terms) or FALSE}) AND {overlap}{exclude}"
    )
    return sql, params + overlap_params


def load_window(
    *,
    ids: dict[str, list[int]],
    start: datetime,
    end: datetime,
    now: datetime,
    patient_id: int | None = None,
    exclude_booking_id: int | None = None,
    exclude_booking_ids: Collection[int] = (),
) -> Window:
    """Query 2: blocks, holds and busy legs of the resources in ``ids`` overlapping
    ``[start, end)``. Legs of ``exclude_booking_id`` (a case being moved or confirmed) and of
    ``exclude_booking_ids`` (cases being planned afresh) are left out: they will not hold
    anything once moved."""
    ops = connection.ops
    lo, hi = ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(end)
    legs, params = legs_sql(
        ids, lo=lo, hi=hi, exclude_booking_id=exclude_booking_id, exclude_booking_ids=exclude_booking_ids
    )

    targets = []
    for column in ("room", "equipment"):
        if ids.get(column):
            targets.append(f"{column}_id IN ({_marks(ids[column])})")
            params.extend(ids[column])
    downtime = (
        "SELECT 'downtime', id, COALESCE(room_id, equipment_id), "
        "CASE WHEN room_id IS NOT NULL THEN 'room' ELSE 'equipment' END, reason, "
        f"{_epoch('starts_at')}, {_epoch('ends_at')}, {NULL_ID}, NULL FROM {_t(Downtime._meta.db_table)} "
        f"WHERE ({' OR '.join(targets) or FALSE}) AND starts_at < %s AND ends_at > %s"
    )
    params += [hi, lo]

    staff_ids = ids.get("staff") or []
    time_off = (
        f"SELECT 'time_off', id, staff_id, 'staff', reason, {_epoch('starts_at')}, {_epoch('ends_at')}, "
        f"{NULL_ID}, NULL FROM {_t(TimeOff._meta.db_table)} "
        f"WHERE {f'staff_id IN ({_marks(staff_ids)})' if staff_ids else FALSE} AND starts_at < %s AND ends_at > %s"
    )
    params += [*staff_ids, hi, lo]

    holds = (
        f"SELECT 'hold', h.id, CAST(h.hold_days AS BIGINT), d.name, d.code, CAST(d.hold_days_high AS BIGINT), "
        "CAST(d.hold_days_intermediate AS BIGINT), CAST(d.hold_days_low AS BIGINT), CAST(h.last_dose_on AS TEXT) "
        f"FROM {_t(MedicationHold._meta.db_table)} h JOIN {_t(Drug._meta.db_table)} d ON d.id = h.drug_id "
        "WHERE h.patient_id = %s"
    )
    params.append(patient_id if patient_id is not None else -1)

    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join([legs, downtime, time_off, holds]), params)
        rows = cursor.fetchall()

    now_s = int(now.timestamp())
    window = Window(int(start.timestamp()), int(end.timestamp()))
    for kind, a, b, column, text, s, e, x, last in rows:
        if kind == "leg":
            leg = BusyLeg(a, text, (column, b), int(s), int(e), int(x) if x is not None else None)
            if leg.expires_s is not None and leg.expires_s <= now_s:
                window.stale.append(leg)
            else:
                window.busy[leg.key].append(leg)
        elif kind in ("downtime", "time_off"):
            window.blocks[(column, b)].append(Block(kind, (column, b), int(s), int(e), text or ""))
        else:
            override = int(b) if b is not None else None
            window.holds.append(HoldRow(a, text, column, int(s), int(e), int(x), override, parse_date(last)))
    return window
