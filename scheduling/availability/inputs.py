"""Loads everything an availability search needs in three queries, whatever the window or
the number of resources:

1. inventory: sites, opening hours, rooms, equipment, bays, staff, shifts, credentials;
2. blocks: downtime, time off and the patient's medication holds;
3. busy legs: active legs of the candidate resources overlapping the window. On PostgreSQL it
   uses the exclusion constraints' expression, tstzrange(starts_at, ends_at, '[)'), so it is
   answered from their GiST indexes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from django.db import connection
from django.utils import timezone

from patients.models import MedicationHold
from rooms.models import Downtime, Equipment, OpeningHours, ProcedureRoom, RecoveryBay, Site
from scheduling.models import Allocation
from staff.models import Credential, Shift, StaffMember, TimeOff


def _t(name: str) -> str:
    return connection.ops.quote_name(name)


def parse_dt(value: Any) -> datetime:
    """A UTC datetime from PostgreSQL (already aware) or SQLite (UTC text)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


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


@dataclass
class ResourceRow:
    kind: str  # room, equipment, bay, staff
    id: int
    name: str
    site_id: int | None = None
    role: str = ""  # staff role, or equipment kind
    sedation_capable: bool = False
    room_id: int | None = None  # equipment fixed in a room
    capabilities: list[str] = field(default_factory=list)


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


@dataclass
class Inventory:
    sites: dict[int, SiteRow] = field(default_factory=dict)
    resources: list[ResourceRow] = field(default_factory=list)
    hours: list[HoursRow] = field(default_factory=list)
    shifts: list[ShiftRow] = field(default_factory=list)
    credentials: list[CredentialRow] = field(default_factory=list)


# PostgreSQL types a UNION pairwise, so NULL-only id columns must say what they are.
NULL_ID = "CAST(NULL AS BIGINT)"


def load_inventory(*, site_id: int | None, staff_roles: list[str]) -> Inventory:
    """Query 1: active inventory, as one UNION ALL of text columns so both engines agree."""
    site_filter = "AND site_id = %s" if site_id is not None else ""
    roles = staff_roles or ["-"]
    role_marks = ", ".join(["%s"] * len(roles))
    params: list[Any] = []
    parts = []

    def part(sql: str, *args: Any) -> None:
        parts.append(sql)
        params.extend(args)

    site_args = [site_id] if site_id is not None else []
    part(
        f"SELECT 'site', id, {NULL_ID}, name, timezone, jurisdiction, {NULL_ID}, NULL, NULL, NULL "
        f"FROM {_t(Site._meta.db_table)} WHERE is_active {'AND id = %s' if site_id is not None else ''}",
        *site_args,
    )
    part(
        "SELECT 'hours', site_id, room_id, CAST(weekday AS TEXT), CAST(opens_at AS TEXT), CAST(closes_at AS TEXT), "
        f"{NULL_ID}, NULL, NULL, NULL FROM {_t(OpeningHours._meta.db_table)} WHERE 1 = 1 {site_filter}",
        *site_args,
    )
    part(
        f"SELECT 'room', id, site_id, name, CAST(capabilities AS TEXT), NULL, {NULL_ID}, NULL, NULL, NULL "
        f"FROM {_t(ProcedureRoom._meta.db_table)} WHERE is_active {site_filter}",
        *site_args,
    )
    part(
        "SELECT 'equipment', id, site_id, name, kind, NULL, room_id, NULL, NULL, NULL "
        f"FROM {_t(Equipment._meta.db_table)} WHERE is_active {site_filter}",
        *site_args,
    )
    part(
        f"SELECT 'bay', id, site_id, name, NULL, NULL, {NULL_ID}, NULL, NULL, NULL "
        f"FROM {_t(RecoveryBay._meta.db_table)} WHERE is_active {site_filter}",
        *site_args,
    )
    part(
        f"SELECT 'staff', id, {NULL_ID}, first_name || ' ' || last_name, role, "
        f"CASE WHEN sedation_capable THEN '1' ELSE '0' END, {NULL_ID}, NULL, NULL, NULL "
        f"FROM {_t(StaffMember._meta.db_table)} WHERE is_active AND role IN ({role_marks})",
        *roles,
    )
    part(
        "SELECT 'shift', sh.staff_id, sh.site_id, CAST(sh.weekday AS TEXT), CAST(sh.starts_at AS TEXT), "
        f"CAST(sh.ends_at AS TEXT), {NULL_ID}, CAST(sh.valid_from AS TEXT), CAST(sh.valid_until AS TEXT), NULL "
        f"FROM {_t(Shift._meta.db_table)} sh JOIN {_t(StaffMember._meta.db_table)} st ON st.id = sh.staff_id "
        f"WHERE st.is_active AND st.role IN ({role_marks}) {site_filter.replace('site_id', 'sh.site_id')}",
        *roles,
        *site_args,
    )
    part(
        f"SELECT 'credential', c.staff_id, {NULL_ID}, c.kind, c.procedure_code, c.jurisdiction, {NULL_ID}, "
        "CAST(c.valid_from AS TEXT), CAST(c.expires_on AS TEXT), NULL "
        f"FROM {_t(Credential._meta.db_table)} c JOIN {_t(StaffMember._meta.db_table)} st ON st.id = c.staff_id "
        f"WHERE st.is_active AND st.role IN ({role_marks})",
        *roles,
    )
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        rows = cursor.fetchall()

    inv = Inventory()
    for kind, a, b, c, d, e, g, h, i, _ in rows:
        if kind == "site":
            inv.sites[a] = SiteRow(a, c, d, e or "")
        elif kind == "hours":
            inv.hours.append(HoursRow(a, b, int(c), parse_time(d), parse_time(e)))
        elif kind == "room":
            inv.resources.append(ResourceRow("room", a, c, site_id=b, capabilities=json.loads(d or "[]")))
        elif kind == "equipment":
            inv.resources.append(ResourceRow("equipment", a, c, site_id=b, role=d, room_id=g))
        elif kind == "bay":
            inv.resources.append(ResourceRow("bay", a, c, site_id=b))
        elif kind == "staff":
            name = f"Dr. {c}" if d == "physician" else c
            row = ResourceRow("staff", a, name, role=d, sedation_capable=e == "1")
            inv.resources.append(row)
        elif kind == "shift":
            inv.shifts.append(ShiftRow(a, b, int(c), parse_time(d), parse_time(e), parse_date(h), parse_date(i)))
        elif kind == "credential":
            valid_from = parse_date(h)
            assert valid_from is not None
            inv.credentials.append(CredentialRow(a, c, d or "", e or "", valid_from, parse_date(i)))
    inv.resources.sort(key=lambda r: (r.kind, r.id))
    return inv


@dataclass
class Block:
    kind: str  # downtime, time_off
    column: str  # room, equipment, staff
    resource_id: int
    start: datetime
    end: datetime
    label: str


@dataclass
class HoldRow:
    medication: str
    hold_days: int
    last_dose_on: date | None


def load_blocks(*, start: datetime, end: datetime, patient_id: int | None) -> tuple[list[Block], list[HoldRow]]:
    """Query 2: downtime and time off overlapping the window, and the patient's holds."""
    ops = connection.ops
    lo, hi = ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(end)
    sql = (
        "SELECT 'downtime', room_id, equipment_id, starts_at, ends_at, reason, NULL, NULL "
        f"FROM {_t(Downtime._meta.db_table)} WHERE starts_at < %s AND ends_at > %s "
        "UNION ALL SELECT 'time_off', staff_id, NULL, starts_at, ends_at, reason, NULL, NULL "
        f"FROM {_t(TimeOff._meta.db_table)} WHERE starts_at < %s AND ends_at > %s "
        "UNION ALL SELECT 'hold', NULL, NULL, NULL, NULL, medication, CAST(hold_days AS TEXT), "
        f"CAST(last_dose_on AS TEXT) FROM {_t(MedicationHold._meta.db_table)} WHERE patient_id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [hi, lo, hi, lo, patient_id if patient_id is not None else -1])
        rows = cursor.fetchall()
    blocks: list[Block] = []
    holds: list[HoldRow] = []
    for kind, a, b, s, e, label, days, last in rows:
        if kind == "downtime":
            column, rid = ("room", a) if a is not None else ("equipment", b)
            blocks.append(Block("downtime", column, rid, parse_dt(s), parse_dt(e), label or ""))
        elif kind == "time_off":
            blocks.append(Block("time_off", "staff", a, parse_dt(s), parse_dt(e), label or ""))
        else:
            holds.append(HoldRow(label, int(days), parse_date(last)))
    return blocks, holds


@dataclass
class BusyLeg:
    """A leg as epoch seconds: decoding a timestamp per row costs more than the query itself."""

    booking_id: int
    role: str
    column: str
    resource_id: int
    start_s: int
    end_s: int

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.start_s, UTC)

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp(self.end_s, UTC)


BUSY_COLUMNS = ("room", "equipment", "staff", "bay", "patient")


def busy_legs_sql(ids: dict[str, list[int]]) -> tuple[str, list[Any]]:
    """Query 3's SQL: the same range expression as the exclusion constraints on PostgreSQL."""
    table = _t(Allocation._meta.db_table)
    terms, params = [], []
    for column in BUSY_COLUMNS:
        if ids.get(column):
            marks = ", ".join(["%s"] * len(ids[column]))
            terms.append(f"{column}_id IN ({marks})")
            params.extend(ids[column])
    if not terms:
        terms.append("1 = 0")
    if connection.vendor == "postgresql":
        epoch = "CAST(EXTRACT(EPOCH FROM {0}) AS BIGINT)"
    else:
        epoch = "CAST(strftime('%%s', {0}) AS INTEGER)"
    columns = "booking_id, role, room_id, equipment_id, staff_id, bay_id, patient_id"
    select = f"SELECT {columns}, {epoch.format('starts_at')}, {epoch.format('ends_at')} FROM {table}"
    if connection.vendor == "postgresql":
        window = "tstzrange(starts_at, ends_at, '[)') && tstzrange(%s, %s, '[)')"
    else:
        window = "starts_at < %s AND ends_at > %s"
    # A hold's legs stop counting once it expires, before any sweep releases them.
    unexpired = "(expires_at IS NULL OR expires_at > %s)"
    return f"{select} WHERE is_active AND ({' OR '.join(terms)}) AND {window} AND {unexpired}", params


def load_busy(
    *, ids: dict[str, list[int]], start: datetime, end: datetime, now: datetime | None = None
) -> list[BusyLeg]:
    """Query 3: active, unexpired legs of these resources overlapping ``[start, end)``."""
    sql, params = busy_legs_sql(ids)
    ops = connection.ops
    lo, hi = ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(end)
    params += [lo, hi] if connection.vendor == "postgresql" else [hi, lo]
    params.append(ops.adapt_datetimefield_value(now or timezone.now()))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    out = []
    for booking_id, role, room, equipment, staff, bay, patient, s, e in rows:
        for column, value in zip(BUSY_COLUMNS, (room, equipment, staff, bay, patient), strict=True):
            if value is not None:
                out.append(BusyLeg(booking_id, role, column, value, int(s), int(e)))
                break
    return out


def group_by_resource(busy: list[BusyLeg]) -> dict[tuple[str, int], list[BusyLeg]]:
    grouped: dict[tuple[str, int], list[BusyLeg]] = defaultdict(list)
    for leg in busy:
        grouped[(leg.column, leg.resource_id)].append(leg)
    return grouped
