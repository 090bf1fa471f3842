"""What staff record on the day of a case; the readiness gate reads it with the patient's records."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core.validators import clinic_years


class PregnancyStatus(models.TextChoices):
    UNKNOWN = "unknown", "Not screened"
    NOT_APPLICABLE = "not_applicable", "Not applicable"
    NEGATIVE = "negative", "Negative"
    POSITIVE = "positive", "Positive"


class CaseChecklist(models.Model):
    """What staff record on the day; the readiness gate reads it with the patient's records."""

    booking = models.OneToOneField("scheduling.Booking", on_delete=models.CASCADE, related_name="checklist")
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
