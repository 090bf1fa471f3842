"""HL7 v2.5.1 SIU messages for change events, built and validated (STRICT) with ``hl7apy``.

One message per event: S12 new case, S13 moved, S14 changed (a status on the day), S15
cancelled, S26 no-show, S23 a room or C-arm blocked (or its block changed), S24 reopened. Each
leg of the case is its own AIS/AIG/AIL/AIP segment with the leg's start and duration, so the
receiver sees the recovery bay hours after the room. Times are the site's wall clock with its
UTC offset. The message carries the patient (PID): it is sent to a clinical system, never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.exceptions import MaxLengthReached

from outbox.models import ChangeEvent
from patients.models import Patient
from rooms.models import Equipment, ProcedureRoom, RecoveryBay, Site
from scheduling.events import resource_legs
from scheduling.kinds import SchedulingEvent as E
from scheduling.models import BookingStatus, ProcedureType
from staff.models import StaffMember

VERSION = "2.5.1"
STRUCTURE = "SIU_S12"
FILLER = "PAINSCHED"


@dataclass(frozen=True)
class Trigger:
    code: str
    reason: str
    action: str  # segment action code (table 0206): A add, U update, D delete


NEW = Trigger("S12", "NEW^New appointment", "A")
MOVED = Trigger("S13", "RES^Rescheduled", "U")
CHANGED = Trigger("S14", "MOD^Modified", "U")
CANCELLED = Trigger("S15", "CAN^Cancelled", "D")
NO_SHOW = Trigger("S26", "NOS^No-show", "U")
BLOCKED = Trigger("S23", "BLK^Blocked", "A")
OPENED = Trigger("S24", "OPN^Opened", "D")

TRIGGERS = {
    E.BOOKING_CREATED: NEW,
    E.BOOKING_RESCHEDULED: MOVED,
    E.BOOKING_CANCELLED: CANCELLED,
    E.BOOKING_UPDATED: CHANGED,
    E.DOWNTIME_CREATED: BLOCKED,
    E.DOWNTIME_CHANGED: BLOCKED,
    E.DOWNTIME_REMOVED: OPENED,
}

# SCH-25 filler status (table 0278) of each of our statuses.
FILLER_STATUS = {
    BookingStatus.SCHEDULED: "Booked",
    BookingStatus.CHECKED_IN: "Booked",
    BookingStatus.READY: "Booked",
    BookingStatus.IN_PROCEDURE: "Started",
    BookingStatus.IN_RECOVERY: "Started",
    BookingStatus.READY_FOR_DISCHARGE: "Started",
    BookingStatus.DISCHARGED: "Complete",
    BookingStatus.CANCELLED: "Cancelled",
    BookingStatus.NO_SHOW: "Noshow",
}
PERSONNEL_TYPE = {
    "physician": "PHYS^Performing physician",
    "rad_tech": "RT^Radiologic technologist",
    "sedation_nurse": "SRN^Sedation nurse",
    "anesthesia": "ANES^Anesthesia provider",
    "device_rep": "REP^Device representative",
}
SEX = {"female": "F", "male": "M", "other": "O", "unknown": "U"}


def trigger_of(event: ChangeEvent) -> Trigger | None:
    """The SIU trigger an event maps to; None for a change no trigger covers."""
    if event.kind == E.BOOKING_STATUS_CHANGED:
        return NO_SHOW if event.data.get("status") == BookingStatus.NO_SHOW else CHANGED
    return TRIGGERS.get(E(event.kind)) if event.kind in E.values else None


def _put(element: Any, name: str, value: str) -> None:
    """Set a field. A component longer than HL7 v2.5.1 allows (an IS of 20, an ST of 199) is cut
    to fit rather than failing the message: only names and descriptions can be that long here,
    and identifiers are kept within the limits where they are entered."""
    for _ in range(16):
        try:
            setattr(element, name, value)
            return
        except MaxLengthReached as exc:
            too_long = str(exc.value)
            cut = too_long[: int(exc.limit)]
            if not too_long or too_long == cut or too_long not in value:
                raise
            value = value.replace(too_long, cut, 1)
    setattr(element, name, value)


def _escape(value: str) -> str:
    """Text for a field: the encoding characters and segment breaks cannot appear in it."""
    for char in "\\|^~&\r\n":
        value = value.replace(char, " ")
    return value.strip()


def _ts(moment: str | datetime, site: Site) -> str:
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return when.astimezone(site.zone).strftime("%Y%m%d%H%M%S%z")


def _minutes(start: str, end: str) -> str:
    return str(int((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() // 60))


@dataclass(frozen=True)
class Interface:
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    processing_id: str


def _names(legs: list[dict[str, Any]]) -> dict[tuple[str, int], Any]:
    wanted: dict[str, set[int]] = {}
    for leg in legs:
        wanted.setdefault(leg["kind"], set()).add(int(leg["id"]))
    found: dict[tuple[str, int], Any] = {}
    for kind, model in (
        ("room", ProcedureRoom),
        ("equipment", Equipment),
        ("staff", StaffMember),
        ("recovery_bay", RecoveryBay),
    ):
        for row in model.objects.filter(pk__in=wanted.get(kind, ())):
            found[(kind, row.pk)] = row
    return found


def build_siu(event: ChangeEvent, interface: Interface, control_id: str, *, now: datetime) -> str:
    """The SIU message for ``event`` as ER7 (segments separated by CR), validated STRICT."""
    trigger = trigger_of(event)
    if trigger is None:
        raise ValueError(f"No SIU trigger for {event.kind}.")
    site = event.site or Site.objects.order_by("id").first()
    assert site is not None
    m = Message(STRUCTURE, version=VERSION, validation_level=VALIDATION_LEVEL.STRICT)
    _put(m.msh, "msh_3", _escape(interface.sending_application))
    _put(m.msh, "msh_4", _escape(interface.sending_facility))
    _put(m.msh, "msh_5", _escape(interface.receiving_application))
    _put(m.msh, "msh_6", _escape(interface.receiving_facility))
    _put(m.msh, "msh_7", _ts(now, site))
    _put(m.msh, "msh_9", f"SIU^{trigger.code}^{STRUCTURE}")
    _put(m.msh, "msh_10", control_id)
    _put(m.msh, "msh_11", interface.processing_id)
    _put(m.msh, "msh_12", VERSION)
    data = event.data
    if event.booking_id is not None:
        appointment = f"{event.booking_id}^{FILLER}"
        status = FILLER_STATUS.get(BookingStatus(data["status"]), "Booked")
    else:
        appointment = f"D{event.subject_id}^{FILLER}"
        status = "Blocked" if trigger is BLOCKED else "Booked"
    _put(m.sch, "sch_1", appointment)
    _put(m.sch, "sch_2", appointment)
    _put(m.sch, "sch_6", trigger.reason)
    _put(m.sch, "sch_16", f"{FILLER}^Scheduling")
    _put(m.sch, "sch_20", f"{FILLER}^Scheduling")
    _put(m.sch, "sch_25", f"{status}^{status}^HL70278")
    tq1 = m.add_segment("TQ1")
    _put(tq1, "tq1_1", "1")
    _put(tq1, "tq1_7", _ts(data["starts_at"], site))
    _put(tq1, "tq1_8", _ts(data["ends_at"], site))
    if event.booking_id is not None:
        _case(m, event, trigger, site)
    else:
        _block(m, event, trigger, site)
    m.validate()
    return str(m.to_er7())


def _case(m: Message, event: ChangeEvent, trigger: Trigger, site: Site) -> None:
    data = event.data
    procedure = ProcedureType.objects.filter(code=data.get("procedure_type")).first()
    procedure_text = f"{data.get('procedure_type', '')}^{_escape(procedure.name) if procedure else ''}^L"
    _put(m.sch, "sch_7", procedure_text)
    _put(m.sch, "sch_8", "ROUTINE^Routine^HL70276")
    booking = event.booking
    assert booking is not None
    patient: Patient = booking.patient
    group = m.add_group("SIU_S12_PATIENT")
    _put(group.pid, "pid_1", "1")
    _put(group.pid, "pid_3", f"{_escape(patient.mrn)}^^^{_escape(site.code or FILLER)}^MR")
    _put(group.pid, "pid_5", f"{_escape(patient.last_name)}^{_escape(patient.first_name)}")
    _put(group.pid, "pid_7", patient.date_of_birth.strftime("%Y%m%d"))
    _put(group.pid, "pid_8", SEX.get(patient.sex, "U"))
    resources = m.add_group("SIU_S12_RESOURCES")
    _put(resources.rgs, "rgs_1", "1")
    _put(resources.rgs, "rgs_2", trigger.action)
    legs = resource_legs(data)
    names = _names(legs)
    room = next((leg for leg in legs if leg["kind"] == "room"), None)
    if room is not None:
        service = resources.add_group("SIU_S12_SERVICE")
        _put(service.ais, "ais_1", "1")
        _put(service.ais, "ais_2", trigger.action)
        _put(service.ais, "ais_3", procedure_text)
        _put(service.ais, "ais_4", _ts(room["start"], site))
        _put(service.ais, "ais_7", _minutes(room["start"], room["end"]))
        _put(service.ais, "ais_8", "min^minutes")
    counters = {"AIG": 0, "AIL": 0, "AIP": 0}
    for leg in legs:
        row = names.get((leg["kind"], int(leg["id"])))
        name = _escape(str(row)) if row is not None else ""
        start, minutes = _ts(leg["start"], site), _minutes(leg["start"], leg["end"])
        if leg["kind"] in ("room", "recovery_bay"):
            counters["AIL"] += 1
            ail = resources.add_group("SIU_S12_LOCATION_RESOURCE").ail
            _put(ail, "ail_1", str(counters["AIL"]))
            _put(ail, "ail_2", trigger.action)
            prefix = "room" if leg["kind"] == "room" else "bay"
            _put(ail, "ail_3", f"{prefix}-{leg['id']}^^^{_escape(site.code or FILLER)}^^^^^{name}")
            _put(ail, "ail_4", "ROOM^Procedure room" if leg["kind"] == "room" else "BAY^Recovery bay")
            _put(ail, "ail_6", start)
            _put(ail, "ail_9", minutes)
            _put(ail, "ail_10", "min^minutes")
        elif leg["kind"] == "equipment":
            counters["AIG"] += 1
            aig = resources.add_group("SIU_S12_GENERAL_RESOURCE").aig
            _put(aig, "aig_1", str(counters["AIG"]))
            _put(aig, "aig_2", trigger.action)
            _put(aig, "aig_3", f"equipment-{leg['id']}^{name}")
            _put(aig, "aig_4", f"{leg['role'].upper()}^{_escape(leg['role'].replace('_', ' '))}")
            _put(aig, "aig_8", start)
            _put(aig, "aig_11", minutes)
            _put(aig, "aig_12", "min^minutes")
        elif leg["kind"] == "staff":
            counters["AIP"] += 1
            aip = resources.add_group("SIU_S12_PERSONNEL_RESOURCE").aip
            _put(aip, "aip_1", str(counters["AIP"]))
            _put(aip, "aip_2", trigger.action)
            family, given = (_escape(row.last_name), _escape(row.first_name)) if row is not None else ("", "")
            _put(aip, "aip_3", f"{leg['id']}^{family}^{given}")
            _put(aip, "aip_4", PERSONNEL_TYPE.get(leg["role"], "STAFF^Staff"))
            _put(aip, "aip_6", start)
            _put(aip, "aip_9", minutes)
            _put(aip, "aip_10", "min^minutes")


def _block(m: Message, event: ChangeEvent, trigger: Trigger, site: Site) -> None:
    data = event.data
    resource = data["resource"]
    resources = m.add_group("SIU_S12_RESOURCES")
    _put(resources.rgs, "rgs_1", "1")
    _put(resources.rgs, "rgs_2", trigger.action)
    start, minutes = _ts(data["starts_at"], site), _minutes(data["starts_at"], data["ends_at"])
    if resource["kind"] == "room":
        room = ProcedureRoom.objects.filter(pk=resource["id"]).first()
        ail = resources.add_group("SIU_S12_LOCATION_RESOURCE").ail
        _put(ail, "ail_1", "1")
        _put(ail, "ail_2", trigger.action)
        _put(
            ail,
            "ail_3",
            f"room-{resource['id']}^^^{_escape(site.code or FILLER)}^^^^^{_escape(str(room)) if room else ''}",
        )
        _put(ail, "ail_4", "ROOM^Procedure room")
        _put(ail, "ail_6", start)
        _put(ail, "ail_9", minutes)
        _put(ail, "ail_10", "min^minutes")
    else:
        item = Equipment.objects.filter(pk=resource["id"]).first()
        aig = resources.add_group("SIU_S12_GENERAL_RESOURCE").aig
        _put(aig, "aig_1", "1")
        _put(aig, "aig_2", trigger.action)
        _put(aig, "aig_3", f"equipment-{resource['id']}^{_escape(str(item)) if item else ''}")
        _put(aig, "aig_4", f"{(item.kind if item else 'equipment').upper()}^Equipment")
        _put(aig, "aig_8", start)
        _put(aig, "aig_11", minutes)
        _put(aig, "aig_12", "min^minutes")
