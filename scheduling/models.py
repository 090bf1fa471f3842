from __future__ import annotations

from datetime import UTC
from functools import reduce
from operator import or_

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from patients.models import BleedingRisk, Patient
from rooms.models import Capability, EquipmentKind
from scheduling.legroles import LEG_ROLES, PROCEDURE_STAFF_ROLES, RESOURCE_COLUMNS, LegRole
from scheduling.order import PriorAuthStatus, Side, cpt_codes, levels_label


class Sedation(models.TextChoices):
    LOCAL = "local", "Local only"
    MODERATE = "moderate", "Moderate sedation"
    MAC = "mac", "Monitored anesthesia care"
    GENERAL = "general", "General anesthesia"


# Which resource column each leg role fills.
ROLE_COLUMN: dict[str, str] = {role: info.column for role, info in LEG_ROLES.items()}


class ProcedureType(models.Model):
    """An editable catalogue entry. The legs of a booking follow from these numbers."""

    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=120)
    cpt_codes = models.CharField(max_length=120, blank=True)
    room_minutes = models.PositiveIntegerField(help_text="Positioning, prep and procedure for the first level.")
    minutes_per_extra_level = models.PositiveIntegerField(default=0)
    max_levels = models.PositiveSmallIntegerField(default=1)
    physician_joins_after_minutes = models.PositiveIntegerField(
        default=10, help_text="Positioning and prep before the physician is needed in the room."
    )
    turnover_minutes = models.PositiveIntegerField(default=10)
    arrival_lead_minutes = models.PositiveIntegerField(default=30)
    recovery_minutes = models.PositiveIntegerField(help_text="Recovery bay occupancy: flat time plus observation.")
    recovery_flat_minutes = models.PositiveIntegerField(default=0)
    sedation_default = models.CharField(max_length=20, choices=Sedation.choices, default=Sedation.LOCAL)
    sedation_allowed = models.JSONField(default=list, help_text="Sedation codes allowed for this procedure.")
    staff_roles = models.JSONField(default=list, help_text="Staff roles in the room phase besides sedation.")
    required_capabilities = models.JSONField(default=list, blank=True)
    required_equipment = models.JSONField(default=list, blank=True)
    supplies = models.CharField(max_length=200, blank=True, help_text="Consumables to pick, e.g. balloon kit.")
    bleeding_risk = models.CharField(max_length=20, choices=BleedingRisk.choices)
    requires_escort = models.BooleanField(default=False, help_text="Escort needed even without sedation.")
    requires_imaging = models.BooleanField(default=False)
    requires_pregnancy_screen = models.BooleanField(
        default=True, help_text="The pelvis or a vertebral body is in the beam."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(max_levels__gte=1), name="scheduling_proceduretype_max_levels_positive"),
            models.CheckConstraint(
                condition=Q(room_minutes__gt=0), name="scheduling_proceduretype_room_minutes_positive"
            ),
            models.CheckConstraint(
                condition=Q(recovery_flat_minutes__lte=models.F("recovery_minutes")),
                name="scheduling_proceduretype_flat_within_recovery",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if not set(self.sedation_allowed or []) <= set(Sedation.values):
            errors["sedation_allowed"] = "Unknown sedation level."
        elif self.sedation_default not in (self.sedation_allowed or []):
            errors["sedation_default"] = "The default sedation must be one of the allowed levels."
        if not set(self.staff_roles or []) <= {r.value for r in PROCEDURE_STAFF_ROLES}:
            errors["staff_roles"] = "Staff roles must be physician, rad_tech or device_rep."
        if not set(self.required_capabilities or []) <= set(Capability.values):
            errors["required_capabilities"] = "Unknown room capability."
        if not set(self.required_equipment or []) <= set(EquipmentKind.values):
            errors["required_equipment"] = "Unknown equipment kind."
        if self.physician_joins_after_minutes >= self.room_minutes:
            errors["physician_joins_after_minutes"] = "The physician must join before the room time ends."
        if errors:
            raise ValidationError(errors)


class BookingStatus(models.TextChoices):
    HOLD = "hold", "Hold"
    SCHEDULED = "scheduled", "Scheduled"
    CHECKED_IN = "checked_in", "Checked in"
    READY = "ready", "Ready"
    IN_PROCEDURE = "in_procedure", "In procedure"
    IN_RECOVERY = "in_recovery", "In recovery"
    READY_FOR_DISCHARGE = "ready_for_discharge", "Ready for discharge"
    DISCHARGED = "discharged", "Discharged"
    CANCELLED = "cancelled", "Cancelled"
    NO_SHOW = "no_show", "No-show"


# Statuses whose legs hold their resources.
ACTIVE_STATUSES = frozenset(
    {
        BookingStatus.HOLD,
        BookingStatus.SCHEDULED,
        BookingStatus.CHECKED_IN,
        BookingStatus.READY,
        BookingStatus.IN_PROCEDURE,
        BookingStatus.IN_RECOVERY,
        BookingStatus.READY_FOR_DISCHARGE,
    }
)


class CancelReason(models.TextChoices):
    NO_DRIVER = "no_driver", "No driver"
    NOT_FASTING = "not_fasting", "Not fasting"
    ANTICOAGULANT_NOT_HELD = "anticoagulant_not_held", "Anticoagulant not held"
    INFECTION = "infection", "Infection or fever"
    PREGNANCY = "pregnancy", "Pregnancy"
    PATIENT_REQUEST = "patient_request", "Patient request"
    EQUIPMENT_DOWN = "equipment_down", "Equipment down"
    PHYSICIAN_UNAVAILABLE = "physician_unavailable", "Physician unavailable"
    SCHEDULING_ERROR = "scheduling_error", "Booked in error"
    HOLD_EXPIRED = "hold_expired", "Hold expired"
    OTHER = "other", "Other"


class Booking(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="bookings")
    procedure_type = models.ForeignKey(ProcedureType, on_delete=models.PROTECT, related_name="bookings")
    site = models.ForeignKey("rooms.Site", on_delete=models.PROTECT, related_name="bookings")
    levels = models.PositiveSmallIntegerField(default=1)
    sedation = models.CharField(max_length=20, choices=Sedation.choices)
    # The order the referral brings (scheduling.order checks it): levels by name in spinal
    # order (their count is ``levels``), side, indication, referrer, order and authorisation.
    level_names = models.JSONField(default=list, blank=True)
    side = models.CharField(max_length=10, choices=Side.choices, blank=True)
    indication_code = models.CharField("ICD-10 code", max_length=10, blank=True)
    indication_text = models.CharField(max_length=200, blank=True)
    referring_provider = models.CharField(max_length=120, blank=True)
    external_order_id = models.CharField(max_length=60, blank=True)
    prior_auth_number = models.CharField("prior authorisation number", max_length=60, blank=True)
    prior_auth_status = models.CharField(
        "prior authorisation status",
        max_length=16,
        choices=PriorAuthStatus.choices,
        default=PriorAuthStatus.NOT_REQUIRED,
    )
    order_notes = models.TextField(max_length=1000, blank=True)
    status = models.CharField(max_length=24, choices=BookingStatus.choices, default=BookingStatus.SCHEDULED)
    starts_at = models.DateTimeField(help_text="Start of the room phase.")
    ends_at = models.DateTimeField(help_text="End of the last leg (usually recovery).")
    arrival_at = models.DateTimeField(help_text="When the patient is asked to arrive.")
    cancel_reason = models.CharField(max_length=32, choices=CancelReason.choices, blank=True)
    cancel_note = models.CharField(max_length=255, blank=True)
    hold_expires_at = models.DateTimeField(null=True, blank=True)
    # When each step of the day happened (who did it is in the audit trail).
    checked_in_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    procedure_started_at = models.DateTimeField(null=True, blank=True)
    procedure_ended_at = models.DateTimeField(null=True, blank=True)
    recovery_started_at = models.DateTimeField(null=True, blank=True)
    ready_for_discharge_at = models.DateTimeField(null=True, blank=True)
    discharged_at = models.DateTimeField(null=True, blank=True)
    # A physician's or administrator's decision to book inside an anticoagulant hold.
    anticoagulant_override_reason = models.CharField(max_length=255, blank=True)
    anticoagulant_override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    anticoagulant_override_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="scheduling_booking_ends_after_starts"
            ),
            models.CheckConstraint(condition=Q(levels__gte=1), name="scheduling_booking_levels_positive"),
            models.CheckConstraint(
                condition=~Q(status="cancelled") | ~Q(cancel_reason=""), name="scheduling_booking_cancel_has_reason"
            ),
        ]
        indexes = [
            models.Index(fields=["site", "starts_at"], name="scheduling_booking_site_start"),
            # Every booking write sweeps expired holds first; this keeps that sweep off the table.
            models.Index(fields=["hold_expires_at"], condition=Q(status="hold"), name="scheduling_booking_hold_due"),
            # Sync clients walk changes in (updated_at, id) order.
            models.Index(fields=["updated_at", "id"], name="scheduling_booking_changes"),
        ]

    def __str__(self) -> str:
        code = self.procedure_type.code
        if Booking.site.is_cached(self):
            # In the site's zone, named, when the site is at hand (as in the admin).
            local = self.starts_at.astimezone(self.site.zone)
            return f"Booking {self.pk} {code} {local:%Y-%m-%d %H:%M} {local.tzname()}"
        return f"Booking {self.pk} {code} {self.starts_at.astimezone(UTC):%Y-%m-%d %H:%M}Z"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def cpt_codes(self) -> list[str]:
        return cpt_codes(self.procedure_type.code, self.level_names, self.levels, self.procedure_type.cpt_codes)

    @property
    def levels_label(self) -> str:
        return levels_label(self.level_names, self.levels, self.side)


def _one_column_set() -> Q:
    options = []
    for column in RESOURCE_COLUMNS:
        options.append(Q(**{f"{c}__isnull": c != column for c in RESOURCE_COLUMNS}))
    return reduce(or_, options)


def _role_matches_column() -> Q:
    by_column: dict[str, list[str]] = {}
    for role, column in ROLE_COLUMN.items():
        by_column.setdefault(column, []).append(str(role))
    return reduce(or_, (Q(role__in=roles, **{f"{column}__isnull": False}) for column, roles in by_column.items()))


class Allocation(models.Model):
    """One leg of a booking: one resource held for ``[starts_at, ends_at)``.

    The database refuses two overlapping active legs of one resource: an exclusion constraint
    per resource column on PostgreSQL, triggers on SQLite (migration 0002).
    """

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="legs")
    role = models.CharField(max_length=20, choices=LegRole.choices)
    # No index of their own: the partial (resource, end) indexes below serve every lookup by
    # resource (a leg sits in one of them, not in five full ones with four NULLs).
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    room = models.ForeignKey(
        "rooms.ProcedureRoom", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    equipment = models.ForeignKey(
        "rooms.Equipment", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    staff = models.ForeignKey(
        "staff.StaffMember", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    bay = models.ForeignKey(
        "rooms.RecoveryBay", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    is_active = models.BooleanField(default=True)
    # Set on the legs of a hold: searches treat them as free from then, and the next write
    # that needs the resource releases them.
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="scheduling_allocation_ends_after_starts"
            ),
            models.CheckConstraint(condition=_one_column_set(), name="scheduling_allocation_exactly_one_resource"),
            models.CheckConstraint(
                condition=_role_matches_column(), name="scheduling_allocation_role_matches_resource"
            ),
        ]
        # (resource, end) lets SQLite find a resource's legs that end after a window starts
        # without scanning its history; PostgreSQL uses the exclusion constraints' GiST indexes.
        # Partial: a leg holds one resource, so it enters one of these, not five.
        indexes = [
            models.Index(
                fields=[column, "ends_at"],
                name=f"sched_alloc_{column}_end",
                condition=Q(**{f"{column}__isnull": False}),
            )
            for column in RESOURCE_COLUMNS
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.starts_at.astimezone(UTC):%Y-%m-%d %H:%M}-{self.ends_at.astimezone(UTC):%H:%M}Z"

    @property
    def resource_column(self) -> str:
        return ROLE_COLUMN[self.role]

    @property
    def resource_id(self) -> int:
        value = getattr(self, f"{self.resource_column}_id")
        assert value is not None
        return int(value)
