from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from core.choices import Weekday
from core.timewindows import Interval, expand_weekly, local_dates_between, validate_timezone
from core.validators import clinic_years


class Capability(models.TextChoices):
    FLUOROSCOPY = "fluoroscopy", "Fluoroscopy"
    STERILE_FIELD = "sterile_field", "Sterile field"
    ANESTHESIA = "anesthesia", "Anesthesia-capable"


class EquipmentKind(models.TextChoices):
    C_ARM = "c_arm", "C-arm fluoroscope"
    RF_GENERATOR = "rf_generator", "RF generator"


class Site(models.Model):
    name = models.CharField(max_length=120, unique=True)
    code = models.SlugField(max_length=20, unique=True)
    timezone = models.CharField(
        max_length=64, validators=[validate_timezone], help_text="IANA name, e.g. America/Chicago"
    )
    address = models.CharField(max_length=255, blank=True)
    jurisdiction = models.CharField(
        max_length=40, blank=True, help_text="State or body whose fluoroscopy permits apply here, e.g. TX."
    )
    notify_email = models.EmailField(blank=True, help_text="Charge nurse / front desk: alerts and work lists.")
    # Readiness policy; defaults from DOMAIN.md, edited per clinic.
    lab_window_days = models.PositiveSmallIntegerField(default=7, help_text="INR and platelets must be this recent.")
    inr_max = models.DecimalField(max_digits=3, decimal_places=1, default=Decimal("1.5"))
    platelets_min = models.PositiveIntegerField(default=50, help_text="Thousand per microlitre.")
    npo_solids_hours = models.PositiveSmallIntegerField(default=8)
    npo_clears_hours = models.PositiveSmallIntegerField(default=2)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class OpeningHours(models.Model):
    """Weekly opening hours in the site's local time. Rows with a room override the site's
    hours for that room; a room without rows of its own follows the site."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="opening_hours")
    room = models.ForeignKey(
        "ProcedureRoom", null=True, blank=True, on_delete=models.CASCADE, related_name="opening_hours"
    )
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens_at = models.TimeField()
    closes_at = models.TimeField()

    class Meta:
        ordering = ["site", "room", "weekday", "opens_at"]
        verbose_name_plural = "opening hours"
        constraints = [
            models.CheckConstraint(
                condition=Q(closes_at__gt=models.F("opens_at")), name="rooms_openinghours_closes_after_opens"
            ),
            models.CheckConstraint(
                condition=Q(weekday__gte=0, weekday__lte=6), name="rooms_openinghours_weekday_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens_at:%H:%M}-{self.closes_at:%H:%M}"

    def clean(self) -> None:
        if self.room is not None and self.site_id and self.room.site_id != self.site_id:
            raise ValidationError({"room": "The room belongs to another site."})


def hours_between(rows: list[OpeningHours], zone: ZoneInfo, start: datetime, end: datetime) -> list[Interval]:
    first, last = local_dates_between(start, end, zone)
    return list(expand_weekly(((r.weekday, r.opens_at, r.closes_at) for r in rows), zone, first, last))


class ProcedureRoom(models.Model):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="rooms")
    name = models.CharField(max_length=80)
    capabilities = models.JSONField(default=list, blank=True, help_text="Codes from Capability.")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["site", "name"]
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="rooms_procedureroom_unique_name")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        unknown = set(self.capabilities or []) - set(Capability.values)
        if unknown:
            raise ValidationError({"capabilities": f"Unknown capabilities: {', '.join(sorted(unknown))}."})


class Equipment(models.Model):
    """A C-arm or RF generator. With a room it is fixed there; without one it is mobile and
    may be wheeled into any room of its site."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="equipment")
    kind = models.CharField(max_length=20, choices=EquipmentKind.choices)
    name = models.CharField(max_length=80)
    serial_number = models.CharField(max_length=80, blank=True)
    room = models.ForeignKey(
        ProcedureRoom,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="fixed_equipment",
        help_text="The room it is fixed in; empty for mobile equipment.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["site", "kind", "name"]
        verbose_name_plural = "equipment"
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="rooms_equipment_unique_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_mobile(self) -> bool:
        return self.room_id is None

    def clean(self) -> None:
        if self.room is not None and self.site_id and self.room.site_id != self.site_id:
            raise ValidationError({"room": "The room belongs to another site."})

    def usable_in(self, room: ProcedureRoom) -> bool:
        return self.is_active and self.site_id == room.site_id and self.room_id in (None, room.pk)


class RecoveryBay(models.Model):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="recovery_bays")
    name = models.CharField(max_length=80)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["site", "name"]
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="rooms_recoverybay_unique_name")]

    def __str__(self) -> str:
        return self.name


class DowntimeReason(models.TextChoices):
    QA = "qa", "QA / physicist inspection"
    REPAIR = "repair", "Repair"
    MAINTENANCE = "maintenance", "Maintenance"
    CLOSURE = "closure", "Closure"
    OTHER = "other", "Other"


class Downtime(models.Model):
    """A block during which a room or a piece of equipment cannot be used."""

    room = models.ForeignKey(ProcedureRoom, null=True, blank=True, on_delete=models.CASCADE, related_name="downtimes")
    equipment = models.ForeignKey(Equipment, null=True, blank=True, on_delete=models.CASCADE, related_name="downtimes")
    starts_at = models.DateTimeField(validators=[clinic_years])
    ends_at = models.DateTimeField(validators=[clinic_years])
    reason = models.CharField(max_length=20, choices=DowntimeReason.choices)
    note = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(room__isnull=False, equipment__isnull=True) | Q(room__isnull=True, equipment__isnull=False)
                ),
                name="rooms_downtime_exactly_one_target",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="rooms_downtime_ends_after_starts"
            ),
        ]
        indexes = [models.Index(fields=["starts_at", "ends_at"], name="rooms_downtime_window_idx")]

    def __str__(self) -> str:
        return f"{self.target} {self.get_reason_display()} {self.starts_at:%Y-%m-%d %H:%M}"

    @property
    def target(self) -> ProcedureRoom | Equipment | None:
        return self.room or self.equipment
