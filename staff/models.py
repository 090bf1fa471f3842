from __future__ import annotations

from datetime import date, datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from core.choices import Weekday
from core.timewindows import Interval, expand_weekly, local_dates_between
from core.validators import birth_years, clinic_years


class StaffRole(models.TextChoices):
    PHYSICIAN = "physician", "Physician"
    RAD_TECH = "rad_tech", "Radiology tech"
    NURSE = "nurse", "Nurse"
    ANESTHESIA = "anesthesia", "Anesthesia provider"
    DEVICE_REP = "device_rep", "Device rep"


class StaffMember(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="staff_member"
    )
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80)
    role = models.CharField(max_length=20, choices=StaffRole.choices)
    sedation_capable = models.BooleanField(default=False, help_text="Nurses only: may monitor moderate sedation.")
    email = models.EmailField(blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["last_name", "first_name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(sedation_capable=False) | Q(role="nurse"), name="staff_staffmember_sedation_only_nurses"
            )
        ]

    def __str__(self) -> str:
        prefix = "Dr. " if self.role == StaffRole.PHYSICIAN else ""
        return f"{prefix}{self.first_name} {self.last_name}"


class CredentialKind(models.TextChoices):
    PRIVILEGE = "privilege", "Procedure privilege"
    FLUOROSCOPY = "fluoroscopy", "Fluoroscopy permit"
    LICENSE = "license", "License"
    SEDATION = "sedation", "Sedation certification"
    OTHER = "other", "Other"


class Credential(models.Model):
    """A dated credential. Physician privileges name the procedure type by its code, so this
    app stays independent of the procedure catalogue."""

    staff = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="credentials")
    kind = models.CharField(max_length=20, choices=CredentialKind.choices)
    procedure_code = models.CharField(max_length=20, blank=True, help_text="For privileges: the procedure type's code.")
    jurisdiction = models.CharField(max_length=40, blank=True, help_text="Issuing state or body, e.g. TX.")
    identifier = models.CharField(max_length=80, blank=True)
    valid_from = models.DateField(validators=[birth_years])
    expires_on = models.DateField(null=True, blank=True, validators=[clinic_years])

    class Meta:
        ordering = ["staff", "kind", "procedure_code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_on__isnull=True) | Q(expires_on__gte=models.F("valid_from")),
                name="staff_credential_expires_after_valid_from",
            ),
            models.CheckConstraint(
                condition=~Q(kind="privilege") | ~Q(procedure_code=""),
                name="staff_credential_privilege_names_procedure",
            ),
        ]

    def __str__(self) -> str:
        what = self.procedure_code if self.kind == CredentialKind.PRIVILEGE else self.jurisdiction
        return f"{self.get_kind_display()} {what}".strip()

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.expires_on is None or day <= self.expires_on)


class Shift(models.Model):
    """A weekly shift in the site's local wall-clock time."""

    staff = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="shifts")
    site = models.ForeignKey("rooms.Site", on_delete=models.CASCADE, related_name="shifts")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    starts_at = models.TimeField()
    ends_at = models.TimeField()
    valid_from = models.DateField(null=True, blank=True, validators=[clinic_years])
    valid_until = models.DateField(null=True, blank=True, validators=[clinic_years])

    class Meta:
        ordering = ["staff", "weekday", "starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="staff_shift_ends_after_starts"
            ),
            models.CheckConstraint(condition=Q(weekday__gte=0, weekday__lte=6), name="staff_shift_weekday_range"),
        ]

    def __str__(self) -> str:
        return f"{self.staff} {self.get_weekday_display()} {self.starts_at:%H:%M}-{self.ends_at:%H:%M}"

    def applies_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )


def shift_intervals(shifts: list[Shift], start: datetime, end: datetime) -> list[Interval]:
    """UTC intervals of ``shifts`` touching ``[start, end)``; each shift in its own site's zone."""
    out: list[Interval] = []
    for shift in shifts:
        zone = shift.site.zone
        first, last = local_dates_between(start, end, zone)
        for interval in expand_weekly([(shift.weekday, shift.starts_at, shift.ends_at)], zone, first, last):
            if shift.applies_on(interval.start.astimezone(zone).date()) and interval.overlaps(start, end):
                out.append(interval)
    return out


class TimeOff(models.Model):
    staff = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="time_off")
    starts_at = models.DateTimeField(validators=[clinic_years])
    ends_at = models.DateTimeField(validators=[clinic_years])
    reason = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["starts_at"]
        verbose_name_plural = "time off"
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="staff_timeoff_ends_after_starts"
            )
        ]

    def __str__(self) -> str:
        return f"{self.staff} off {self.starts_at:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "Time off must end after it starts."})
