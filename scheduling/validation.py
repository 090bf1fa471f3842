"""The rules a case must meet before its legs are written. Every problem found is reported,
so a scheduler fixes them in one pass."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Q
from django.utils import timezone

from core.errors import BookingInvalid, Problem
from core.timewindows import covered
from rooms.models import Downtime, Equipment, OpeningHours, ProcedureRoom, RecoveryBay, Site, hours_between
from scheduling.models import LegRole, ProcedureType
from scheduling.resources import BoundLeg, describe_resource, local_hhmm, local_span
from staff.models import Credential, CredentialKind, Shift, StaffMember, StaffRole, TimeOff, shift_intervals

STAFF_ROLE_FOR_LEG: dict[LegRole, str] = {
    LegRole.PHYSICIAN: StaffRole.PHYSICIAN,
    LegRole.RAD_TECH: StaffRole.RAD_TECH,
    LegRole.SEDATION_NURSE: StaffRole.NURSE,
    LegRole.ANESTHESIA: StaffRole.ANESTHESIA,
    LegRole.DEVICE_REP: StaffRole.DEVICE_REP,
}
EQUIPMENT_KIND_FOR_LEG: dict[LegRole, str] = {LegRole.C_ARM: "c_arm", LegRole.RF_GENERATOR: "rf_generator"}


def require_aware(value: datetime, field: str) -> None:
    if timezone.is_naive(value):
        raise BookingInvalid([Problem("naive_datetime", f"{field} must include a UTC offset.", field=field)])


@dataclass
class CaseContext:
    procedure_type: ProcedureType
    site: Site
    room: ProcedureRoom
    legs: list[BoundLeg]

    @property
    def local_day(self) -> date:
        return self.room_leg.starts_at.astimezone(self.site.zone).date()

    @property
    def room_leg(self) -> BoundLeg:
        return next(leg for leg in self.legs if leg.role == LegRole.ROOM)


def validate_case(ctx: CaseContext, *, allow_past: bool = False) -> list[Problem]:
    """Check every leg against hours, shifts, downtime, time off, credentials and fit.

    Runs a fixed number of queries whatever the number of legs.
    """
    problems: list[Problem] = []
    zone = ctx.site.zone
    start = ctx.room_leg.starts_at
    if not allow_past and start < timezone.now():
        problems.append(Problem("starts_in_past", "The case would start in the past.", field="start"))

    staff_legs = [leg for leg in ctx.legs if leg.role in STAFF_ROLE_FOR_LEG]
    staff_ids = {leg.resource_id for leg in staff_legs}
    window_start = min(leg.starts_at for leg in ctx.legs)
    window_end = max(leg.ends_at for leg in ctx.legs)

    hours = list(OpeningHours.objects.filter(site=ctx.site).filter(Q(room__isnull=True) | Q(room=ctx.room)))
    shifts: dict[int, list[Shift]] = defaultdict(list)
    for shift in Shift.objects.filter(staff_id__in=staff_ids, site=ctx.site).select_related("site"):
        shifts[shift.staff_id].append(shift)
    time_off: dict[int, list[TimeOff]] = defaultdict(list)
    for off in TimeOff.objects.filter(staff_id__in=staff_ids, starts_at__lt=window_end, ends_at__gt=window_start):
        time_off[off.staff_id].append(off)
    credentials: dict[int, list[Credential]] = defaultdict(list)
    for credential in Credential.objects.filter(staff_id__in=staff_ids):
        credentials[credential.staff_id].append(credential)
    equipment_ids = [leg.resource_id for leg in ctx.legs if leg.role in EQUIPMENT_KIND_FOR_LEG]
    downtimes = list(
        Downtime.objects.filter(Q(room=ctx.room) | Q(equipment_id__in=equipment_ids))
        .filter(starts_at__lt=window_end, ends_at__gt=window_start)
        .order_by("starts_at")
    )

    room_hours = [h for h in hours if h.room_id == ctx.room.pk] or [h for h in hours if h.room_id is None]
    site_hours = [h for h in hours if h.room_id is None]

    for leg in ctx.legs:
        resource = leg.resource
        span = local_span(leg.starts_at, leg.ends_at, zone)
        described = describe_resource(resource)
        name = described["name"]

        def add(code: str, message: str, leg: BoundLeg = leg, described: dict = described) -> None:
            problems.append(Problem(code, message, role=str(leg.role), resource=described))

        if hasattr(resource, "is_active") and not resource.is_active:
            add("resource_inactive", f"{name} is not in service.")
        site_id = getattr(resource, "site_id", None)
        if site_id is not None and site_id != ctx.site.pk:
            add("wrong_site", f"{name} belongs to another site.")

        if leg.role == LegRole.ROOM:
            assert isinstance(resource, ProcedureRoom)
            missing = set(ctx.procedure_type.required_capabilities) - set(resource.capabilities)
            if missing:
                add(
                    "room_lacks_capability",
                    f"{name} lacks {', '.join(sorted(missing))} needed for {ctx.procedure_type.code}.",
                )
            if not covered(hours_between(room_hours, zone, leg.starts_at, leg.ends_at), leg.starts_at, leg.ends_at):
                add("outside_opening_hours", f"{name} is not open for all of {span}.")
        elif leg.role == LegRole.RECOVERY_BAY:
            assert isinstance(resource, RecoveryBay)
            if not covered(hours_between(site_hours, zone, leg.starts_at, leg.ends_at), leg.starts_at, leg.ends_at):
                add("outside_opening_hours", f"Recovery would run {span}, past the site's opening hours.")
        elif leg.role == LegRole.PATIENT:
            # Pre-op (consent, IV, labs) happens at the clinic, so it must be open on arrival.
            arrival, room_start = leg.starts_at, ctx.room_leg.starts_at
            if not covered(hours_between(site_hours, zone, arrival, room_start), arrival, room_start):
                add(
                    "arrival_outside_opening_hours",
                    f"The patient would arrive at {local_hhmm(arrival, zone)}, before the site opens.",
                )
        elif leg.role in EQUIPMENT_KIND_FOR_LEG:
            assert isinstance(resource, Equipment)
            if resource.kind != EQUIPMENT_KIND_FOR_LEG[leg.role]:
                add("wrong_resource_kind", f"{name} is not a {leg.role.label}.")
            elif not resource.usable_in(ctx.room):
                add("equipment_not_in_room", f"{name} is fixed in another room and cannot be used in {ctx.room}.")
        elif leg.role in STAFF_ROLE_FOR_LEG:
            assert isinstance(resource, StaffMember)
            problems.extend(_staff_problems(ctx, leg, resource, shifts, time_off, credentials))

        for block in downtimes:
            target_matches = (leg.role == LegRole.ROOM and block.room_id == resource.pk) or (
                leg.role in EQUIPMENT_KIND_FOR_LEG and block.equipment_id == resource.pk
            )
            if target_matches and block.starts_at < leg.ends_at and leg.starts_at < block.ends_at:
                add(
                    "resource_downtime",
                    f"{name} is out of service ({block.get_reason_display()}) "
                    f"{local_span(block.starts_at, block.ends_at, zone)}.",
                )
    return problems


def _staff_problems(
    ctx: CaseContext,
    leg: BoundLeg,
    member: StaffMember,
    shifts: dict[int, list[Shift]],
    time_off: dict[int, list[TimeOff]],
    credentials: dict[int, list[Credential]],
) -> list[Problem]:
    zone = ctx.site.zone
    day = ctx.local_day
    described = describe_resource(member)
    out: list[Problem] = []

    def add(code: str, message: str) -> None:
        out.append(Problem(code, message, role=str(leg.role), resource=described))

    expected = STAFF_ROLE_FOR_LEG[leg.role]
    if member.role != expected:
        add(
            "wrong_resource_kind", f"{member} is a {member.get_role_display().lower()}, not a {leg.role.label.lower()}."
        )
        return out
    if leg.role == LegRole.SEDATION_NURSE and not member.sedation_capable:
        add("not_sedation_capable", f"{member} is not a sedation-capable nurse.")

    worked = shift_intervals(shifts.get(member.pk, []), leg.starts_at, leg.ends_at)
    if not covered(worked, leg.starts_at, leg.ends_at):
        add(
            "outside_shift",
            f"{member} has no shift at {ctx.site} covering {local_span(leg.starts_at, leg.ends_at, zone)}.",
        )
    for off in time_off.get(member.pk, []):
        if off.starts_at < leg.ends_at and leg.starts_at < off.ends_at:
            add("staff_time_off", f"{member} is off {local_span(off.starts_at, off.ends_at, zone)}.")

    held = credentials.get(member.pk, [])
    if leg.role == LegRole.PHYSICIAN:
        code = ctx.procedure_type.code
        privileges = [c for c in held if c.kind == CredentialKind.PRIVILEGE and c.procedure_code == code]
        if not any(c.valid_on(day) for c in privileges):
            if privileges:
                add(
                    "physician_not_privileged",
                    f"{member}'s privilege for {ctx.procedure_type.name} is not valid on {day}.",
                )
            else:
                add("physician_not_privileged", f"{member} is not privileged for {ctx.procedure_type.name}.")
    elif leg.role == LegRole.RAD_TECH:
        permits = [c for c in held if c.kind == CredentialKind.FLUOROSCOPY]
        jurisdiction = ctx.site.jurisdiction
        if jurisdiction:
            permits = [c for c in permits if c.jurisdiction.upper() == jurisdiction.upper()]
        if not any(c.valid_on(day) for c in permits):
            where = f" for {jurisdiction}" if jurisdiction else ""
            add("tech_credential_invalid", f"{member} has no fluoroscopy permit{where} valid on {day}.")
    return out
