from __future__ import annotations

from datetime import UTC, date
from functools import reduce
from operator import or_

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from core.validators import (
    FIRST_BIRTH_YEAR,
    FIRST_YEAR,
    LAST_YEAR,
    YearRangeValidator,
    birth_years,
    clinic_years,
)
from rooms.models import Capability, EquipmentKind

# Re-exported: migrations and callers name them here.
__all__ = ["FIRST_BIRTH_YEAR", "FIRST_YEAR", "LAST_YEAR", "YearRangeValidator", "birth_years", "clinic_years"]


class Sedation(models.TextChoices):
    LOCAL = "local", "Local only"
    MODERATE = "moderate", "Moderate sedation"
    MAC = "mac", "Monitored anesthesia care"
    GENERAL = "general", "General anesthesia"


class BleedingRisk(models.TextChoices):
    LOW = "low", "Low"
    INTERMEDIATE = "intermediate", "Intermediate"
    HIGH = "high", "High"


class LegRole(models.TextChoices):
    PATIENT = "patient", "Patient"
    ROOM = "room", "Procedure room"
    C_ARM = "c_arm", "C-arm"
    RF_GENERATOR = "rf_generator", "RF generator"
    PHYSICIAN = "physician", "Physician"
    RAD_TECH = "rad_tech", "Radiology tech"
    SEDATION_NURSE = "sedation_nurse", "Sedation nurse"
    ANESTHESIA = "anesthesia", "Anesthesia provider"
    DEVICE_REP = "device_rep", "Device rep"
    RECOVERY_BAY = "recovery_bay", "Recovery bay"


# Which resource column each leg role fills.
ROLE_COLUMN: dict[str, str] = {
    LegRole.PATIENT: "patient",
    LegRole.ROOM: "room",
    LegRole.C_ARM: "equipment",
    LegRole.RF_GENERATOR: "equipment",
    LegRole.PHYSICIAN: "staff",
    LegRole.RAD_TECH: "staff",
    LegRole.SEDATION_NURSE: "staff",
    LegRole.ANESTHESIA: "staff",
    LegRole.DEVICE_REP: "staff",
    LegRole.RECOVERY_BAY: "bay",
}
RESOURCE_COLUMNS = ("patient", "room", "equipment", "staff", "bay")
# Staff roles a procedure type may list for its room phase; sedation roles follow from the
# sedation level instead.
PROCEDURE_STAFF_ROLES = (LegRole.PHYSICIAN, LegRole.RAD_TECH, LegRole.DEVICE_REP)


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


class Sex(models.TextChoices):
    """Administrative sex, with the codes of FHIR's AdministrativeGender."""

    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class PregnancyPossible(models.TextChoices):
    """Whether the pregnancy screen applies: from sex and age, or set for this patient."""

    AUTO = "auto", "From sex and age"
    YES = "yes", "Possible"
    NO = "no", "Not possible"


# Child-bearing potential when nothing else is recorded (ACR-SPR practice: screen patients of
# child-bearing potential before fluoroscopy of the pelvis or spine).
CHILDBEARING_AGES = (10, 55)


class Patient(models.Model):
    """Minimal demographics: what scheduling and the day of the procedure need."""

    mrn = models.CharField("MRN", max_length=40, unique=True)
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80)
    date_of_birth = models.DateField(validators=[birth_years])
    sex = models.CharField(max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    pregnancy_possible = models.CharField(
        max_length=4,
        choices=PregnancyPossible.choices,
        default=PregnancyPossible.AUTO,
        help_text="Whether the pregnancy screen applies; 'auto' decides from sex and age.",
    )
    phone = models.CharField(max_length=30, blank=True)
    escort_name = models.CharField(max_length=120, blank=True)
    escort_phone = models.CharField(max_length=30, blank=True)
    allergies = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["last_name", "first_name", "mrn"]

    def __str__(self) -> str:
        # The admin and logs show the MRN only; names are read through audited views.
        return f"Patient {self.mrn}"

    def age_on(self, day: date) -> int:
        born = self.date_of_birth
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    def may_be_pregnant(self, on: date) -> bool:
        """The one rule for whether the pregnancy screen applies to this patient on a day.

        A recorded answer wins; otherwise a patient who is not recorded as male is screened while
        of child-bearing age (sex unknown or other is screened, not assumed away).
        """
        if self.pregnancy_possible != PregnancyPossible.AUTO:
            return self.pregnancy_possible == PregnancyPossible.YES
        if self.sex == Sex.MALE:
            return False
        if self.date_of_birth is None:
            return True
        first, last = CHILDBEARING_AGES
        return first <= self.age_on(on) <= last


class MedicationHold(models.Model):
    """An anticoagulant or antiplatelet the patient must stop before a high-bleeding-risk case.

    The case may not start before ``last_dose_on + hold_days + 1`` (that many whole days
    without the drug); while ``last_dose_on`` is empty the patient is still taking it and the
    hold counts from today.
    """

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="medication_holds")
    medication = models.CharField(max_length=60)
    hold_days = models.PositiveSmallIntegerField()
    last_dose_on = models.DateField(null=True, blank=True, validators=[clinic_years])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["patient", "medication"]

    def __str__(self) -> str:
        return f"{self.medication} hold {self.hold_days} d"


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
        ]

    def __str__(self) -> str:
        return f"Booking {self.pk} {self.procedure_type.code} {self.starts_at.astimezone(UTC):%Y-%m-%d %H:%M}Z"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


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
    patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    room = models.ForeignKey("rooms.ProcedureRoom", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    equipment = models.ForeignKey("rooms.Equipment", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    staff = models.ForeignKey("staff.StaffMember", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    bay = models.ForeignKey("rooms.RecoveryBay", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
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
        indexes = [
            models.Index(fields=[column, "ends_at"], name=f"sched_alloc_{column}_end") for column in RESOURCE_COLUMNS
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


class PregnancyStatus(models.TextChoices):
    UNKNOWN = "unknown", "Not screened"
    NOT_APPLICABLE = "not_applicable", "Not applicable"
    NEGATIVE = "negative", "Negative"
    POSITIVE = "positive", "Positive"


class CaseChecklist(models.Model):
    """What staff record on the day; the readiness gate reads it with the patient's records."""

    booking = models.OneToOneField(Booking, on_delete=models.CASCADE, related_name="checklist")
    consent_signed_at = models.DateTimeField(null=True, blank=True, validators=[clinic_years])
    escort_confirmed = models.BooleanField(default=False, help_text="Pickup by the responsible adult confirmed.")
    escort_present_at = models.DateTimeField(null=True, blank=True)
    last_solids_at = models.DateTimeField(null=True, blank=True, validators=[clinic_years])
    last_clears_at = models.DateTimeField(null=True, blank=True, validators=[clinic_years])
    pregnancy_status = models.CharField(max_length=20, choices=PregnancyStatus.choices, default=PregnancyStatus.UNKNOWN)
    allergies_reviewed = models.BooleanField(default=False)
    override_reason = models.CharField(max_length=255, blank=True)
    override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    override_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Checklist for booking {self.booking_id}"


class LabTest(models.TextChoices):
    INR = "inr", "INR"
    PLATELETS = "platelets", "Platelets (10^3/uL)"


class LabResult(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="lab_results")
    test = models.CharField(max_length=20, choices=LabTest.choices)
    value = models.DecimalField(max_digits=7, decimal_places=2)
    taken_at = models.DateTimeField(validators=[clinic_years])

    class Meta:
        ordering = ["-taken_at"]

    def __str__(self) -> str:
        return f"{self.get_test_display()} {self.value}"


class ImagingModality(models.TextChoices):
    MRI_STIR = "mri_stir", "MRI with STIR"
    CT = "ct", "CT"
    BONE_SCAN = "bone_scan", "Bone scan"


class ImagingStudy(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="imaging_studies")
    modality = models.CharField(max_length=20, choices=ImagingModality.choices)
    performed_on = models.DateField(validators=[clinic_years])

    class Meta:
        ordering = ["-performed_on"]
        verbose_name_plural = "imaging studies"

    def __str__(self) -> str:
        return f"{self.get_modality_display()} {self.performed_on}"


class AlertKind(models.TextChoices):
    RECOVERY_CLASH = "recovery_clash", "Late case: recovery clash"
    LEG_CLASH = "leg_clash", "Late case: resource clash"
    DOWNTIME_IMPACT = "downtime_impact", "Equipment or room downtime hits a booking"
    DELIVERY_UNKNOWN = "delivery_unknown", "A message may not have been sent"


class Alert(models.Model):
    """Something the charge nurse or a scheduler must look at. Holds ids and times only."""

    site = models.ForeignKey("rooms.Site", on_delete=models.CASCADE, related_name="alerts")
    booking = models.ForeignKey(Booking, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=30, choices=AlertKind.choices)
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.created_at:%Y-%m-%d %H:%M})"


class NotificationKind(models.TextChoices):
    PREP_REMINDER = "prep_reminder", "Preparation reminder (2 days before)"
    DAY_BEFORE_REMINDER = "day_before_reminder", "Day-before reminder"
    READY_FOR_DISCHARGE = "ready_for_discharge", "Patient ready for discharge"
    FOLLOW_UP_CALLS = "follow_up_calls", "Next-day follow-up call list"
    DAILY_LIST = "daily_list", "Physician's daily list"
    CREDENTIAL_EXPIRY_60 = "credential_expiry_60", "Credential expires in 60 days"
    CREDENTIAL_EXPIRY_30 = "credential_expiry_30", "Credential expires in 30 days"
    DOWNTIME_IMPACT = "downtime_impact", "Downtime affects a booking"
    RECOVERY_CLASH = "recovery_clash", "Recovery clash after a late case"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    UNKNOWN = "unknown", "Outcome unknown"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class Notification(models.Model):
    """An outbox row: written in the same transaction as the change that calls for it, relayed
    to the broker by a periodic task once due. ``dedupe_key`` makes each (subject, kind) one row,
    so it is sent at most once."""

    kind = models.CharField(max_length=30, choices=NotificationKind.choices)
    dedupe_key = models.CharField(max_length=200, unique=True)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    booking = models.ForeignKey(Booking, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    staff = models.ForeignKey("staff.StaffMember", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey("rooms.Site", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    subject_id = models.BigIntegerField(null=True, blank=True, help_text="Other subject (e.g. a credential) by id.")
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    queued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["status", "due_at"], name="sched_notification_due")]

    def __str__(self) -> str:
        return f"{self.kind} {self.dedupe_key} {self.status}"
